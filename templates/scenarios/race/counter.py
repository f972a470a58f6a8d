"""A counter shared by threads, updated without a lock.

Each thread reads the counter, yields (as any I/O or logging call would),
and writes back its value plus one. A thread that ran in between has its
update overwritten. With a lock around the update nothing is lost.
"""
import os
import sys
import threading
import time

threads = int(os.environ.get("THREADS", "4"))
increments = int(os.environ.get("INCREMENTS", "200"))
count = 0


def work():
    global count
    for _ in range(increments):
        seen = count
        time.sleep(0)  # anything that lets another thread run
        count = seen + 1


workers = [threading.Thread(target=work) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
expected = threads * increments
if count != expected:
    print(f"lost {expected - count} of {expected} updates", flush=True)
    sys.exit(1)
print(f"all {expected} updates counted")
