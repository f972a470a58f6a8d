"""A user's request, with a DEADLINE, while other users send theirs at random
moments (one every OTHERS_EVERY seconds on average)."""
import os
import random
import sys
import threading
import time
import urllib.request

URL = os.environ["BUGPACK_SERVICE_RUNTIME_URL"] + "/render"
DEADLINE = float(os.environ["DEADLINE"])
others = random.Random(int(os.environ["BUGPACK_SEED"]))


def other_users():
    while True:
        time.sleep(others.expovariate(1 / float(os.environ["OTHERS_EVERY"])))
        threading.Thread(target=urllib.request.urlopen, args=(URL,), daemon=True).start()


threading.Thread(target=other_users, daemon=True).start()
start = time.monotonic()
try:
    urllib.request.urlopen(URL, timeout=DEADLINE).read()
except OSError:
    print(f"client: no answer within the {DEADLINE:g} s deadline")
    sys.exit(1)
print(f"client: rendered in {time.monotonic() - start:.2f} s")
