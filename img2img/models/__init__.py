"""Generators and the discriminator; `registry` is the table that describes the generators."""

from __future__ import annotations

from .cut_resnet import CutResnetGenerator
from .huggan_resnet import HugGANResnetGenerator
from .huggan_unet import HugGANUNetGenerator
from .mobile_resnet import MobileResnetGenerator
from .patchgan import PatchGANDiscriminator
from .registry import (
    ARCHITECTURES,
    Architecture,
    build_generator,
    complete_config,
    get_architecture,
    size_multiple,
)
from .resnet import ResnetGenerator
from .unet import UNetGenerator

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "CutResnetGenerator",
    "HugGANResnetGenerator",
    "HugGANUNetGenerator",
    "MobileResnetGenerator",
    "PatchGANDiscriminator",
    "ResnetGenerator",
    "UNetGenerator",
    "build_generator",
    "complete_config",
    "get_architecture",
    "size_multiple",
]
