"""The routes of the ZeroGPU test backends: GET /generate calls the backend's @spaces.GPU
function and says what the backend's process sees of ZeroGPU."""

import os

from fastapi import FastAPI


def make_app(generate):
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

    return app
