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

import torch

from img2img.checkpoints.hub import availability, fetch_repo, probe_sources
from img2img.checkpoints.limits import check_size
from img2img.checkpoints.local import short_name, stored_models
from img2img.inference import Translator, default_device, has_dropout, size_multiple
from img2img.media.processing import open_image, working_size
from img2img.media.tiles import translate_full, translate_tiled, would_tile
from img2img.media.video import probe_video, translate_video
from img2img.plans.execution import auto_plan, without_compile

OutOfMemoryError = torch.OutOfMemoryError

__all__ = [
    "OutOfMemoryError",
    "Translator",
    "availability",
    "check_size",
    "fetch_repo",
    "has_dropout",
    "make_translator",
    "open_image",
    "probe_sources",
    "probe_video",
    "short_name",
    "size_multiple",
    "stored_models",
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
