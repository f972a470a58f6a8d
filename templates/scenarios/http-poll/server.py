"""The app: a task that is PENDING until DONE_AFTER seconds after its first poll.

It answers with Cache-Control: no-store, as it should; a proxy that caches
every GET regardless (replay's `--proxy cache`) still serves the first PENDING.
"""
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DONE_AFTER = float(os.environ.get("DONE_AFTER", "1.0"))
first_poll = None


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        global first_poll
        if self.path == "/health":
            self.reply(200, {"ok": True})
        elif self.path == "/task/1/status":
            now = time.monotonic()
            if first_poll is None:
                first_poll = now
            done = now - first_poll >= DONE_AFTER
            self.reply(200, {"status": "DONE" if done else "PENDING"})
        else:
            self.reply(404, {"error": "no such path"})

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
