"""@spaces.GPU (stand-in): registers the function; on ZeroGPU a call asks for a GPU first."""

import functools

from ..config import Config

decorated_cache = {}


def GPU(task=None, *, duration=None, **_):
    if task is None:
        return lambda t: GPU(t, duration=duration)
    decorated_cache[id(task)] = task
    if not Config.zero_gpu:
        return task

    @functools.wraps(task)
    def gpu_task(*args, **kwargs):
        from . import client

        client.schedule(task_id=id(task), duration=duration or 60)
        return task(*args, **kwargs)

    return gpu_task
