"""Tiny random generators, one per registry architecture, for tests that need a network."""

from __future__ import annotations

import torch

from img2img.models import ARCHITECTURES, build_generator
from img2img.models.configurable import defaults_of


def tiny_config(name: str) -> dict:
    """ngf 8 and at most 2 residual blocks: the architecture's smallest honest instance."""
    config = {"architecture": name, "ngf": 8}
    if "n_blocks" in defaults_of(ARCHITECTURES[name].cls):
        config["n_blocks"] = 2
    if "n_downsample" in defaults_of(ARCHITECTURES[name].cls):
        config["n_downsample"] = 3  # pix2pixHD: 2 would be the junyanz ResNet's tensors
    return config


def tiny_generators(seed: int = 0) -> dict[str, torch.nn.Module]:
    """One small random generator per registry architecture, in eval mode."""
    torch.manual_seed(seed)
    return {name: build_generator(tiny_config(name)).eval() for name in ARCHITECTURES}
