"""The web app: POST /tasks starts a background task; GET /tasks/ID answers
PENDING until the task is done, then SUCCESS. It says nothing about caching,
like most frameworks by default (set LAST_MODIFIED to stamp every answer)."""
import http.server
import itertools
import os
import threading

TASK_SECONDS = float(os.environ["TASK_SECONDS"])
LAST_MODIFIED = os.environ.get("LAST_MODIFIED", "")
tasks = {}
ids = itertools.count(1)


class App(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        task = str(next(ids))
        tasks[task] = "PENDING"
        threading.Timer(TASK_SECONDS, tasks.__setitem__, (task, "SUCCESS")).start()
        self.reply(202, task)

    def do_GET(self):
        path = self.path.split("?")[0]  # /tasks/1?nonce=... is /tasks/1
        if path == "/health":
            return self.reply(200, "ok")
        task = path.removeprefix("/tasks/")
        if task not in tasks:
            return self.reply(404, "no such task")
        self.reply(200, tasks[task])

    def reply(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if LAST_MODIFIED:
            self.send_header("Last-Modified", LAST_MODIFIED)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print(self.address_string(), fmt % args, flush=True)


http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), App).serve_forever()
