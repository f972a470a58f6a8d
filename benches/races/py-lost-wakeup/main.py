"""Lost wake-up: the consumer checks the flag outside the lock, then waits;
a producer that sets it and notifies in between is never heard."""
import sys, threading
cond = threading.Condition()
ready = False
def produce():
    global ready
    ready = True
    with cond:
        cond.notify_all()
def consume(result):
    if not ready:                      # BUG: checked without the lock
        log = [str(i) for i in range(int(sys.argv[2]))]  # notes that it will wait
        with cond:
            result.append(cond.wait(timeout=float(sys.argv[1])))
result = []
c = threading.Thread(target=consume, args=(result,))
p = threading.Thread(target=produce)
c.start(); p.start(); c.join(); p.join()
if result and result[0] is False:
    print("lost-wakeup: the consumer slept through the producer's notify"); sys.exit(1)
