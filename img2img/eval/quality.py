"""Per-image quality of a translation against its target, on 8-bit RGB: L1, PSNR, SSIM.

One definition for `img2img evaluate` and for train.py's validation (the metric table,
metrics.py, says which metrics exist and how to call these). Inputs are uint8
tensors (N, 3, H, W) of the same shape (`processing.to_uint8` makes them from network
outputs); each function returns (N,) float64 scores, one per image. Papers report the mean
over images of these per-image values.

    L1   = mean |out - target| / 255                       (0 is identical)
    PSNR = 10 * log10(255^2 / MSE), MSE over pixels and channels   (inf when identical)
    SSIM = Wang et al. 2004 with an 11-tap Gaussian window, sigma 1.5, population
           (co)variances, C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2, averaged over the
           positions where the window fits inside the image, per channel, then over channels

SSIM is scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255, channel_axis=-1)`: that filters with reflect
padding and then crops the 5-pixel border, which leaves exactly the "valid" positions
computed here. Everything runs in float64 on the inputs' device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import EvaluationError

PEAK = 255.0
SSIM_SIGMA = 1.5
SSIM_WINDOW = 2 * int(3.5 * SSIM_SIGMA + 0.5) + 1  # 11: scikit-image's truncate=3.5 radius
K1, K2 = 0.01, 0.03


def _check(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both uint8 (N, C, H, W) of one shape -> float64 copies."""
    if x.dtype != torch.uint8 or y.dtype != torch.uint8:
        raise EvaluationError(f"quality metrics take uint8 images, got {x.dtype} and {y.dtype}")
    if x.dim() != 4 or x.shape != y.shape:
        raise EvaluationError(
            f"output and target must both be (N, C, H, W) of one shape: "
            f"{tuple(x.shape)} vs {tuple(y.shape)}"
        )
    return x.to(torch.float64), y.to(torch.float64)


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N,) mean absolute difference in units of the 8-bit range (0..1)."""
    x, y = _check(x, y)
    return (x - y).abs().flatten(1).mean(1) / PEAK


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N,) peak signal-to-noise ratio in dB; +inf for identical images (as scikit-image)."""
    x, y = _check(x, y)
    mse = (x - y).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(PEAK**2 / mse)  # mse 0 -> inf, no warning from torch


def _gaussian(device: torch.device) -> torch.Tensor:
    """(WINDOW,) float64 weights exp(-x^2 / 2 sigma^2), normalised (scipy.ndimage's)."""
    coords = torch.arange(SSIM_WINDOW, dtype=torch.float64, device=device) - SSIM_WINDOW // 2
    g = torch.exp(-0.5 * coords**2 / SSIM_SIGMA**2)
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N,) mean structural similarity (see the module docstring); images >= 11x11."""
    x, y = _check(x, y)
    n, c, h, w = x.shape
    if min(h, w) < SSIM_WINDOW:
        raise EvaluationError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {w}x{h}"
        )
    g = _gaussian(x.device)
    rows = g.view(1, 1, 1, -1).expand(c, 1, 1, SSIM_WINDOW)
    cols = g.view(1, 1, -1, 1).expand(c, 1, SSIM_WINDOW, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable, per channel, valid positions only
        return F.conv2d(F.conv2d(t, rows, groups=c), cols, groups=c)

    mx, my = blur(x), blur(y)  # (N, C, H - 10, W - 10)
    vx, vy = blur(x * x) - mx * mx, blur(y * y) - my * my
    vxy = blur(x * y) - mx * my
    c1, c2 = (K1 * PEAK) ** 2, (K2 * PEAK) ** 2
    s = (2 * mx * my + c1) * (2 * vxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.flatten(2).mean(2).mean(1)  # per channel, then over channels


def paired_scores(
    out: torch.Tensor, target: torch.Tensor, names: tuple[str, ...] | None = None
) -> dict[str, torch.Tensor]:
    """{name: (N,) scores} for the per-image metrics `names` of the metric table
    (eval/metrics.py) that need no network; default: all of them (l1, psnr, ssim)."""
    from . import metrics  # the table imports this module for its functions

    cheap = {m.name: m for m in metrics.of_scope("image", networks=())}
    names = tuple(cheap) if names is None else names
    unknown = [n for n in names if n not in cheap]
    if unknown:
        raise EvaluationError(f"unknown per-image metrics {unknown}; known: {sorted(cheap)}")
    return metrics.image_scores([cheap[n] for n in names], out, target)


def mean(values: list[float]) -> float:
    """Mean over images; +inf stays +inf (an identical pair), NaN if there are none."""
    return math.fsum(values) / len(values) if values else math.nan
