"""The environment the spaces package reads (stand-in)."""

import os


def _boolean(name):
    return os.environ.get(name, "").lower() in ("1", "t", "true")


class Config:
    zero_gpu = _boolean("SPACES_ZERO_GPU")
    zero_device_api_url = os.environ.get("SPACES_ZERO_DEVICE_API_URL")


if Config.zero_gpu:
    assert Config.zero_device_api_url is not None, "SPACES_ZERO_DEVICE_API_URL must be set on ZeroGPU"
