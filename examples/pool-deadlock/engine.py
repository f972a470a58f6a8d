"""A workflow engine: each workflow runs its actions one after another.

Like many dispatchers, it sizes its pool from the CPUs it may use.
"""
import os
import time
from concurrent.futures import ThreadPoolExecutor

CPUS = len(os.sched_getaffinity(0))
POOL_SIZE = CPUS * int(os.environ["THREADS_PER_CPU"])
WORKFLOWS = int(os.environ["WORKFLOWS"])

# The bug: workflows and their actions share this one bounded pool. Each
# workflow holds a thread while it waits for its actions; once WORKFLOWS >=
# POOL_SIZE every thread holds a workflow, and the actions they wait for
# can never be scheduled.
dispatcher = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="dispatcher")


def action(workflow, step):
    time.sleep(0.05)  # call a service, write a record...
    return f"{workflow}.{step}"


def workflow(n):
    return [dispatcher.submit(action, n, step).result() for step in range(3)]


print(f"engine: {WORKFLOWS} workflows, a pool of {POOL_SIZE} threads ({CPUS} CPUs)", flush=True)
for run in [dispatcher.submit(workflow, n) for n in range(WORKFLOWS)]:
    print("engine: workflow done:", " ".join(run.result()), flush=True)
