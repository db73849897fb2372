"""ZeroGPU (stand-in): startup() exists only on ZeroGPU hardware, as in the real package."""

from ..config import Config

if Config.zero_gpu:
    from . import client, decorator, gradio

    def startup():
        # The real one also packs module-level CUDA tensors to disk first.
        if len(decorator.decorated_cache) == 0:
            return
        client.startup_report()

    gradio.one_launch(startup)
