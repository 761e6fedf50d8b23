"""Converted OpenVINO models kept on disk, so a generator is traced once per machine, not per load.

Tracing and converting a published-width generator takes 5-20 s on a 2-core CPU; reading the
saved IR back takes ~0.05 s. The key is a SHA-256 of everything the converted graph depends on:
the openvino and torch versions, the generator's class and config, the source files of its
img2img classes, each module's norm mode (per-image BatchNorm statistics or running ones),
the trace's example size, and every tensor of its state dict. A different weight, version or
norm mode is a different entry, never a stale one.

Entries live under cache_dir()/openvino/<key>/ (IMG2IMG_CACHE or $HF_HOME/img2img), written to
a temporary folder and renamed into place (a crash leaves no half-written entry), weights saved
uncompressed (fp16 compression would change results). At most MAX_ENTRIES are kept (the least
recently used go). A cache that cannot be read or written is skipped with a log line.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from ...checkpoints.download import cache_dir

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the conversion itself changes (inputs, dynamic dims, options)
MAX_ENTRIES = 8


def root() -> Path:
    return cache_dir() / "openvino"


def _sources(model: nn.Module) -> list[str]:
    """The source files of the img2img classes in `model` (their forward code is traced)."""
    files = set()
    for m in model.modules():
        if type(m).__module__.startswith("img2img."):
            path = inspect.getsourcefile(type(m))
            if path:
                files.add(path)
    return sorted(files)


def key(
    model: nn.Module,
    ov_version: str,
    example_side: int,
    tag: str = "",
    wrapper: nn.Module | None = None,
) -> str:
    """The cache key of `model` converted by this openvino at this example size; `tag` names
    another graph of the same module (normstats' statistics graphs), traced from `wrapper`
    (a module around `model`, whose source files count too)."""
    h = hashlib.sha256()
    config = json.dumps(getattr(model, "config", None), sort_keys=True, default=str)
    head = [FORMAT, ov_version, torch.__version__, type(model).__qualname__, config, example_side]
    head.append(tag)
    h.update(repr(head).encode())
    for path in _sources(model if wrapper is None else wrapper):
        h.update(Path(path).read_bytes())
    for m in model.modules():
        h.update(repr((type(m).__name__, m.training, getattr(m, "image_stats", None))).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(repr((t.dtype, tuple(t.shape))).encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:32]


def load(ov, entry: str):
    """The cached ov.Model for `entry`, or None (missing or unreadable: logged)."""
    xml = root() / entry / "model.xml"
    if not xml.is_file():
        return None
    try:
        model = ov.Core().read_model(str(xml))
        os.utime(xml.parent)  # recently used: pruned last
        return model
    except Exception as e:  # a damaged entry: convert again (and overwrite it)
        log.warning("cached OpenVINO model %s unreadable (%s): converting again", entry, e)
        shutil.rmtree(xml.parent, ignore_errors=True)
        return None


def save(ov, entry: str, model) -> None:
    """Store `model` under `entry` (all or nothing), then prune old entries."""
    final = root() / entry
    try:
        root().mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root()))
        try:
            ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
            if final.exists():
                return  # another process stored the same entry meanwhile
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _prune()
    except OSError as e:
        log.warning("OpenVINO model cache not writable (%s): not cached", e)


def _prune() -> None:
    entries = [p for p in root().iterdir() if p.is_dir() and not p.name.startswith(".tmp-")]
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[MAX_ENTRIES:]:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in root().glob(".tmp-*"):  # left by a crash over an hour ago
        if time.time() - tmp.stat().st_mtime > 3600:
            shutil.rmtree(tmp, ignore_errors=True)
