"""A dispatcher whose workflows run their steps on the dispatcher's own pool.

Each workflow submits its step to the pool and waits for it. When every
worker is busy with a workflow, the steps wait in the queue for a worker
that never comes: a deadlock, whenever WORKFLOWS >= POOL_SIZE.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

pool_size = int(os.environ.get("POOL_SIZE", "2"))
workflows = int(os.environ.get("WORKFLOWS", "2"))
pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="dispatcher")
all_started = threading.Event()


def step(n):
    return n * n


def workflow(n):
    # Workflows arrive together (as they do under load) before running steps.
    all_started.wait()
    return pool.submit(step, n).result()


futures = [pool.submit(workflow, n) for n in range(workflows)]
all_started.set()
print("results:", [f.result() for f in futures], flush=True)
pool.shutdown()
