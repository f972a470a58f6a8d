"""The worker: subscribes to the broker, handles every message once, and
reconnects from where it got to when the connection drops. It prints how
many messages it handled and how many it never saw: the oracle.

The bug: it moves its offset past a whole batch as soon as it reads the
batch's header, before it has read the messages in it. A connection that
drops in the middle of a batch loses the rest of that batch for good."""
import os
import socket

TOTAL = int(os.environ["TOTAL"])
PORT = int(os.environ["BUGPACK_SERVICE_BROKER_PORT"])

offset = 0
handled = set()
connections = 0
while connections < 1000:
    connections += 1
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=5) as conn:
            stream = conn.makefile("rwb")
            stream.write(b"SUB %d\n" % offset)
            stream.flush()
            for line in stream:
                if line == b"END\n":
                    break
                if line.startswith(b"BATCH "):
                    first, count = map(int, line.split()[1:])
                    offset = first + count  # BUG: the batch is not read yet
                    continue
                if not line.endswith(b"\n"):
                    break  # cut short: the connection dropped mid-line
                handled.add(int(line.split()[0]))
            else:
                continue  # the stream ended without END: reconnect
            break
    except OSError:
        continue  # reset or refused: reconnect from the offset

lost = TOTAL - len(handled)
print(f"worker: {len(handled)} handled over {connections} connections, {lost} lost", flush=True)
