"""A build that waits for its documentation step before reading its output.

The child writes OUTPUT_LINES lines into a pipe; once the pipe's buffer
(64 KiB on Linux) is full the child blocks in write(), while the parent
blocks in wait(): neither moves. The fix is child.communicate().
"""
import os
import subprocess
import sys

lines = int(os.environ.get("OUTPUT_LINES", "20000"))
child = subprocess.Popen(
    [sys.executable, "-c", f"for i in range({lines}): print('building page', i)"],
    stdout=subprocess.PIPE,
)
child.wait()  # the bug: wait before reading
output = child.stdout.read()
print(f"built {len(output.splitlines())} pages")
