"""The UI: poll the task's status until it is DONE (through http_proxy when set)."""
import json
import os
import time
import urllib.request

url = os.environ["BUGPACK_SERVICE_APP_URL"] + "/task/1/status"
interval = float(os.environ.get("POLL_INTERVAL", "0.2"))
polls = 0
while True:
    polls += 1
    with urllib.request.urlopen(url, timeout=5) as response:
        status = json.load(response)["status"]
    print(f"poll {polls}: {status}", flush=True)
    if status == "DONE":
        print(f"task done after {polls} polls")
        break
    time.sleep(interval)
