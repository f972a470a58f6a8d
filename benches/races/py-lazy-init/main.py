"""Check-then-act: a lazily made singleton, checked and set without a lock.
Two threads that both see None both make one."""
import sys, threading
made = []
instance = None
def get():
    global instance
    if instance is None:
        config = {f"k{i}": i for i in range(int(sys.argv[1]))}  # reading the config
        instance = config
        made.append(config)
threads = [threading.Thread(target=get) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
if len(made) > 1:
    print(f"lazy-init: made {len(made)} instances"); sys.exit(1)
