"""Native-resolution translation in overlapping windows, blended without seams.

`translate_tiled` runs a generator over an image at its own resolution (or a given long side)
in tile x tile windows (default: the training crop, 256, rounded up to the architecture's
size multiple, so a U-Net-256 gets 256-multiples), a batch of windows per forward. Windows
overlap by `overlap` pixels at least; they are spread evenly, so the last one ends at the
image's edge. Blending is separable: across the overlap of two neighbours the later window's
weight is 0 over the first quarter (its border, where its padding differs most from the real
neighbourhood), rises as a raised cosine over the middle half, and is 1 over the last
quarter; the earlier window's weight is the mirror image, so the two sum to one. The image's
own borders get no ramp. The accumulated weights, a product of one vector per axis,
normalise the rare pixels that three windows share.

Memory is bounded by the window and the statistics pass, not the image: the network only
ever sees a batch of windows, and the one whole-image pass stays within the budget. What
grows with the image is the input (8 bits per channel), the output accumulator (H x W x 3
float32) and the output image; a full-resolution activation exists only when it fits.

Normalisation statistics (`stats`):
    "shared"  default. The norm layers' statistics are measured once on the whole image at
              long side `stats_size` (one ordinary forward; default `stats_side`: the image's
              own size when that forward fits the memory budget, else the largest that
              does) and every window is normalised with them (normstats.py), so windows
              agree in tone.
    "window"  every window normalises with its own statistics, as each training crop did:
              tone drifts between windows, strongly on flat or smooth content (a window of
              sky gets its faint gradient stretched to full contrast).
Why "shared" is the default: with per-window statistics the seams are visible on smooth
content and tiled output departs from the untiled run, while shared statistics keep the
blend seamless and, for the ResNets with statistics at the image's own size, tiled output
equal to the untiled run (a trained ResNet-9: mean 0.017, max 2 levels; with statistics at
512 px: 2.41 / 31, at 256: 4.47 / 56; bench/bench_tiles.py --sections curve, figures in
bench/RESULTS.md). The statistics' size, not the window borders, decides it.

Tiling only bounds memory and costs time; `translate_full` runs an image untiled when the
estimated untiled peak (`untiled_peak_bytes`) fits `memory_budget()`, and tiles it otherwise.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from ..errors import Cancelled, ConfigError
from . import processing
from .channels import model_channels
from .normstats import NormStats, StatsRunner

DEFAULT_TILE = 256  # the training crop of every catalog model
STATS = ("shared", "window")
DEFAULT_STATS = "shared"
MIN_STATS_SIZE = 512  # the statistics pass's long side when even that exceeds the budget
ROWS_PER_STRIP = 256  # output conversion works in strips: no second full-size float copy
# The untiled forward's peak, in units of the largest activation the network makes (bytes
# per input pixel, measured by `activation_bytes`), fitted on measured peaks: see
# `untiled_peak_bytes` and bench/bench_memory.py --cases photo.
PEAK_ACTIVATIONS = 4.5
DEFAULT_BUDGET = 4 * 2**30  # when the free memory cannot be read
Progress = bool | Callable[[int, int], None]


@dataclass(frozen=True)
class Axis:
    """Window starts along one axis and the blend weights of each window there."""

    starts: list[int]
    length: int  # window length (<= the padded side when the image is shorter than a tile)
    weights: list[torch.Tensor]  # one (length,) float32 ramp per window
    total: torch.Tensor  # (side,) sum of the weights at each pixel, > 0 everywhere


def window_starts(side: int, window: int, overlap: int, align: int = 1) -> list[int]:
    """Evenly spread starts, multiples of `align`: the first at 0, the last at side - window
    (side and window are multiples of `align`), neighbours sharing at least `overlap` pixels.
    One window when the side fits in it."""
    if side <= window:
        return [0]
    stride = (window - overlap) // align  # the largest step allowed, in units of `align`
    steps = (side - window) // align
    n = 1 + -(-steps // stride)
    return [round(i * steps / (n - 1)) * align for i in range(n)]


def blend_in(shared: int) -> torch.Tensor:
    """(shared,) weight of the later of two windows across their overlap, rising from 0 to
    1; the earlier window's weight is its flip, so the two sum to one. Zero over the first
    quarter (the later window's border, where its padding differs most from the real
    neighbourhood), a raised cosine over the middle half, one over the last quarter."""
    margin = shared // 4
    n = shared - 2 * margin
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    cosine = (torch.sin(t * math.pi / 2) ** 2).float()
    return torch.cat([torch.zeros(margin), cosine, torch.ones(margin)])


def make_axis(side: int, window: int, overlap: int, align: int = 1) -> Axis:
    """Windows along one axis of `side` pixels (see window_starts) and their weights."""
    starts = window_starts(side, window, overlap, align)
    length = min(window, side)
    weights = []
    total = torch.zeros(side)
    for i, s in enumerate(starts):
        w = torch.ones(length)
        if i > 0:  # blend in over the overlap with the previous window
            shared = starts[i - 1] + length - s
            w[:shared] = torch.minimum(w[:shared], blend_in(shared))
        if i < len(starts) - 1:  # blend out over the overlap with the next window
            shared = s + length - starts[i + 1]
            w[length - shared :] = torch.minimum(w[length - shared :], blend_in(shared).flip(0))
        weights.append(w)
        total[s : s + length] += w
    if not bool((total > 0).all()):  # cannot happen with overlap <= window / 2
        raise ConfigError(f"windows of {window} with overlap {overlap} leave pixels unweighted")
    return Axis(starts, length, weights, total)


def check_tile(tile: int, overlap: int, multiple: int) -> None:
    if tile < multiple or tile % multiple:
        raise ConfigError(
            f"tile {tile} is not a multiple of {multiple}, which this architecture needs"
        )
    if not 0 <= overlap <= tile // 2:
        raise ConfigError(f"overlap must be in [0, tile / 2], got {overlap} for tile {tile}")


def default_tile(multiple: int) -> int:
    """The training crop, rounded up to the architecture's multiple."""
    return -(-DEFAULT_TILE // multiple) * multiple


def grid(size: tuple[int, int], tile: int, overlap: int, multiple: int) -> tuple[Axis, Axis]:
    """(rows, cols) of windows over an image of `size` (w, h) padded to `multiple`.

    Window starts are multiples of the architecture's multiple when the overlap leaves room
    (the ResNets: 4), so every window's stride-2 sampling grid is the untiled run's; the
    U-Nets' 256 leaves none, and their windows never see the untiled context anyway."""
    w, h = (_padded_side(s, multiple) for s in size)
    align = multiple if tile - overlap >= multiple else 1
    return make_axis(h, tile, overlap, align), make_axis(w, tile, overlap, align)


def _padded_side(side: int, multiple: int) -> int:
    """The side processing.pad_to_multiple pads to."""
    least = -(-processing.MIN_SIDE // multiple) * multiple
    return max(-(-side // multiple) * multiple, least)


def pad_image(img: Image.Image, multiple: int) -> Image.Image:
    """`img` padded on the right/bottom as processing.pad_to_multiple pads a tensor (reflect,
    or replicate for a thin strip), in 8 bits: no full-size float copy."""
    w, h = img.size
    pw, ph = _padded_side(w, multiple) - w, _padded_side(h, multiple) - h
    if pw == 0 and ph == 0:
        return img
    mode = "reflect" if ph < h and pw < w else "edge"  # numpy's names for torch's modes
    return Image.fromarray(np.pad(np.asarray(img), ((0, ph), (0, pw), (0, 0)), mode=mode))


def shared_stats(
    runner: StatsRunner, image: Image.Image, stats_size: int | None
) -> NormStats | None:
    """Norm statistics of one ordinary forward of the whole image at long side `stats_size`
    (smaller images, or None: their own size); None when the model has no such layer."""
    if not runner.has_stats:
        return None
    long_side = max(image.size) if stats_size is None else min(stats_size, max(image.size))
    prep = processing.prepare(image, long_side, runner.multiple)
    return runner.run(prep.tensor, record=True)[1]


def translate_tiled(
    translator,
    model_or_id: str | nn.Module,
    image: Image.Image,
    tile: int | None = None,
    overlap: int | None = None,
    size: int | None = None,
    stats: str = DEFAULT_STATS,
    stats_size: int | None = None,
    batch: int | None = None,
    progress: Progress = True,
    should_stop: Callable[[], bool] | None = None,
) -> Image.Image:
    """Translate `image` at its own resolution (or long side `size`) in overlapping windows.

    `translator` is an img2img.Translator (its device, plan and model cache are used);
    `model_or_id` a catalog id, path or module. `tile` (default: 256 rounded up to the
    architecture's multiple) must be a multiple of it; `overlap` (default tile / 4) is the
    least overlap of neighbours. `stats`: "shared" or "window" (module docstring). `batch`:
    windows per forward (default: the translator's max_batch). `progress`: a tqdm bar, or a
    callable(done, total) called after each batch. `should_stop`: asked before each batch
    of windows; True stops the work (Cancelled). Returns an image of the input's size (the
    input's alpha put back), like Translator.translate.
    """
    if stats not in STATS:
        raise ConfigError(f"stats must be one of {STATS}, got {stats!r}")
    runner = StatsRunner(translator, model_or_id)
    ins, outs = model_channels(runner.model)
    if (ins, outs) != (3, 3):  # windows, statistics and blending are RGB
        raise ConfigError(
            f"tiles take RGB models; this one maps {ins} -> {outs} channels: translate it "
            "untiled (without --tile)"
        )
    tile = default_tile(runner.multiple) if tile is None else tile
    overlap = tile // 4 if overlap is None else overlap
    check_tile(tile, overlap, runner.multiple)
    rgb, alpha = processing.split_alpha(image)
    content = processing.working_size(rgb.size, size)
    work = rgb if content == rgb.size else rgb.resize(content, Image.BICUBIC)
    if stats == "shared" and stats_size is None:  # the largest pass that fits the budget
        stats_size = stats_side(runner.model, runner.multiple, work.size, translator.device)
    fixed = shared_stats(runner, work, stats_size) if stats == "shared" else None
    batch = batch or translator.max_batch
    acc = _accumulate(runner, work, tile, overlap, fixed, batch, progress, should_stop)
    out = _finish(acc, work.size)
    if out.size != rgb.size:
        out = out.resize(rgb.size, Image.BICUBIC)
    if alpha is not None:
        out.putalpha(alpha)
    return out


@dataclass
class Accumulator:
    """Weighted sum of window outputs and the per-axis weight totals that normalise it."""

    sums: torch.Tensor  # (3, H, W) float32, the image's size (windows may reach the padding)
    rows: Axis
    cols: Axis


def _accumulate(
    runner: StatsRunner,
    work: Image.Image,
    tile: int,
    overlap: int,
    fixed: NormStats | None,
    batch: int,
    progress: Progress,
    should_stop: Callable[[], bool] | None = None,
) -> Accumulator:
    rows, cols = grid(work.size, tile, overlap, runner.multiple)
    padded = pad_image(work, runner.multiple)
    acc = Accumulator(torch.zeros(3, work.height, work.width), rows, cols)
    boxes = [(r, c) for r in range(len(rows.starts)) for c in range(len(cols.starts))]
    bar = tqdm(total=len(boxes), unit="window", disable=progress is not True, leave=False)
    try:
        for k in range(0, len(boxes), batch):
            if should_stop is not None and should_stop():
                raise Cancelled(f"stopped after {k} of {len(boxes)} windows, as asked")
            chunk = boxes[k : k + batch]
            x = torch.cat([_window(padded, acc, r, c) for r, c in chunk])
            y, _ = runner.run(x, fixed=fixed)  # (B, 3, rows.length, cols.length)
            for j, (r, c) in enumerate(chunk):
                _add(acc, y[j], r, c)
            bar.update(len(chunk))
            if callable(progress):
                progress(min(k + batch, len(boxes)), len(boxes))
    finally:
        bar.close()
    return acc


def _window(padded: Image.Image, acc: Accumulator, r: int, c: int) -> torch.Tensor:
    """(1, 3, rows.length, cols.length) network input of window (r, c)."""
    x, y = acc.cols.starts[c], acc.rows.starts[r]
    return processing.to_tensor(padded.crop((x, y, x + acc.cols.length, y + acc.rows.length)))


def _add(acc: Accumulator, y: torch.Tensor, r: int, c: int) -> None:
    """Add window (r, c)'s output (3, h, w), weighted by its separable ramp; what falls in
    the padding is dropped."""
    top, left = acc.rows.starts[r], acc.cols.starts[c]
    h, w = acc.sums.shape[1] - top, acc.sums.shape[2] - left  # room left in the image
    weight = acc.rows.weights[r][:h, None] * acc.cols.weights[c][None, :w]  # (h', w')
    h, w = weight.shape
    acc.sums[:, top : top + h, left : left + w].add_(y[:, :h, :w] * weight)


def _finish(acc: Accumulator, size: tuple[int, int]) -> Image.Image:
    """Normalise by the weight totals and convert to 8 bits, a strip of rows at a time."""
    w, h = size
    out = Image.new("RGB", (w, h))
    for top in range(0, h, ROWS_PER_STRIP):
        bottom = min(top + ROWS_PER_STRIP, h)
        norm = acc.rows.total[top:bottom, None] * acc.cols.total[None, :w]
        strip = acc.sums[:, top:bottom] / norm
        out.paste(processing.to_image(strip), (0, top))
    return out


# ---------------------------------------------------------------------------- automatic choice


_ACTIVATION_BYTES: dict[str, float] = {}


def activation_bytes(model: nn.Module, multiple: int) -> float:
    """Bytes per input pixel of the largest activation `model` makes (float32), measured once
    per architecture config by one forward of a small input through an eval copy (hooks on
    every leaf module; the caller's module is never run)."""
    key = json.dumps(getattr(model, "config", None), sort_keys=True, default=str)
    if key not in _ACTIVATION_BYTES:
        probe = copy.deepcopy(model).float().cpu().eval()
        side = max(multiple, 64)
        largest = 0

        def hook(module, args, out):
            nonlocal largest
            if isinstance(out, torch.Tensor):
                largest = max(largest, out.numel())

        for m in probe.modules():
            m._forward_pre_hooks.clear()  # the copy's, not the caller's: theirs stay
            m._forward_hooks.clear()
            if not list(m.children()):
                m.register_forward_hook(hook)
        with torch.inference_mode():
            probe(torch.zeros(1, model_channels(model)[0], side, side))
        _ACTIVATION_BYTES[key] = 4.0 * largest / (side * side)
    return _ACTIVATION_BYTES[key]


def untiled_peak_bytes(model: nn.Module, multiple: int, size: tuple[int, int]) -> int:
    """Estimated memory one untiled forward of an image of `size` (w, h) adds at its peak:
    PEAK_ACTIVATIONS x the largest activation, at the padded size."""
    w, h = (_padded_side(s, multiple) for s in size)
    return int(PEAK_ACTIVATIONS * activation_bytes(model, multiple) * w * h)


def memory_budget(device: torch.device | None = None) -> int:
    """Bytes an untiled forward may use: IMG2IMG_MEMORY_BUDGET_MB, else half the free memory
    (of the GPU for a CUDA device; else what the kernel reports available, MemAvailable),
    else DEFAULT_BUDGET."""
    env = os.environ.get("IMG2IMG_MEMORY_BUDGET_MB", "").strip()
    if env:
        try:
            return int(float(env) * 2**20)
        except ValueError as e:
            raise ConfigError(f"IMG2IMG_MEMORY_BUDGET_MB must be a number, got {env!r}") from e
    if device is not None and device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] // 2
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    return DEFAULT_BUDGET


def needs_tiles(
    model: nn.Module,
    multiple: int,
    size: tuple[int, int],
    budget: int | None = None,
    device: torch.device | None = None,
) -> bool:
    """Whether an untiled forward at `size` would not fit `budget` (default
    memory_budget(device))."""
    budget = memory_budget(device) if budget is None else budget
    return untiled_peak_bytes(model, multiple, size) > budget


def translate_full(
    translator,
    model_or_id: str | nn.Module,
    image: Image.Image,
    size: int | None = None,
    budget: int | None = None,
    progress: Progress = True,
    **tiled,
) -> Image.Image:
    """`image` at its own resolution (or long side `size`): in one piece when the untiled
    forward fits the memory budget (`needs_tiles`; default memory_budget()), else in tiles
    (`translate_tiled`, given the keyword arguments `tiled`). Untiled is faster and is the
    reference tiles approach; tiles only bound memory."""
    if not would_tile(translator, model_or_id, image, size, budget):
        return translator.translate(model_or_id, [image], size=size)[0]
    return translate_tiled(translator, model_or_id, image, size=size, progress=progress, **tiled)


def would_tile(
    translator, model_or_id: str | nn.Module, image: Image.Image, size=None, budget=None
) -> bool:
    """Whether translate_full would run `image` in tiles (the untiled forward would not fit
    the memory budget): what the app tells a visitor about how the photo was computed."""
    model = model_or_id if isinstance(model_or_id, nn.Module) else translator.load(model_or_id)
    content = processing.working_size(image.size, size)
    return needs_tiles(model, translator.multiple(model), content, budget, translator.device)


def stats_side(
    model: nn.Module,
    multiple: int,
    size: tuple[int, int],
    device: torch.device | None = None,
    budget: int | None = None,
) -> int:
    """The long side of the shared-statistics pass: the image's own when its untiled forward
    fits the memory budget, else the largest that does (at least MIN_STATS_SIZE). Measured on
    a trained ResNet-9 (bench/bench_tiles.py, curve): tiled against untiled at 1000x750 was
    mean 4.47 / max 56 levels with statistics at 256, 2.41 / 31 at 512 and 0.017 / 2 at the
    image's own size, so the pass is as large as memory allows."""
    budget = memory_budget(device) if budget is None else budget
    w, h = size
    per_pixel = untiled_peak_bytes(model, multiple, (w, h)) / max(w * h, 1)
    fits = math.sqrt(budget / max(per_pixel, 1e-9) * max(w, h) / min(w, h))
    return int(min(max(w, h), max(MIN_STATS_SIZE, fits)))
