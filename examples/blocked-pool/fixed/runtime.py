"""The plugin runtime: each request is buffered as a task; one worker thread
takes the tasks one at a time and runs each on its asyncio event loop. A
plugin's render takes RENDER_SECONDS of I/O."""
import asyncio
import http.server
import os
import queue
import threading

RENDER_SECONDS = float(os.environ["RENDER_SECONDS"])
tasks = queue.Queue()


async def render(answer):
    await asyncio.sleep(RENDER_SECONDS)  # the plugin's I/O
    answer.set()


async def handle(answer):
    await asyncio.sleep(0.05)  # load the plugin
    # The fix: the task is handled when its render is done. The loop runs
    # until then, so nothing is left on it while the worker waits.
    await render(answer)


def worker():
    loop = asyncio.new_event_loop()
    while True:
        answer = tasks.get()  # blocks, and the loop with it, until a task comes
        loop.run_until_complete(handle(answer))


class Runtime(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/render":
            answer = threading.Event()
            tasks.put(answer)
            answer.wait()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        pass


threading.Thread(target=worker, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Runtime).serve_forever()
