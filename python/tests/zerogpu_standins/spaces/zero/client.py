"""The device API calls (stand-in): a fresh connection each, as the real httpx client makes."""

import os
import urllib.error
import urllib.parse
import urllib.request

from ..config import Config


def _post(path, **params):
    url = Config.zero_device_api_url.rstrip("/") + path
    if params:
        url += "?" + urllib.parse.urlencode(params)
    req = urllib.request.Request(url, data=b"", method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def startup_report():
    status = _post("/startup-report")
    if status != 200:
        raise RuntimeError("Error while initializing ZeroGPU: " + ("NotFound" if status == 404 else "Unknown"))


def _cgroup():
    try:
        with open("/proc/self/cgroup") as f:
            return f.read().splitlines()[0].split(":", 2)[2]
    except (OSError, IndexError):
        return "/"


def schedule(task_id, duration):
    status = _post("/schedule", cgroupPath=_cgroup(), taskId=task_id, enableQueue="true",
                   durationSeconds=duration, pid=os.getpid())
    if status != 200:
        raise RuntimeError("ZeroGPU schedule failed: %d" % status)
