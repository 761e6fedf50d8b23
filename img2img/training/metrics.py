"""Validation on the held-out split: L1, PSNR and SSIM for pairs, cycle L1 for CycleGAN.

The metrics are the metric table's (img2img.eval.metrics), the ones `img2img evaluate`
reports: for real pairs every image metric that needs no network (L1, PSNR, SSIM; logged
upper-cased), per image on 8-bit RGB (outputs quantised as the official test pipeline writes
them, truncating; targets recover their stored levels), then the mean. At crop size 256 a
pix2pix validation image goes through exactly the official protocol, so its numbers are
evaluate's on that split. CycleGAN runs add the table's set metrics that need only the
Inception (FID and KID: A2B, outputs vs real B; KID on evaluate's 100 subsets of min(1000,
N) images) on the validation sample when that is cheap: on a GPU, with the Inception weights
already in the cache (validation never downloads); they are skipped otherwise. On a sample
of val_images (50 by default) FID is biased upwards: compare it only between runs with the
same sample size.

Generators run as at test time and leave no trace on training: BatchNorm normalises each
image with its own statistics (no running-stat update), dropout is off, no gradients, and
no global random numbers are drawn, so validating never changes what training does next.

Grey and RGBA images are scored on their own channels (1 or 4); the image grid and the
Inception see them as RGB (grey repeated, alpha dropped). Validation images of different
sizes (preprocess modes that keep the aspect) are batched by size.

`--keep-best METRIC` (BEST_METRICS: the table's metrics validation computes) reads the value
under `best_key`: pix2pix the metric itself (PSNR), CycleGAN its A2B side (A2B_PSNR);
`improves` compares in the table's direction.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from ..data.samples import PAIRED_FAMILIES
from ..errors import EvaluationError, Img2ImgError
from ..eval import metrics as table
from ..eval import perceptual, quality
from ..media.processing import to_uint8
from ..models.norm import set_image_stats

GRID_SAMPLES = 4  # rows in the TensorBoard image grid
# What --keep-best may name: the image metrics that need no network, then FID / KID.
BEST_METRICS = tuple(
    m.name for m in [*table.of_scope("image", networks=()), *table.of_scope("set", ("inception",))]
)


def best_key(family: str, metric: str) -> str:
    """The validation record's key that --keep-best `metric` reads (PSNR, A2B_PSNR)."""
    return metric.upper() if family in PAIRED_FAMILIES else f"A2B_{metric.upper()}"


def improves(metric: str, value: float, best: float | None) -> bool:
    """Whether `value` beats `best` (None: nothing yet) in the table's direction."""
    if best is None:
        return value == value  # not NaN
    return value > best if table.get(metric).higher_is_better else value < best


def as_rgb(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) with C 1, 3 or 4 -> 3 channels: grey repeated, alpha dropped."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped (for the image grid)."""
    return x.float().add(1).div(2).clamp(0, 1)


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
    """Up to `batch_size` consecutive samples whose A and B sizes agree."""
    items: list[dict[str, torch.Tensor]] = []
    for i in range(len(data)):
        item = data[i]
        if items and (len(items) == batch_size or _shapes(item) != _shapes(items[0])):
            yield torch.stack([s["A"] for s in items]), torch.stack([s["B"] for s in items])
            items = []
        items.append(item)
    if items:
        yield torch.stack([s["A"] for s in items]), torch.stack([s["B"] for s in items])


def _shapes(item: dict[str, torch.Tensor]) -> tuple:
    return tuple(item["A"].shape), tuple(item["B"].shape)


@dataclass
class Collected:
    """What validation batches accumulate: per-image scores and, for FID/KID, features."""

    scores: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # key -> [(N,)]
    inception: nn.Module | None = None  # set when set metrics are wanted (distribution_wanted)
    features: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # key -> [(N, 2048)]

    def add(self, key: str, values: torch.Tensor) -> None:
        self.scores.setdefault(key, []).append(values)

    def add_features(self, key: str, images: torch.Tensor) -> None:
        """uint8 (N, 3, H, W) images -> their Inception rows, if FID/KID are wanted."""
        if self.inception is not None:
            rows = perceptual.inception_features(self.inception, as_rgb(images))
            self.features.setdefault(key, []).append(rows)

    def distribution(self, prefix: str) -> dict[str, float]:
        """{prefix}FID / {prefix}KID (the table's set metrics on Inception features alone)
        from the rows under {prefix}fake and {prefix}real."""
        fake, real = (self.features.get(f"{prefix}{k}") for k in ("fake", "real"))
        if not fake or not real:
            return {}
        fake, real = torch.cat(fake), torch.cat(real)
        if min(len(fake), len(real)) < 2:
            return {}
        return {
            f"{prefix}{m.name.upper()}": table.set_score(m, real, fake)[0]
            for m in table.of_scope("set", networks=("inception",))
        }


