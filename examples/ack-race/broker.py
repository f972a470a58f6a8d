"""The message queue, with a backlog of jobs. It streams jobs to its
consumer, one JSON line each, as fast as the consumer's socket takes them.
The consumer answers `ack ID` (done with it: forget it) or `nack ID` (give
it back: the queue hands it out again)."""
import collections
import itertools
import json
import os
import socket
import threading

backlog = itertools.count(1)
given_back = collections.deque()


def stream(conn):
    try:
        while True:
            job = given_back.popleft() if given_back else next(backlog)
            conn.sendall(json.dumps({
                "id": job,
                "resize": f"s3://uploads/2025/11/photos/{job:08}.jpg",
                "to": f"s3://thumbnails/2025/11/photos/{job:08}-320x240.jpg",
            }).encode() + b"\n")
    except OSError:
        pass  # the consumer is gone


def serve(conn):
    threading.Thread(target=stream, args=(conn,), daemon=True).start()
    acked = 0
    for line in conn.makefile("r"):
        verb, job = line.split()
        if verb == "ack":
            acked += 1
        else:
            given_back.append(int(job))
    print(f"broker: consumer gone, {acked} jobs acknowledged", flush=True)


server = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
print("broker: listening", flush=True)
while True:
    threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
