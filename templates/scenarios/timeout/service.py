"""An asyncio service where one task blocks the event loop.

`report()` calls time.sleep(), a blocking call, on the loop: no other task
runs until it returns, so the health check misses its deadline although
it needs only 50 ms. The fix is `await asyncio.to_thread(...)` (or an async
call) for the blocking work.
"""
import asyncio
import os
import sys
import time

block = float(os.environ.get("BLOCK_SECONDS", "1.0"))
deadline = float(os.environ.get("DEADLINE_SECONDS", "0.5"))


async def health():
    await asyncio.sleep(0.05)
    return "healthy"


async def report():
    time.sleep(block)  # the bug: a blocking call inside a coroutine


async def main():
    blocker = asyncio.create_task(report())
    try:
        print(await asyncio.wait_for(health(), deadline), flush=True)
    except asyncio.TimeoutError:
        print(f"health check timed out after {deadline} s: the event loop was blocked", flush=True)
        sys.exit(1)
    await blocker


asyncio.run(main())
