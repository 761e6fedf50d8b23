"""Generators and the discriminator, and the table that builds them from a config dict."""

from __future__ import annotations

from typing import Any

from torch import nn

from .huggan_unet import HugGANUNetGenerator
from .patchgan import PatchGANDiscriminator
from .resnet import ResnetGenerator
from .unet import UNetGenerator

# architecture name (config.json "architecture") -> class; explicit, never by reflection.
GENERATORS: dict[str, type[nn.Module]] = {
    "unet": UNetGenerator,
    "resnet": ResnetGenerator,
    "huggan_unet": HugGANUNetGenerator,
}


def build_generator(config: dict[str, Any]) -> nn.Module:
    """Instantiate a generator from its config dict (the contents of config.json)."""
    kwargs = dict(config)
    name = kwargs.pop("architecture", None)
    if name not in GENERATORS:
        raise ValueError(f"unknown generator architecture {name!r}; known: {sorted(GENERATORS)}")
    return GENERATORS[name](**kwargs)


__all__ = [
    "GENERATORS",
    "HugGANUNetGenerator",
    "PatchGANDiscriminator",
    "ResnetGenerator",
    "UNetGenerator",
    "build_generator",
]
