"""Atomicity violation: read, note, write back: `hits` from two threads
with no lock. A thread switched out between the read and the write loses
the other's updates. CPython switches threads every 5 ms of a thread's
running, so the bug shows only when the counting takes longer than that:
on a starved or throttled CPU."""
import sys, threading
class Stats: hits = 0
stats = Stats()
N = int(sys.argv[1])
def note(value):
    return value
def count():
    for _ in range(N):
        seen = stats.hits
        stats.hits = note(seen) + 1
threads = [threading.Thread(target=count) for _ in range(2)]
for t in threads: t.start()
for t in threads: t.join()
if stats.hits != 2 * N:
    print(f"counter: lost {2 * N - stats.hits} of {2 * N}"); sys.exit(1)
