"""The message log: TOTAL messages, numbered from 0. A subscriber sends
`SUB OFFSET` and gets every message from OFFSET on, in batches: a line
`BATCH FIRST COUNT`, then COUNT lines `ID PAYLOAD`, and `END` after the
last one. A subscriber that loses its connection subscribes again from
where it says it got to: the broker keeps no state of its own."""
import os
import socket
import threading

TOTAL = int(os.environ["TOTAL"])
BATCH = int(os.environ["BATCH"])


def serve(conn):
    try:
        with conn, conn.makefile("rwb") as stream:
            verb, offset = stream.readline().split()
            assert verb == b"SUB"
            first = int(offset)
            while first < TOTAL:
                count = min(BATCH, TOTAL - first)
                lines = [b"BATCH %d %d\n" % (first, count)]
                lines += [b"%d order-%08d shipped\n" % (i, i) for i in range(first, first + count)]
                stream.write(b"".join(lines))
                stream.flush()
                first += count
            stream.write(b"END\n")
            stream.flush()
    except (OSError, ValueError, AssertionError):
        pass  # the subscriber went away, or sent nonsense


server = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
print("broker: listening", flush=True)
while True:
    threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
