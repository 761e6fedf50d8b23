"""What a visitor is told when something fails: the library's message without server paths
(the log keeps the full text), and the failures an event turns into a status message."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import gradio as gr
from huggingface_hub import constants

from img2img import Img2ImgError
from img2img.checkpoints.catalog import weights_dir
from img2img.checkpoints.download import cache_dir

from .runtime import OUTPUT_DIR, ROOT, loaded
from .serving import path_roots, public_message


def weights_name() -> str:
    """The weights folder as visitors are told it: relative to the app's folder when inside
    it (`weights`), else by the setting that names it, never its absolute path."""
    folder = weights_dir()
    if folder.absolute().is_relative_to(ROOT):
        return str(folder.absolute().relative_to(ROOT))
    return "$IMG2IMG_WEIGHTS_DIR" if os.environ.get("IMG2IMG_WEIGHTS_DIR") else "<weights>"


def _path_roots() -> list[tuple[str, str]]:
    """Server folders an error message may name, each with the placeholder sent instead."""
    return path_roots(
        {
            weights_name(): weights_dir(),
            "<cache>": cache_dir(),
            "<hf-cache>": Path(constants.HF_HUB_CACHE),
            "<hf-home>": Path(constants.HF_HOME),
            "<uploads>": Path(gr.utils.get_upload_folder()),
            "<outputs>": OUTPUT_DIR,
            "<app>": ROOT,
            "<tmp>": Path(tempfile.gettempdir()),
            "~": Path.home(),
        }
    )


def public(text: str) -> str:
    """`text` without absolute server paths: it goes to visitors (the log keeps all)."""
    return public_message(text, _path_roots())


def failure_text(error: BaseException) -> str:
    if isinstance(error, gr.Error):
        return public(error.message)
    if isinstance(error, Img2ImgError):
        return public(str(error))
    return "out of memory. What you can do: choose Fast · 256 px; or use a smaller photo"


def failures() -> tuple[type[BaseException], ...]:
    """What an event shows as a status message (evaluated only when something was raised):
    the library's errors, the UI's own, and running out of memory (torch's, once the engine
    is loaded: before that no torch code has run, so nothing can be out of torch's memory)."""
    engine = loaded()
    return (Img2ImgError, gr.Error, engine.OutOfMemoryError if engine else _NotLoaded)


class _NotLoaded(Exception):
    """Stands for torch's OutOfMemoryError before the engine is loaded (never raised)."""


def as_dict(value) -> dict | None:
    """A gr.State value as a dict: cached examples hand it back as its JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) and value else None
