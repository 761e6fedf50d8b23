"""Shared test helpers: the reference fixtures, tiny generators, generated images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from img2img.models import HugGANUNetGenerator, ResnetGenerator, UNetGenerator

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(
    os.environ.get("IMG2IMG_FIXTURES", ROOT.parent / "shared" / "fixtures" / "reference")
)


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """The shared reference fixtures (made with the classic implementations)."""
    if not (FIXTURES / "README.json").is_file():
        pytest.fail(f"reference fixtures not found at {FIXTURES}; set IMG2IMG_FIXTURES")
    return FIXTURES


def tiny_generators(seed: int = 0) -> dict[str, torch.nn.Module]:
    """One small random generator per architecture (ngf 8)."""
    torch.manual_seed(seed)
    return {
        "unet": UNetGenerator(ngf=8).eval(),
        "resnet": ResnetGenerator(ngf=8, n_blocks=2).eval(),
        "huggan_unet": HugGANUNetGenerator(ngf=8).eval(),
    }


def random_image(w: int, h: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A smooth-ish random image (gradients + noise) in the given mode."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w, 1), yy * 255 / max(h, 1), (xx + yy) % 256], -1)
    rgb = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    return img if mode == "RGB" else img.convert(mode)
