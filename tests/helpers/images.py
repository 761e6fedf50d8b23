"""Generated test images: deterministic, smooth enough to resize and compress like photos."""

from __future__ import annotations

import numpy as np
from PIL import Image


def random_image(w: int, h: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A smooth-ish random image (gradients + noise) in the given mode."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w, 1), yy * 255 / max(h, 1), (xx + yy) % 256], -1)
    rgb = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    return img if mode == "RGB" else img.convert(mode)
