"""Translator: the one place that picks the device and dtype and runs generators.

- device chosen once (cuda -> mps -> cpu), models loaded once and cached;
- no-grad forwards, batched when several images share a padded size;
- BatchNorm U-Nets normalise each image with its own statistics (the official pix2pix test
  semantics) without touching running stats; dropout stays off unless a seed asks for a
  variation;
- the execution plan (execution.py) picks dtype, memory format and compilation per device;
  the official mode always runs the eager fp32 reference plan.

Seeds are integers from 0 to MAX_SEED = 2**32 - 1. Torch's CPU generator keeps only the low
32 bits of a seed (1 and 2**32 + 1 gave the same variation), so larger, negative or
non-integer seeds are refused with SeedError rather than folded onto another seed.
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from .checkpoints.hub import load_model
from .errors import ConfigError, SeedError
from .media import channels, processing
from .models import registry
from .models.norm import set_dropout, set_image_stats
from .plans import execution
from .plans.execution import ExecPlan

Loader = Callable[[str], nn.Module]
MAX_SEED = 2**32 - 1  # torch's CPU generator (mt19937) is seeded with 32 bits
_CALLER_CACHE = 2  # prepared copies of modules passed in by callers, kept per Translator


def _fingerprint(module: nn.Module) -> tuple:
    """What a caller's module computes, as far as reuse of its prepared copy is concerned: its
    tensors' storage and in-place version counters (a replaced or modified tensor changes it),
    and its norm settings."""
    state = module.state_dict().values()
    tensors = tuple((t.data_ptr(), t._version, tuple(t.shape)) for t in state)
    return tensors, tuple(getattr(m, "image_stats", None) for m in module.modules())


def check_seed(seed: object) -> int | None:
    """`seed` as a plain int (None stays None); SeedError unless an integer in [0, MAX_SEED].

    Integer types such as numpy's are accepted; bools, floats and strings are not.
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise SeedError(f"the seed must be an integer from 0 to {MAX_SEED}, got {repr(seed)[:40]}")
    value = int(seed)
    if not 0 <= value <= MAX_SEED:
        raise SeedError(f"the seed must be from 0 to {MAX_SEED} (2**32 - 1), got {value}")
    return value


def default_device() -> torch.device:
    """cuda if present, then Apple mps, else cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device, refused with a precise ConfigError if it is not here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"unknown device {device!r}: use cpu, cuda, cuda:N or mps") from e
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {device!r} asked for, but no CUDA GPU is available here")
        if dev.index is not None and dev.index >= count:
            raise ConfigError(f"device {device!r} asked for, but there are {count} CUDA GPU(s)")
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ConfigError(f"device {device!r} asked for, but Apple MPS is not available here")
    return dev


def has_dropout(model: nn.Module) -> bool:
    """Whether a seed can change this generator's output (only dropout draws random numbers)."""
    return any(isinstance(m, nn.Dropout) for m in model.modules())


def size_multiple(model: nn.Module) -> int:
    """Spatial multiple a generator needs (2 ** downsamplings), from the registry."""
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise ConfigError(
            f"{type(model).__name__} has no .config: translate modules built by img2img.models "
            "or loaded with img2img.load_generator"
        )
    return registry.size_multiple(config)


@dataclass
class Prepared:
    """A generator ready to run under a Translator's plan, and what serialises its use."""

    model: nn.Module  # eval, no grad, on the device, the plan's memory format
    runner: Callable[[torch.Tensor], torch.Tensor]  # `model`, torch.compile(model), or
    # the plan's backend's runner converted from it (e.g. an OpenVINORunner: plans/backend.py)
    lock: threading.Lock = field(default_factory=threading.Lock)  # dropout toggles


