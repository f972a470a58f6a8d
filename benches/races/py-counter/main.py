"""Atomicity violation: `hits += 1` from two threads, no lock."""
import sys, threading
class Stats: hits = 0
stats = Stats()
N = int(sys.argv[1])
def count():
    for _ in range(N):
        stats.hits += 1
threads = [threading.Thread(target=count) for _ in range(2)]
for t in threads: t.start()
for t in threads: t.join()
if stats.hits != 2 * N:
    print(f"counter: lost {2 * N - stats.hits} of {2 * N}"); sys.exit(1)
