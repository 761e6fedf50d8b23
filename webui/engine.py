"""The UI's one door to the torch-backed library: every name the app's handlers call that
needs torch (~2 s to import) comes from here, and nothing else in `webui/` or `app.py`
imports the torch side.

This module is imported once, by `runtime.engine()`, in one thread of its own ("img2img
engine", started right after launch or by the first request); handlers call
`runtime.engine()` and wait for it. One thread importing the library means no two threads
import its modules in different orders (which can meet a partially initialised module), and
no lock around imports. The page itself is built without torch (tests/test_app.py checks).

Adding a handler that needs the library: import the name here (module level), then call
`runtime.engine().<name>` in the handler.
"""

from __future__ import annotations

import signal
import time

import torch
from PIL import Image

from img2img.checkpoints.hub import availability, fetch_repo, probe_sources
from img2img.checkpoints.limits import check_size
from img2img.checkpoints.local import short_name, stored_models
from img2img.inference import Translator, default_device, has_dropout, size_multiple
from img2img.media import tiles
from img2img.media.live import LiveMeter, translate_frame
from img2img.media.processing import open_image, working_size
from img2img.media.tiles import translate_full, translate_tiled, would_tile
from img2img.media.video import probe_video, translate_video
from img2img.plans.execution import auto_plan, without_compile
from img2img.sigstack import off_altstack
from img2img.speed import Estimate, SpeedBook, SpeedKey, check_job, duration

# Ctrl-C's handler off any thread's alternate signal stack, which OpenVINO leaves dangling
# once a model it compiled is freed (img2img/sigstack.py); SIGTERM has no handler here.
off_altstack(signal.SIGINT)

OutOfMemoryError = torch.OutOfMemoryError

__all__ = [
    "Estimate",
    "LiveMeter",
    "OutOfMemoryError",
    "Translator",
    "availability",
    "check_job",
    "check_size",
    "duration",
    "estimate",
    "fetch_repo",
    "has_dropout",
    "make_translator",
    "observe",
    "open_image",
    "probe_sources",
    "probe_video",
    "short_name",
    "size_multiple",
    "speed",
    "stored_models",
    "translate_frame",
    "translate_full",
    "translate_tiled",
    "would_tile",
    "translate_video",
    "working_size",
]


def make_translator(zero_gpu: bool, max_models: int) -> Translator:
    """The app's Translator: the default device and its fastest faithful plan (environment
    overrides applied); torch.compile refused on ZeroGPU, which does not support it."""
    device = default_device()
    plan = auto_plan(device)
    if zero_gpu and plan.compile:  # HF docs: ZeroGPU does not support torch.compile
        print("* IMG2IMG_COMPILE=1 refused: ZeroGPU does not support torch.compile")
        plan = without_compile(plan)
    return Translator(device=device, plan=plan, max_models=max_models)


# ---------------------------------------------------------------------------- job times

speed = SpeedBook()  # this process's measured seconds per megapixel (img2img/speed.py)
PROBE = 256  # the first guess's timed forward: the Fast size, warmed up by the plans


def _key(translator: Translator, key: str, mode: str) -> SpeedKey:
    return SpeedKey(key, translator.plan.describe(), str(translator.device), mode)


def observe(translator: Translator, key: str, mode: str, seconds: float, size) -> None:
    """Learn from one pass of `key` over an image of `size` (w, h) that took `seconds`."""
    speed.observe(_key(translator, key, mode), seconds, size[0] * size[1] / 1e6)


def estimate(translator: Translator, key: str, mode: str, size, guess: bool) -> Estimate | None:
    """Seconds one pass of `key` over `size` (w, h) in `mode` ("fast", "whole", "tiles")
    will take here; with `guess` (the model is loaded), a first guess when none was measured."""
    first = (lambda: _first_rate(translator, key, mode, size)) if guess else None
    return speed.estimate(_key(translator, key, mode), size[0] * size[1] / 1e6, first)


def _first_rate(translator: Translator, key: str, mode: str, size) -> float:
    """Seconds per megapixel from one timed PROBE² forward (the FLOPs of these fully
    convolutional networks grow with the pixels), times what tiles compute beyond the image:
    window overlap and the statistics pass."""
    probe = Image.new("RGB", (PROBE, PROBE), (128, 128, 128))
    start = time.perf_counter()
    translator.translate(key, [probe], size=PROBE)
    seconds = time.perf_counter() - start
    observe(translator, key, "fast", seconds, probe.size)
    rate = seconds / (PROBE * PROBE / 1e6)
    return rate * (_tile_overhead(translator, key, size) if mode == "tiles" else 1.0)


def _tile_overhead(translator: Translator, key: str, size) -> float:
    """Pixels the tiled run computes (every window, and the shared-statistics pass) per
    pixel of the image."""
    model = translator.load(key)
    multiple = translator.multiple(model)
    tile = tiles.default_tile(multiple)
    rows, cols = tiles.grid(size, tile, tile // 4, multiple)
    windows = len(rows.starts) * rows.length * len(cols.starts) * cols.length
    side = tiles.stats_side(model, multiple, size, translator.device)
    stats = size[0] * size[1] * (side / max(size)) ** 2
    return (windows + stats) / (size[0] * size[1])
