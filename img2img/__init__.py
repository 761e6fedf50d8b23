"""img2img: Pix2Pix and CycleGAN image-to-image translation.

Public surface:
    load_generator(path)          any supported checkpoint file or directory -> nn.Module
    save_pretrained(module, dir)  our release format (config.json + model.safetensors)
    Translator                    cached, batched, no-grad inference on PIL images
"""

from __future__ import annotations

from .errors import CheckpointError, ImageError, Img2ImgError
from .inference import Translator, default_device
from .weights import load_generator, save_pretrained

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ImageError",
    "Img2ImgError",
    "Translator",
    "default_device",
    "load_generator",
    "save_pretrained",
]
