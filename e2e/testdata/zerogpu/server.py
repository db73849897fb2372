"""The same backend with its GPU function in another module (models.py), which app.py names:
hfgate.space.run("server:app", gpu="models")."""

import os

from fastapi import FastAPI

from models import generate

app = FastAPI()


@app.get("/health")
def health():
    return {"ok": True}


@app.get("/generate")
def generate_route(prompt: str):
    return {
        "text": generate(prompt),
        "pid": os.getpid(),
        "SPACES_ZERO_GPU": os.environ.get("SPACES_ZERO_GPU"),
        "SPACES_ZERO_DEVICE_API_URL": os.environ.get("SPACES_ZERO_DEVICE_API_URL"),
    }
