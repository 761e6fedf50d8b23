"""Translator: the one place that picks the device and dtype and runs generators.

- device chosen once (cuda -> mps -> cpu), models loaded once and cached;
- no-grad forwards, batched when several images share a padded size;
- BatchNorm U-Nets normalise each image with its own statistics (the official pix2pix test
  semantics) without touching running stats; dropout stays off unless a seed asks for a
  variation;
- the execution plan (execution.py) picks dtype, memory format and compilation per device;
  the official mode always runs the eager fp32 reference plan.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from . import execution, processing
from .execution import ExecPlan
from .hub import load_model
from .models.norm import set_dropout, set_image_stats

Loader = Callable[[str], nn.Module]


def default_device() -> torch.device:
    """cuda if present, then Apple mps, else cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def size_multiple(model: nn.Module) -> int:
    """Spatial multiple a generator needs (2 ** downsamplings)."""
    return int(getattr(model, "size_multiple", 4))


class Translator:
    """Loads generators (cached) and translates PIL images with them.

    `loader` maps a checkpoint reference (a path or a catalog id) to a CPU module.
    `plan` is an execution plan name (eager, channels_last, bf16, fp16) or an ExecPlan; by
    default the fastest faithful one for the device (execution.auto_plan). `norm_stats` is
    "image" (per-image BatchNorm statistics, the official test default) or "running"
    (eval-mode running statistics). At most `max_models` stay loaded (LRU).
    """

    def __init__(
        self,
        device: str | torch.device | None = None,
        plan: str | ExecPlan | None = None,
        max_batch: int = 8,
        max_pixels: int = processing.DEFAULT_MAX_PIXELS,
        norm_stats: str = "image",
        loader: Loader = load_model,
        max_models: int = 4,
    ) -> None:
        if norm_stats not in ("image", "running"):
            raise ValueError(f"norm_stats must be 'image' or 'running', got {norm_stats!r}")
        self.device = torch.device(device) if device is not None else default_device()
        if plan is None:
            plan = execution.auto_plan(self.device)
        self.plan = execution.make_plan(plan) if isinstance(plan, str) else plan
        self.max_batch = max_batch
        self.max_pixels = max_pixels
        self.norm_stats = norm_stats
        self._loader = loader
        self.max_models = max_models
        self._models: OrderedDict[str, nn.Module] = OrderedDict()
        self._runners: dict[str, nn.Module] = {}  # compiled (or the same) callables
        self._lock = threading.RLock()  # modules are shared; mode switches must not interleave

    @property
    def dtype(self) -> torch.dtype:
        return self.plan.dtype

    def multiple(self, model: nn.Module) -> int:
        """Padding multiple: the architecture's. (Not larger buckets for compiled plans:
        extra padding changes InstanceNorm statistics, i.e. what the network computes.)"""
        return size_multiple(model)

    def is_loaded(self, checkpoint: str | os.PathLike) -> bool:
        return str(checkpoint) in self._models

    def load(self, checkpoint: str | os.PathLike) -> nn.Module:
        """The generator for `checkpoint` on this device, loaded on first use (LRU cache)."""
        key = str(checkpoint)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        # Load (maybe download) without the lock, so other requests keep translating.
        model = self._loader(key).eval().requires_grad_(False)
        set_image_stats(model, self.norm_stats == "image")
        model = execution.prepare(model, self.plan, self.device)
        runner = execution.compiled(model, self.plan)
        if self.plan.compile:  # compile now for the common 256 px size, not on a request
            execution.forward(runner, torch.zeros(1, 3, 256, 256), self.plan, self.device)
        with self._lock:
            if key not in self._models:
                self._models[key], self._runners[key] = model, runner
            self._models.move_to_end(key)
            while len(self._models) > self.max_models:
                old, _ = self._models.popitem(last=False)
                self._runners.pop(old, None)
            return self._models[key]

    def _runner(self, model: nn.Module) -> nn.Module:
        for key, loaded in self._models.items():
            if loaded is model:
                return self._runners[key]
        return model

    def forward(self, model: nn.Module, x: torch.Tensor, compiled: bool = True) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> float32 output on the CPU, under this plan."""
        runner = self._runner(model) if compiled else model
        plan = self.plan if compiled else execution.without_compile(self.plan)
        return execution.forward(runner, x, plan, self.device)

    def _run(self, model: nn.Module, x: torch.Tensor, seed: int | None):
        if seed is None:
            return self.forward(model, x)
        # Seeded variation: dropout on, RNG forked so the caller's RNG state is untouched.
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            set_dropout(model, True)
            try:  # eager: toggling dropout would force a recompile
                return self.forward(model, x, compiled=False)
            finally:
                set_dropout(model, False)

    def translate(
        self,
        checkpoint: str | os.PathLike | nn.Module,
        images: Sequence[Image.Image],
        size: int | None = 256,
        seed: int | None = None,
        official: bool = False,
    ) -> list[Image.Image]:
        """Translate decoded images; each output has its input's size (256x256 if official).

        `size` is the working long side (None: the image's own size). With a `seed`, dropout
        is on and each image gets its own seeded variation.
        """
        model = checkpoint if isinstance(checkpoint, nn.Module) else self.load(checkpoint)
        if official:
            if self.plan != execution.EAGER:
                raise ValueError("the official pipeline needs Translator(plan='eager')")
            preps = [processing.prepare_official(img) for img in images]
            tensors = preps
        else:
            mult = self.multiple(model)
            preps = [processing.prepare(img, size, mult) for img in images]
            tensors = [p.tensor for p in preps]
        outputs: list[torch.Tensor | None] = [None] * len(images)
        with self._lock:
            for idx in self._batches(tensors, per_image=seed is not None):
                y = self._run(model, torch.cat([tensors[i] for i in idx]), seed)
                for j, i in enumerate(idx):
                    outputs[i] = y[j : j + 1]
        if official:
            return [processing.finish_official(y) for y in outputs]
        return [processing.finish(y, p) for y, p in zip(outputs, preps, strict=True)]

    def _batches(self, tensors: list[torch.Tensor], per_image: bool) -> list[list[int]]:
        """Indices grouped by tensor shape, in chunks of at most max_batch."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, t in enumerate(tensors):
            groups.setdefault(tuple(t.shape), []).append(i)
        step = 1 if per_image else self.max_batch
        return [idx[k : k + step] for idx in groups.values() for k in range(0, len(idx), step)]

    def translate_files(
        self, checkpoint: str | os.PathLike, paths: Sequence[str | Path], **kwargs
    ) -> list[Image.Image]:
        """Open (EXIF-upright unless official) and translate image files."""
        exif = not kwargs.get("official", False)
        images = [processing.open_image(p, self.max_pixels, exif=exif) for p in paths]
        return self.translate(checkpoint, images, **kwargs)
