"""A small FastAPI chat backend, the kind hfgate sits in front of on a Space.

Run it behind hfgate (see README.md) or directly:

    /usr/bin/python3 -m uvicorn app:app --host 127.0.0.1 --port 8000

The bot is deterministic and makes no external calls, so tests can rely on it.
"""

import asyncio
import json
import logging
import os
import sys

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel

MODEL = "echo-bot-1"

# The app's own logger writes to stdout with a plain format. It does not touch
# the root logger: uvicorn's loggers propagate there, so a root handler would
# print every uvicorn line twice.
log = logging.getLogger("chatbot")
_handler = logging.StreamHandler(sys.stdout)
_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
log.addHandler(_handler)
log.setLevel(logging.INFO)
log.propagate = False

# No CORSMiddleware on purpose: the gateway owns CORS. Adding it here too would
# send two Access-Control-Allow-Origin headers, which browsers reject.
app = FastAPI(title="hfgate example chatbot")


def env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def reply_tokens(message: str) -> list:
    """Returns the bot's reply as tokens (words plus the spaces after them)."""
    words = message.split() or ["nothing"]
    text = "You said: " + " ".join(words) + ". Thanks for chatting!"
    parts = text.split(" ")
    return [p + " " for p in parts[:-1]] + [parts[-1]]


class ChatRequest(BaseModel):
    message: str


@app.on_event("startup")
async def load_model() -> None:
    # uvicorn binds its port only after start-up completes, which is what makes
    # a Space look dead while a real model loads; the gateway covers that gap.
    seconds = env_float("STARTUP_SECONDS", 3)
    log.info("loading model %s (%.1fs)", MODEL, seconds)
    # Deliberately careless debugging aid: it logs a variable's value, the way a
    # hurried backend might print its API key. It exists so tests can prove the
    # gateway masks secrets in relayed output. Never do this in a real service.
    name = os.environ.get("EXAMPLE_ECHO_ENV")
    if name:
        log.info("debug: %s=%s", name, os.environ.get(name, ""))
    await asyncio.sleep(seconds)
    log.info("model %s loaded", MODEL)


INDEX_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hfgate example chatbot</title>
<link rel="icon" href="data:,">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}</style>
</head><body><main>
<h1 id="backend-page">The example chatbot is up</h1>
<p>This page comes from the FastAPI backend itself. Its API: <code>POST /chat</code>,
<code>GET /chat/stream?message=...</code> (server-sent events), <code>WS /ws</code>.</p>
</main></body></html>
"""


@app.get("/", response_class=HTMLResponse)
async def index() -> str:
    # The page a visitor sees at the Space's root once the backend is ready;
    # until then hfgate shows its own status page there.
    return INDEX_HTML


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@app.get("/whoami")
async def whoami(request: Request) -> dict:
    # Who the backend thinks the user is. Behind hfgate, with uvicorn's
    # --proxy-headers --forwarded-allow-ips 127.0.0.1, request.client.host is
    # the client hfgate resolved (the rightmost X-Forwarded-For entry).
    return {
        "client": request.client.host if request.client else None,
        "x_forwarded_for": request.headers.get("x-forwarded-for"),
        "x_real_ip": request.headers.get("x-real-ip"),
    }


@app.post("/chat")
async def chat(req: ChatRequest) -> dict:
    return {"reply": "".join(reply_tokens(req.message)), "model": MODEL}


@app.get("/chat/stream")
async def chat_stream(message: str = "") -> StreamingResponse:
    delay = env_float("TOKEN_DELAY", 0.05)

    async def events():
        for token in reply_tokens(message):
            yield "data: " + json.dumps({"token": token}) + "\n\n"
            await asyncio.sleep(delay)
        yield "event: done\ndata: {}\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@app.websocket("/ws")
async def ws_chat(ws: WebSocket) -> None:
    delay = env_float("TOKEN_DELAY", 0.05)
    await ws.accept()
    try:
        while True:
            message = await ws.receive_text()
            for token in reply_tokens(message):
                await ws.send_text(token)
                await asyncio.sleep(delay)
            await ws.send_text("[DONE]")
    except WebSocketDisconnect:
        pass


@app.get("/admin/poison")
async def poison() -> dict:
    # A poison request: the backend dies while handling it, before any answer.
    # The gateway must not send it again (it would crash the fresh backend too).
    if os.environ.get("EXAMPLE_ALLOW_CRASH") != "1":
        raise HTTPException(status_code=404, detail="Not Found")
    log.warning("poison request: exiting with status 3 before answering")
    os._exit(3)


@app.post("/admin/crash", status_code=202)
async def crash() -> dict:
    if os.environ.get("EXAMPLE_ALLOW_CRASH") != "1":
        raise HTTPException(status_code=404, detail="Not Found")
    log.warning("crash requested: exiting with status 3")
    # Exit a moment later so the 202 reaches the client first. os._exit skips
    # clean-up on purpose: this simulates a backend dying, not stopping.
    asyncio.get_running_loop().call_later(0.2, os._exit, 3)
    return {"status": "crashing"}