def _paired(out: Collected, prefix: str, fake: torch.Tensor, real: torch.Tensor) -> None:
    rows = table.of_scope("image", networks=())  # no network: cheap, nothing to download
    scores = table.image_scores(rows, to_uint8(fake, truncate=True), to_uint8(real))
    for name, values in scores.items():  # keys L1, PSNR, SSIM (A2B_PSNR, ...)
        out.add(f"{prefix}{name.upper()}", values)


def cached_inception(device: torch.device) -> nn.Module | None:
    """The FID network on `device` if its weights are in the cache (never downloads)."""
    path = perceptual.cached_weights(table.NETWORKS["inception"].weights)
    return None if path is None else _load_inception(str(device), str(path))


@functools.lru_cache(maxsize=2)
def _load_inception(device: str, path: str) -> nn.Module | None:
    try:
        return table.NETWORKS["inception"].build(torch.device(device), Path(path))
    except Img2ImgError:  # torch-fidelity missing or a bad file: no FID, training goes on
        return None


def distribution_wanted(device: torch.device) -> bool:
    """Set metrics (FID/KID) at validation only where cheap: not on the CPU, weights cached."""
    return device.type != "cpu" and cached_inception(device) is not None


# (nets, A, B, paired, what to add to) -> (G(A), the grid's third column)
BatchMetrics = Callable[
    [dict[str, nn.Module], torch.Tensor, torch.Tensor, bool, Collected],
    tuple[torch.Tensor, torch.Tensor],
]


def pix2pix_batch(nets, A, B, paired: bool, out: Collected) -> tuple[torch.Tensor, torch.Tensor]:
    """G(A) against B when the pairs are real; the grid shows A / G(A) / B."""
    fake_B = nets["G"](A)
    if paired:
        _paired(out, "", fake_B, B)
    return fake_B, B


def cyclegan_batch(nets, A, B, paired: bool, out: Collected) -> tuple[torch.Tensor, torch.Tensor]:
    """Cycle L1 of both sides, both directions against real pairs, A2B features for FID/KID;
    the grid shows A / G_A(A) / rec A."""
    G_A, G_B = nets["G_A"], nets["G_B"]
    fake_B = G_A(A)
    rec_A, fake_A = G_B(fake_B), G_B(B)
    rec_B = G_A(fake_A)
    cycle_A = quality.l1(to_uint8(rec_A, truncate=True), to_uint8(A))
    cycle_B = quality.l1(to_uint8(rec_B, truncate=True), to_uint8(B))
    out.add("cycle_L1", (cycle_A + cycle_B) / 2)
    if paired:
        _paired(out, "B2A_", fake_A, A)
        _paired(out, "A2B_", fake_B, B)
    out.add_features("A2B_fake", to_uint8(fake_B, truncate=True))
    out.add_features("A2B_real", to_uint8(B))
    return fake_B, rec_A


def validate(
    nets: dict[str, nn.Module],
    data: Dataset,
    paired: bool,
    device: torch.device,
    per_batch: BatchMetrics,
    batch: int = 4,
    distribution: bool | None = None,
) -> tuple[dict[str, float], torch.Tensor]:
    """Mean metrics over `data` (`per_batch`: the recipe's) and a (3, H', W') image grid.

    `distribution`: FID/KID where the recipe collects features (CycleGAN); None decides
    by `distribution_wanted(device)`. Forced on, the weights must be cached (no download).
    """
    out = Collected()
    if distribution if distribution is not None else distribution_wanted(device):
        out.inception = cached_inception(device)
        if out.inception is None:
            raise EvaluationError(
                "FID/KID at validation need the Inception weights in the cache "
                "(`img2img evaluate --metrics fid ...` downloads them once)"
            )
    rows: list[torch.Tensor] = []
    with evaluating(*nets.values()):
        for A, B in _batches(data, batch):
            A, B = A.to(device), B.to(device)
            fake_B, third = per_batch(nets, A, B, paired, out)
            if len(rows) < 3 * GRID_SAMPLES:
                shown = [as_rgb(t).cpu() for t in (A, fake_B, third)]
                rows += [t for i in range(len(A)) for t in (s[i] for s in shown)]
    metrics = {k: torch.cat(v).mean().item() for k, v in out.scores.items()}
    metrics |= out.distribution("A2B_")
    grid = image_grid(to_unit(_same_size(rows[: 3 * GRID_SAMPLES])), columns=3)
    return metrics, grid


def _same_size(images: list[torch.Tensor]) -> torch.Tensor:
    """(3, h, w) images of any sizes -> one (N, 3, H, W) stack, padded white (grid cells)."""
    h = max(t.shape[1] for t in images)
    w = max(t.shape[2] for t in images)
    out = images[0].new_ones(len(images), 3, h, w)
    for i, t in enumerate(images):
        out[i, :, : t.shape[1], : t.shape[2]] = t
    return out
