"""Deployment settings (environment) and the app's Translator, made on first use.

Environment:
    IMG2IMG_DEFAULT_MODEL   model shown first (default pix2pix/night2day)
    IMG2IMG_MAX_SIDE        largest side computed in one piece (default 1024); larger photos
                            are downscaled to it ("Large"), or tiled ("Full size", media.py)
    IMG2IMG_MAX_MODELS      generators kept in memory (default 4)
    IMG2IMG_TMP_TTL         seconds uploads and results stay on disk (default 3600)
    IMG2IMG_ALLOW_CUSTOM    0 removes "Your own model" (a visitor's Hub repo or checkpoint)
    IMG2IMG_MAX_CHECKPOINT_MB  largest checkpoint a visitor may load (default 300)
    SPACES_ZERO_GPU         set by Hugging Face on ZeroGPU hardware
"""

from __future__ import annotations

try:  # ZeroGPU: `spaces` must be imported before torch; elsewhere there is no GPU() to call
    import spaces
except ImportError:
    spaces = None

import os  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]  # the app's folder
MAX_SIDE = int(os.environ.get("IMG2IMG_MAX_SIDE", 1024))
FAST_SIZE = 256
DEFAULT_MODEL = os.environ.get("IMG2IMG_DEFAULT_MODEL", "pix2pix/night2day")
OUTPUT_DIR = Path(tempfile.gettempdir()) / "img2img-outputs"
TMP_TTL_S = int(os.environ.get("IMG2IMG_TMP_TTL", 3600))  # uploads and results kept this long
ALLOW_CUSTOM = os.environ.get("IMG2IMG_ALLOW_CUSTOM", "1").strip() != "0"
MAX_CHECKPOINT_MB = int(os.environ.get("IMG2IMG_MAX_CHECKPOINT_MB", 300))
CUSTOM = "custom"  # the picker's value for "Your own model"
ZERO_GPU = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")

_translator = None
_translator_lock = threading.Lock()
_import_lock = threading.Lock()
_imported = False


def library() -> None:
    """Import the torch-backed library once, under one lock. The page is served before
    torch loads, so the start-up thread and the first requests would otherwise import
    img2img's modules at the same time, and two threads importing one package's modules
    in different orders can meet a partially initialised module (an ImportError)."""
    global _imported
    if _imported:
        return
    with _import_lock:
        if not _imported:
            import img2img.checkpoints.hub
            import img2img.inference
            import img2img.media.processing
            import img2img.media.tiles
            import img2img.media.video  # noqa: F401

            _imported = True


def translator():
    """The app's Translator, made on first use: torch (~2 s to import) loads after the page
    is served (`python app.py` warms it up right after launch), not before."""
    global _translator
    with _translator_lock:
        if _translator is None:
            library()
            from img2img.inference import Translator, default_device
            from img2img.plans.execution import auto_plan, without_compile

            device = default_device()
            plan = auto_plan(device)
            if ZERO_GPU and plan.compile:  # HF docs: ZeroGPU does not support torch.compile
                print("* IMG2IMG_COMPILE=1 refused: ZeroGPU does not support torch.compile")
                plan = without_compile(plan)
            max_models = int(os.environ.get("IMG2IMG_MAX_MODELS", 4))
            _translator = Translator(device=device, plan=plan, max_models=max_models)
        return _translator


def is_loaded(key: str) -> bool:
    """Whether the Translator holds `key` already (False before torch is loaded)."""
    return _translator is not None and _translator.is_loaded(key)


def gpu(duration):
    """@spaces.GPU(duration=...) on ZeroGPU (one reservation per call); elsewhere a no-op."""

    def wrap(fn):
        return spaces.GPU(duration=duration)(fn) if spaces is not None else fn

    return wrap


def output_folder() -> Path:
    """A fresh folder under OUTPUT_DIR for one result; results older than TMP_TTL_S go."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in OUTPUT_DIR.glob("*/*"):
        try:  # a concurrent request may be pruning the same file
            if now - old.stat().st_mtime > TMP_TTL_S:
                old.unlink()
                old.parent.rmdir()
        except OSError:
            pass
    return Path(tempfile.mkdtemp(dir=OUTPUT_DIR))
