"""Your own model: a visitor's Hub repo or uploaded checkpoint, read by the same strict,
pickle-safe loader as the catalog's models, size-capped (IMG2IMG_MAX_CHECKPOINT_MB: on disk,
and in memory once decompressed), and switched off with IMG2IMG_ALLOW_CUSTOM=0."""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from . import describe
from .messages import failure_text, failures
from .runtime import MAX_CHECKPOINT_MB, engine, translator

CHECKPOINT_TYPES = [".safetensors", ".pth", ".pt", ".bin"]
TRACK_PROGRESS = gr.Progress(track_tqdm=True)


def _checkpoint_path(repo: str | None, file: str | None, progress) -> tuple[str, str]:
    """(local path, name) of the visitor's checkpoint: the uploaded file, else the Hub repo."""
    if file:
        path = Path(file)
        if path.suffix.lower() not in CHECKPOINT_TYPES:
            raise gr.Error(f"{path.name} is not a checkpoint: use {', '.join(CHECKPOINT_TYPES)}")
        if path.stat().st_size > MAX_CHECKPOINT_MB * 10**6:
            raise gr.Error(
                f"{path.name} is over the limit of {MAX_CHECKPOINT_MB} MB set here "
                "(IMG2IMG_MAX_CHECKPOINT_MB)"
            )
        return str(path), path.name
    if not (repo or "").strip():
        raise gr.Error("give a Hub repo id (namespace/name) or upload a checkpoint file first")
    progress(0, desc=f"Downloading {repo.strip()[:80]}")
    return str(engine().fetch_repo(repo, MAX_CHECKPOINT_MB * 10**6)), repo.strip()


def load_custom(repo, file, progress=TRACK_PROGRESS):
    """Load my model: the visitor's checkpoint through load_model's strict, pickle-safe path."""
    try:
        path, name = _checkpoint_path(repo, file, progress)
        # The cap on what it takes in memory too: a compressed zip is small on disk.
        engine().check_size(path, MAX_CHECKPOINT_MB * 10**6, "IMG2IMG_MAX_CHECKPOINT_MB")
        model = translator().load(path)
    except failures() as e:
        status = describe.error_markdown(failure_text(e), "Your model")
        return status, None, None, gr.update(visible=False)
    lib = engine()
    size = sum(p.numel() for p in model.parameters())
    dropout = lib.has_dropout(model)
    arch = describe.architecture(model.config, size, lib.size_multiple(model), dropout)
    token = f"{name}#{time.time_ns()}"  # a new load is a new model, even from the same file
    custom = {"key": path, "name": name, "arch": arch, "dropout": dropout, "id": token}
    mine = {"id": token, "dropout": dropout}  # for the browser: no server path
    card = describe.custom_card(custom, MAX_CHECKPOINT_MB)
    return card, custom, mine, gr.update(visible=dropout)


def custom_inputs(prefix: str = "") -> dict:
    """Your own model: a Hub repo id or a checkpoint file, the Load button, what it found.
    `prefix` keeps each tab's element ids its own (the Video tab's: "clip-")."""
    return dict(
        repo=gr.Textbox(label="Hub repo id", placeholder="namespace/name[@revision]"),
        checkpoint=gr.File(
            label=f"…or a checkpoint file (up to {MAX_CHECKPOINT_MB} MB)",
            file_types=CHECKPOINT_TYPES,
            type="filepath",
            height=90,
            elem_id=f"{prefix}checkpoint",
        ),
        load=gr.Button("Load my model", size="sm", elem_id=f"{prefix}load-custom"),
        custom_info=gr.Markdown(
            describe.custom_card(None, MAX_CHECKPOINT_MB), elem_id=f"{prefix}custom-info"
        ),
    )
