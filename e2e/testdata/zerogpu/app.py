"""A ZeroGPU backend for hfgate's tests: one @spaces.GPU function, called by GET /generate,
which also says what the backend's process sees of ZeroGPU."""

import os

import spaces
from fastapi import FastAPI

app = FastAPI()


@spaces.GPU(duration=10)
def generate(prompt):
    return prompt.upper()


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
