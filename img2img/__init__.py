"""img2img: Pix2Pix and CycleGAN image-to-image translation.

Public surface:
    load_generator(path, name)    any supported checkpoint file or directory -> nn.Module
                                  (name: one network of a file holding a whole CycleGAN)
    save_pretrained(module, dir)  our release format (config.json + model.safetensors)
    Translator                    cached, batched, no-grad inference on PIL images
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import errors
from .errors import *  # noqa: F403 - every library exception is public (errors.__all__)

if TYPE_CHECKING:
    from .checkpoints.release import save_pretrained
    from .checkpoints.weights import load_generator
    from .inference import Translator, default_device

# torch costs ~2 s to import: the names that need it load on first use (PEP 562), so the
# app can serve its page while torch is still loading.
_LAZY = {
    "Translator": "inference",
    "default_device": "inference",
    "load_generator": "checkpoints.weights",
    "save_pretrained": "checkpoints.release",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    *errors.__all__,
    "Translator",
    "default_device",
    "load_generator",
    "save_pretrained",
]
