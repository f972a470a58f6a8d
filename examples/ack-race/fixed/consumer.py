"""The consumer: for RUN_SECONDS it takes a job from the queue every
INTERVAL seconds (its rate limit) and hands it to a pool of WORKERS
threads; a job takes JOB_SECONDS (a call to the resizing service). A job
waits at most DEADLINE seconds for a free worker. At the end it says what
it acknowledged and what it did."""
import json
import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

INTERVAL = float(os.environ["INTERVAL"])
WORKERS = int(os.environ["WORKERS"])
JOB_SECONDS = float(os.environ["JOB_SECONDS"])
DEADLINE = float(os.environ["DEADLINE"])
RUN_SECONDS = float(os.environ["RUN_SECONDS"])

broker = socket.create_connection(("127.0.0.1", int(os.environ["BUGPACK_SERVICE_BROKER_PORT"])))
broker.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
# Unbuffered, so that no job ever sits in a buffer of ours (which costs a
# system call per byte read).
inbox = broker.makefile("rb", buffering=0)
sending = threading.Lock()
free = threading.Semaphore(WORKERS)
pool = ThreadPoolExecutor(WORKERS)
acked, done = set(), set()
given_back = 0


def tell(verb, job):
    with sending:
        broker.sendall(f"{verb} {job}\n".encode())


def work(job):
    time.sleep(JOB_SECONDS)
    done.add(job)
    # The fix: a job is acknowledged once it is done, never before.
    tell("ack", job)
    acked.add(job)
    free.release()


tick = time.monotonic()
stop = tick + RUN_SECONDS
while tick < stop:
    # One job per tick; a tick missed while we were held up is skipped.
    tick = max(tick + INTERVAL, time.monotonic())
    time.sleep(max(0.0, tick - time.monotonic()))
    job = json.loads(inbox.readline())["id"]
    if free.acquire(timeout=DEADLINE):
        pool.submit(work, job)
    else:
        # The pool stayed full past the deadline: the broker gets the job
        # back and hands it out again.
        tell("nack", job)
        given_back += 1
pool.shutdown(wait=True)
dropped = len(acked - done)
print(f"consumer: {len(acked)} acknowledged, {len(done)} done, {dropped} dropped, {given_back} given back")
sys.exit(1 if dropped else 0)
