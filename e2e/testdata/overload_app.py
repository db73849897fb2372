"""The backend of the overload tests (e2e/overload_test.go): one uvicorn worker with a
CPU-bound and an I/O-bound endpoint, as issue 19 measured.

    /usr/bin/python3 -m uvicorn overload_app:app --host 127.0.0.1 --port 8000

POST /chat burns OVERLOAD_CPU_SECONDS (0.2) of CPU in pure Python, as a small local model
would. It is a plain `def`, the FastAPI idiom for blocking work: it runs in the worker's thread
pool, where pure Python holds the GIL, so the requests in it share one core (each takes
n x 0.2 s with n of them running) and the event loop, /health included, waits its turn
behind them. One worker finishes about 5 a second however many it is given.

POST /wait awaits asyncio.sleep(OVERLOAD_WAIT_SECONDS) (2), as a call to a remote model
would: it costs the worker nothing, so hundreds can wait at once.
"""

import asyncio
import os
import time

from fastapi import FastAPI

app = FastAPI(title="hfgate overload test backend")

CPU_SECONDS = float(os.environ.get("OVERLOAD_CPU_SECONDS", "0.2"))
WAIT_SECONDS = float(os.environ.get("OVERLOAD_WAIT_SECONDS", "2"))


def burn(seconds: float) -> int:
    """Spends seconds of this thread's own CPU time (not wall time: a thread waiting for the
    GIL spends none), so each request costs the same work however many share the core."""
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        for _ in range(1000):
            n += 1
    return n


@app.post("/chat")
def chat() -> dict:
    return {"work": burn(CPU_SECONDS)}


@app.post("/wait")
async def wait() -> dict:
    await asyncio.sleep(WAIT_SECONDS)
    return {"waited": WAIT_SECONDS}


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}