class Translator:
    """Loads generators (cached) and translates PIL images with them.

    `loader` maps a checkpoint reference (a catalog id or a path) to a CPU module.
    `plan` is an execution plan name (a row of execution.PLANS: eager, channels_last, bf16,
    fp16, openvino, openvino-f32, openvino-bf16) or an ExecPlan; by default the fastest
    faithful one for the device (execution.auto_plan). A module passed in is prepared once
    and reused while its weights are unchanged (the two most recent). `norm_stats` is
    "image" (per-image BatchNorm statistics, the official test default) or "running"
    (eval-mode running statistics). At most `max_models` stay loaded (LRU). `throughput`
    (batch jobs, e.g. translate over a folder): a backend with a throughput mode runs each
    batch as parallel requests (OpenVINO; single images keep its latency mode).

    Every module runs through one `prepare` path, whether loaded here or passed in; a module
    passed to `translate` is copied first and never changed. Each prepared model has its own
    lock, so different models translate concurrently.
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
        throughput: bool = False,
    ) -> None:
        if norm_stats not in ("image", "running"):
            raise ConfigError(f"norm_stats must be 'image' or 'running', got {norm_stats!r}")
        self.device = check_device(device) if device is not None else default_device()
        if plan is None:
            plan = execution.auto_plan(self.device)
        self.plan = execution.make_plan(plan) if isinstance(plan, str) else plan
        if throughput:
            self.plan = dataclasses.replace(self.plan, throughput=True)
        self.max_batch = max_batch
        self.max_pixels = max_pixels
        self.norm_stats = norm_stats
        self._loader = loader
        self.max_models = max_models
        self._models: OrderedDict[str, Prepared] = OrderedDict()
        self._lock = threading.Lock()  # guards the caches only, never a forward
        self._callers: OrderedDict[int, tuple[weakref.ref, tuple, Prepared]] = OrderedDict()

    @property
    def dtype(self) -> torch.dtype:
        return self.plan.dtype

    def multiple(self, model: nn.Module) -> int:
        """Padding multiple: the architecture's. (Not larger buckets for compiled plans:
        extra padding changes InstanceNorm statistics, i.e. what the network computes.)"""
        return size_multiple(model)

    def is_loaded(self, checkpoint: str | os.PathLike) -> bool:
        return str(checkpoint) in self._models

    def prepare(self, module: nn.Module) -> Prepared:
        """`module` made ready for this translator: eval, no grad, BatchNorm statistics per
        `norm_stats`, dropout off, on the device in the plan's format (compiled or converted by
        the plan's backend, e.g. OpenVINO, and warmed up at 256x256, if the plan does that).
        The caller's module is left untouched: this works on a copy."""
        return self._prepare(module, owned=False)

    def _prepare(self, module: nn.Module, owned: bool) -> Prepared:
        """`prepare`; `owned`: `module` is ours alone (fresh from the default loader), so it is
        prepared in place instead of copied (a copy held the weights twice at load: +45 MB
        peak for a ResNet-9)."""
        size_multiple(module)  # refuse modules the registry does not describe, early
        model = module if owned else copy.deepcopy(module)
        model = model.eval().requires_grad_(False)
        set_image_stats(model, self.norm_stats == "image")
        model = execution.prepare(model, self.plan, self.device)
        runner = execution.compiled(model, self.plan, self.device)
        if self.plan.compile or runner is not model:
            # Compile / set up kernels now for the common 256 px size, not on a request.
            probe = torch.zeros(1, channels.model_channels(model)[0], 256, 256)
            execution.forward(runner, probe, self.plan, self.device)
        return Prepared(model, runner)

    def load(self, checkpoint: str | os.PathLike) -> nn.Module:
        """The prepared generator for `checkpoint`, loaded on first use (LRU cache)."""
        return self._entry(checkpoint).model

    def runner(self, checkpoint: str | os.PathLike) -> Callable[[torch.Tensor], torch.Tensor]:
        """What the plan's forwards of `checkpoint` call (the module, its compiled form or its
        backend's runner), loaded on first use."""
        return self._entry(checkpoint).runner

    def _entry(self, checkpoint: str | os.PathLike) -> Prepared:
        key = str(checkpoint)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        # Load (maybe download) without the lock, so other requests keep translating.
        # hub.load_model builds a new module on every call: nobody else holds it.
        prepared = self._prepare(self._loader(key), owned=self._loader is load_model)
        with self._lock:
            prepared = self._models.setdefault(key, prepared)
            self._models.move_to_end(key)
            while len(self._models) > self.max_models:
                self._models.popitem(last=False)
            return prepared

    def _resolve(self, checkpoint: str | os.PathLike | nn.Module) -> Prepared:
        if not isinstance(checkpoint, nn.Module):
            return self._entry(checkpoint)
        with self._lock:  # one of ours (e.g. from load()): use it as it is
            for prepared in self._models.values():
                if prepared.model is checkpoint:
                    return prepared
            # A caller's module seen recently, weights unchanged since: reuse its prepared
            # copy (an OpenVINO conversion takes seconds; it must not run on every call).
            key, mark = id(checkpoint), _fingerprint(checkpoint)
            seen = self._callers.get(key)
            if seen is not None and seen[0]() is checkpoint and seen[1] == mark:
                self._callers.move_to_end(key)
                return seen[2]
        prepared = self.prepare(checkpoint)
        with self._lock:
            self._callers[key] = (weakref.ref(checkpoint), mark, prepared)
            while len(self._callers) > _CALLER_CACHE:
                self._callers.popitem(last=False)
        return prepared

    def forward(self, model: nn.Module, x: torch.Tensor, compiled: bool = True) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> float32 output on the CPU, under this plan."""
        prepared = self._resolve(model)
        with prepared.lock:
            return self._forward(prepared, x, compiled)

    def _forward(self, prepared: Prepared, x: torch.Tensor, compiled: bool) -> torch.Tensor:
        runner = prepared.runner if compiled else prepared.model
        plan = self.plan if compiled else execution.without_compile(self.plan)
        return execution.forward(runner, x, plan, self.device)

    def _run(self, prepared: Prepared, x: torch.Tensor, seed: int | None) -> torch.Tensor:
        if seed is None:
            return self._forward(prepared, x, compiled=True)
        # Seeded variation: dropout on, RNG forked so the caller's RNG state is untouched.
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            set_dropout(prepared.model, True)
            try:  # eager: toggling dropout would force a recompile
                return self._forward(prepared, x, compiled=False)
            finally:
                set_dropout(prepared.model, False)

    def translate(
        self,
        checkpoint: str | os.PathLike | nn.Module,
        images: Sequence[Image.Image],
        size: int | None = 256,
        seed: int | None = None,
        official: bool = False,
        bits: int = 8,
    ) -> list[Image.Image]:
        """Translate decoded images; each output has its input's size (256x256 if official).

        `checkpoint` is a catalog id, a path, or a module (copied, never changed). `size` is
        the working long side (None: the image's own size). With a `seed` (an integer from 0
        to MAX_SEED; SeedError otherwise), dropout is on and each image gets its own seeded
        variation. The model's channels decide the modes (media/channels.py): a 1-channel
        model reads grey (16-bit grey at full precision) and gives "L" images ("I;16" with
        `bits` 16), a 4-channel one RGBA.
        """
        seed = check_seed(seed)
        if official and dataclasses.replace(self.plan, throughput=False) != execution.EAGER:
            raise ConfigError("the official pipeline needs Translator(plan='eager')")
        prepared = self._resolve(checkpoint)
        ins, outs = channels.model_channels(prepared.model)
        channels.check_bits(bits, outs)
        if official and (ins, outs) != (3, 3):
            raise ConfigError(f"the official pipeline is RGB; this model maps {ins} -> {outs}")
        if official:
            preps = [processing.prepare_official(img) for img in images]
            tensors = preps
        else:
            mult = self.multiple(prepared.model)
            preps = [channels.prepare(img, size, mult, ins) for img in images]
            tensors = [p.tensor for p in preps]
        outputs: list[torch.Tensor | None] = [None] * len(images)
        with prepared.lock:
            for idx in self._batches(tensors, per_image=seed is not None):
                y = self._run(prepared, torch.cat([tensors[i] for i in idx]), seed)
                for j, i in enumerate(idx):
                    outputs[i] = y[j : j + 1]
        if official:
            return [processing.finish_official(y) for y in outputs]
        return [channels.finish(y, p, bits) for y, p in zip(outputs, preps, strict=True)]

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
