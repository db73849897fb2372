"""Stand-in for Hugging Face's spaces package, for hfgate's tests (see ../README.md)."""

import os

import gradio  # noqa: F401  (the real package imports gradio too)

from . import zero  # noqa: F401
from .config import Config  # noqa: F401
from .zero.decorator import GPU

__all__ = ["GPU"]

_imports = os.environ.get("HFGATE_TEST_SPACES_IMPORTS")
if _imports:
    with open(_imports, "a") as f:
        f.write("%d\n" % os.getpid())
