"""Validation on the held-out split: L1, PSNR and SSIM for pairs, cycle L1 for CycleGAN.

Generators run as at test time and leave no trace on training: BatchNorm normalises each
image with its own statistics (no running-stat update), dropout is off, no gradients, and
no global random numbers are drawn, so validating never changes what training does next.
Images are compared in [0, 1].
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..models.norm import set_image_stats

GRID_SAMPLES = 4  # rows in the TensorBoard image grid


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped (the inverse of the value-range contract's normalisation)."""
    return x.float().add(1).div(2).clamp(0, 1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> (N,) peak signal-to-noise ratio in dB."""
    mse = (x - y).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> (N,) mean SSIM (Wang et al. 2004, Gaussian 11x11, valid)."""
    coords = torch.arange(window, dtype=x.dtype, device=x.device) - window // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = (g / g.sum()).view(1, 1, 1, -1)
    c = x.shape[1]

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable Gaussian, per channel
        t = F.conv2d(t, g.expand(c, 1, 1, window), groups=c)
        return F.conv2d(t, g.view(1, 1, -1, 1).expand(c, 1, window, 1), groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


def image_grid(images: torch.Tensor, columns: int, pad: int = 2) -> torch.Tensor:
    """(N, 3, H, W) -> (3, H', W'): rows of `columns` images on a white background."""
    n, c, h, w = images.shape
    rows = -(-n // columns)
    grid = images.new_ones(c, rows * (h + pad) + pad, columns * (w + pad) + pad)
    for i, image in enumerate(images):
        top, left = pad + (i // columns) * (h + pad), pad + (i % columns) * (w + pad)
        grid[:, top : top + h, left : left + w] = image
    return grid


@contextlib.contextmanager
def evaluating(*nets: nn.Module) -> Iterator[None]:
    """Eval mode + per-image BatchNorm statistics, restored to train mode afterwards."""
    for net in nets:
        net.eval()
        set_image_stats(net, True)
    try:
        with torch.no_grad():
            yield
    finally:
        for net in nets:
            set_image_stats(net, False)
            net.train()


def _batches(data: Dataset, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(data), batch_size):
        items = [data[i] for i in range(start, min(start + batch_size, len(data)))]
        yield torch.stack([s["A"] for s in items]), torch.stack([s["B"] for s in items])


def _paired(out: dict[str, list[torch.Tensor]], prefix: str, fake, real) -> None:
    f, r = to_unit(fake), to_unit(real)
    out.setdefault(f"{prefix}L1", []).append((f - r).abs().flatten(1).mean(1))
    out.setdefault(f"{prefix}PSNR", []).append(psnr(f, r))
    out.setdefault(f"{prefix}SSIM", []).append(ssim(f, r))


# (nets, A, B, paired, metric lists to append to) -> (G(A), the grid's third column)
BatchMetrics = Callable[
    [dict[str, nn.Module], torch.Tensor, torch.Tensor, bool, dict[str, list[torch.Tensor]]],
    tuple[torch.Tensor, torch.Tensor],
]


def pix2pix_batch(nets, A, B, paired: bool, values) -> tuple[torch.Tensor, torch.Tensor]:
    """G(A) against B when the pairs are real; the grid shows A / G(A) / B."""
    fake_B = nets["G"](A)
    if paired:
        _paired(values, "", fake_B, B)
    return fake_B, B


def cyclegan_batch(nets, A, B, paired: bool, values) -> tuple[torch.Tensor, torch.Tensor]:
    """Cycle L1 of both sides, both directions against real pairs; grid A / G_A(A) / rec A."""
    G_A, G_B = nets["G_A"], nets["G_B"]
    fake_B = G_A(A)
    rec_A, fake_A = G_B(fake_B), G_B(B)
    rec_B = G_A(fake_A)
    cycle = (to_unit(rec_A) - to_unit(A)).abs().flatten(1).mean(1)
    cycle = (cycle + (to_unit(rec_B) - to_unit(B)).abs().flatten(1).mean(1)) / 2
    values.setdefault("cycle_L1", []).append(cycle)
    if paired:
        _paired(values, "B2A_", fake_A, A)
        _paired(values, "A2B_", fake_B, B)
    return fake_B, rec_A


def validate(
    nets: dict[str, nn.Module],
    data: Dataset,
    paired: bool,
    device: torch.device,
    per_batch: BatchMetrics,
    batch: int = 4,
) -> tuple[dict[str, float], torch.Tensor]:
    """Mean metrics over `data` (`per_batch`: the recipe's) and a (3, H', W') image grid."""
    values: dict[str, list[torch.Tensor]] = {}
    rows: list[torch.Tensor] = []
    with evaluating(*nets.values()):
        for A, B in _batches(data, batch):
            A, B = A.to(device), B.to(device)
            fake_B, third = per_batch(nets, A, B, paired, values)
            rows += [t for i in range(len(A)) for t in (A[i], fake_B[i], third[i])]
    metrics = {k: torch.cat(v).mean().item() for k, v in values.items()}
    grid = image_grid(to_unit(torch.stack(rows[: 3 * GRID_SAMPLES])).cpu(), columns=3)
    return metrics, grid
