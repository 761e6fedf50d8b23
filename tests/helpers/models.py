"""Tiny random generators, one per architecture, for tests that need a network, not weights."""

from __future__ import annotations

import torch

from img2img.models import HugGANUNetGenerator, ResnetGenerator, UNetGenerator


def tiny_generators(seed: int = 0) -> dict[str, torch.nn.Module]:
    """One small random generator per architecture (ngf 8)."""
    torch.manual_seed(seed)
    return {
        "unet": UNetGenerator(ngf=8).eval(),
        "resnet": ResnetGenerator(ngf=8, n_blocks=2).eval(),
        "huggan_unet": HugGANUNetGenerator(ngf=8).eval(),
    }
