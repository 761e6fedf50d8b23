"""Deployment settings (environment) and the app's Translator, made on first use.

Environment:
    IMG2IMG_DEFAULT_MODEL   model shown first (default pix2pix/night2day)
    IMG2IMG_MAX_SIDE        largest side computed in one piece (default 1024); larger photos
                            are downscaled to it ("Large"), or tiled ("Full size", media.py)
    IMG2IMG_MAX_MODELS      generators kept in memory (default 4)
    IMG2IMG_TMP_TTL         seconds uploads and results stay on disk (default 3600)
    IMG2IMG_ALLOW_CUSTOM    0 removes "Your own model" (a visitor's Hub repo or checkpoint)
    IMG2IMG_MAX_CHECKPOINT_MB  largest checkpoint a visitor may load, on disk and in memory
                            once decompressed (default 300)
    IMG2IMG_MAX_JOB_SECONDS longest estimated job (Full size, Video) accepted: default 600 on
                            a CPU, no limit on a GPU; 0 or "none": no limit (docs/reliability.md)
    SPACES_ZERO_GPU         set by Hugging Face on ZeroGPU hardware
"""

from __future__ import annotations

import importlib
import os
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType

from gradio.utils import get_upload_folder

try:  # ZeroGPU: `spaces` must be imported before torch; elsewhere there is no GPU() to call
    import spaces
except ImportError:
    spaces = None

ROOT = Path(__file__).resolve().parents[1]  # the app's folder
MAX_SIDE = int(os.environ.get("IMG2IMG_MAX_SIDE", 1024))
FAST_SIZE = 256
DEFAULT_MODEL = os.environ.get("IMG2IMG_DEFAULT_MODEL", "pix2pix/night2day")
# Results live inside Gradio's own file cache, so that Gradio serves our files as they are:
# it copies anything else there, and a PIL image it saves itself goes under a name made from
# its content, rewritten for every identical result while another response streams it.
OUTPUT_DIR = Path(get_upload_folder()) / "img2img-outputs"
TMP_TTL_S = int(os.environ.get("IMG2IMG_TMP_TTL", 3600))  # uploads and results kept this long
ALLOW_CUSTOM = os.environ.get("IMG2IMG_ALLOW_CUSTOM", "1").strip() != "0"
MAX_CHECKPOINT_MB = int(os.environ.get("IMG2IMG_MAX_CHECKPOINT_MB", 300))
CUSTOM = "custom"  # the picker's value for "Your own model"
ZERO_GPU = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")
CPU_JOB_SECONDS = 600  # IMG2IMG_MAX_JOB_SECONDS's default on a CPU


def max_job_seconds(device) -> float | None:
    """IMG2IMG_MAX_JOB_SECONDS, else CPU_JOB_SECONDS on a CPU and no limit on a GPU (on
    ZeroGPU the GPU reservation bounds a job); None: no limit."""
    env = os.environ.get("IMG2IMG_MAX_JOB_SECONDS", "").strip().lower()
    if env in ("0", "none", "off"):
        return None
    if env:
        return float(env)
    return CPU_JOB_SECONDS if getattr(device, "type", str(device)) == "cpu" else None


class _Engine:
    """webui.engine and the app's Translator, loaded once by one thread of their own."""

    def __init__(self) -> None:
        self.module: ModuleType | None = None
        self.translator = None
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()  # guards only the thread's start, never an import

    def start(self) -> None:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._load, name="img2img engine")
                self._thread.daemon = True
                self._thread.start()

    def _load(self) -> None:
        try:
            module = importlib.import_module("webui.engine")
            max_models = int(os.environ.get("IMG2IMG_MAX_MODELS", 4))
            self.translator = module.make_translator(ZERO_GPU, max_models)
            self.module = module
        except BaseException as e:  # every waiting handler re-raises it
            self.error = e
        finally:
            self.ready.set()

    def get(self) -> ModuleType:
        if not self.ready.is_set():
            self.start()
            self.ready.wait()
        if self.error is not None:
            raise self.error
        return self.module


_engine = _Engine()


def engine() -> ModuleType:
    """webui.engine (the torch side), imported once in its own thread; callers wait for it.
    The page is served before torch loads: `python app.py` starts it right after launch."""
    return _engine.get()


def loaded() -> ModuleType | None:
    """webui.engine if it is loaded already (never waits), else None."""
    return _engine.module if _engine.ready.is_set() else None


def translator():
    """The app's Translator (made by the engine's thread: webui.engine.make_translator)."""
    engine()
    return _engine.translator


def is_loaded(key: str) -> bool:
    """Whether the Translator holds `key` already (False before torch is loaded)."""
    return _engine.translator is not None and _engine.translator.is_loaded(key)


def gpu(duration):
    """@spaces.GPU(duration=...) on ZeroGPU (one reservation per call); elsewhere a no-op."""

    def wrap(fn):
        return spaces.GPU(duration=duration)(fn) if spaces is not None else fn

    return wrap


def output_folder() -> Path:
    """A fresh folder under OUTPUT_DIR for one result's files (each written once, never
    rewritten: photo._save_png); results older than TMP_TTL_S go."""
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
