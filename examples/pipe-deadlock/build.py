"""The build driver: compiles, then runs the documentation builder."""
import subprocess
import sys

print("build: compiled 12 modules", flush=True)
docs = subprocess.Popen(["sh", "docs.sh"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
# The bug: wait for the child before reading its output. Nobody drains the
# pipe, so once the docs log passes the pipe buffer (64 KiB on Linux) the
# child blocks writing and the driver blocks waiting, forever.
status = docs.wait()
log = docs.stdout.read()
print(f"build: docs exited {status} after {len(log.splitlines())} lines of log")
sys.exit(status)
