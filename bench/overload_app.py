"""The backend of `hfbench overload` (make bench-overload): one uvicorn worker with a CPU-bound
and an I/O-bound endpoint, as a Space with a small local model or a remote LLM call has.

    /usr/bin/python3 -m uvicorn overload_app:app --app-dir bench --port 8000

POST /chat    burns CPU_MS (default 200) of this thread's CPU time in pure Python, inside an
              `async def`, so it holds the event loop (and the GIL) the whole time, as a model
              called from an async endpoint does: one request at a time, and /health waits
              behind the work queued before it.
POST /remote  awaits asyncio.sleep(IO_MS / 1000) (default 2 s): a remote call; the event loop
              stays free, so hundreds may be in flight at once.
GET  /health  {"status": "ok"}

The work is measured in CPU time (time.thread_time), not in loop iterations, so a request costs
the same CPU whatever the machine's speed or load; its wall time grows when the machine is busy,
which is why the harness measures the capacity it offers load against.
"""

import asyncio
import os
import time

from fastapi import FastAPI, Request


def env_ms(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default)) / 1000
    except ValueError:
        return default / 1000


CPU_SECONDS = env_ms("CPU_MS", 200)
IO_SECONDS = env_ms("IO_MS", 2000)

app = FastAPI(title="hfbench overload backend")


def burn(seconds: float) -> int:
    """Spends seconds of this thread's CPU time in pure Python; returns a checksum so the work
    cannot be optimised away."""
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        # About 50-100 µs of bytecode between clock reads (a read is a system call).
        for i in range(1000):
            x = (x + i * i) % 1000003
    return x


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@app.post("/chat")
async def chat(request: Request) -> dict:
    await request.body()
    return {"reply": "done", "checksum": burn(CPU_SECONDS)}


@app.post("/remote")
async def remote(request: Request) -> dict:
    await request.body()
    await asyncio.sleep(IO_SECONDS)
    return {"reply": "done"}
