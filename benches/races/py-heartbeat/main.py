"""A timeout that fires under CPU starvation: a watchdog expects a
heartbeat every 10 ms and gives up after a gap of LIMIT ms."""
import sys, threading, time
LIMIT = float(sys.argv[1]) / 1000
beats = [time.monotonic()]
stop = False
def heart():
    while not stop:
        beats.append(time.monotonic()); time.sleep(0.01)
t = threading.Thread(target=heart); t.start()
end = time.monotonic() + 0.15
worst = 0.0
while time.monotonic() < end:
    sum(range(2000))                   # the event loop's own work
    worst = max(worst, time.monotonic() - beats[-1])
stop = True; t.join()
if worst > LIMIT:
    print(f"heartbeat: a {worst * 1000:.0f} ms gap, over the {LIMIT * 1000:.0f} ms limit"); sys.exit(1)
