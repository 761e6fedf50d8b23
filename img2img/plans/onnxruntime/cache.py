"""Exported ONNX graphs kept on disk, so a generator is traced once per machine, not per load.

Exporting a published-width generator takes 2-3 s on a 2-core CPU (U-Net-256: 218 MB);
reading the saved file back and checking it ~0.4 s. The key is a SHA-256 of everything the
graph depends on: the onnxruntime, torch and opset versions, the generator's class and
config, the source files of its img2img classes (their forward is traced), each module's
mode (training flag, per-image or running BatchNorm statistics) and every weight.

Entries live under cache_dir()/onnxruntime/ (IMG2IMG_CACHE or $HF_HOME/img2img), each
`<key>.onnx` with `<key>.json` (its size and SHA-256), both written atomically (atomic.py),
the manifest last: an entry counts only once its manifest is there. At most MAX_ENTRIES are
kept (the least recently used go). A damaged entry (not matching its manifest) is removed and
exported again, one log line; a cache that cannot be written leaves the export in use for the
process (`save` never raises).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import time
from pathlib import Path

import torch
from torch import nn

from ... import atomic
from ...checkpoints.download import cache_dir
from ...export import OPSET, fingerprint

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the export or the entry changes
MAX_ENTRIES = 8


def root() -> Path:
    return cache_dir() / "onnxruntime"


def key(model: nn.Module, runtime_version: str) -> str:
    """The cache key of `model` exported for this onnxruntime."""
    h = hashlib.sha256()
    config = json.dumps(getattr(model, "config", None), sort_keys=True, default=str)
    head = [FORMAT, runtime_version, torch.__version__, OPSET, type(model).__qualname__, config]
    h.update(repr(head).encode())
    ours = {type(m) for m in model.modules() if type(m).__module__.startswith("img2img.")}
    for path in sorted({inspect.getsourcefile(cls) or "" for cls in ours} - {""}):
        h.update(Path(path).read_bytes())
    for m in model.modules():
        h.update(repr((type(m).__name__, m.training, getattr(m, "image_stats", None))).encode())
    h.update(fingerprint(model).encode())
    return h.hexdigest()[:32]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(entry: str) -> bytes | None:
    """The cached graph for `entry`, or None: not cached, or damaged (logged, removed)."""
    model, manifest = root() / f"{entry}.onnx", root() / f"{entry}.json"
    if not manifest.is_file():
        return None
    try:
        want = json.loads(manifest.read_text())
        data = model.read_bytes()
        why = None
        if len(data) != want["size"]:
            why = f"{len(data)} bytes, {want['size']} expected"
        elif _digest(data) != want["sha256"]:
            why = "SHA-256 mismatch"
    except (OSError, ValueError, KeyError, TypeError) as e:
        why = f"unreadable: {type(e).__name__}: {e}"
    if why is not None:
        discard(entry, f"is damaged ({why})")
        return None
    try:
        os.utime(manifest)  # recently used: pruned last
    except OSError:
        pass  # a read-only cache: used as it is
    return data


def discard(entry: str, why: str) -> None:
    """Log that cached `entry` `why` (one line) and remove it (when the cache allows)."""
    log.warning("cached ONNX graph %s %s: exporting again", root() / f"{entry}.onnx", why)
    for suffix in (".json", ".onnx"):
        try:
            (root() / f"{entry}{suffix}").unlink(missing_ok=True)
        except OSError:
            pass  # a read-only cache: it stays


def save(entry: str, data: bytes) -> None:
    """Store `data` under `entry`, then prune old entries. Never raises (one log line)."""
    try:
        root().mkdir(parents=True, exist_ok=True)
        with atomic.atomic_file(root() / f"{entry}.onnx") as f:
            f.write(data)
        manifest = {"format": FORMAT, "size": len(data), "sha256": _digest(data)}
        atomic.write_text(root() / f"{entry}.json", json.dumps(manifest))
        _prune()
    except OSError as e:
        log.warning(
            "ONNX graph cache %s not writable (%s): not cached, this process keeps the graph",
            root(),
            e.strerror or e,
        )


def _prune() -> None:
    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # removed by another process meanwhile
            return 0.0

    manifests = sorted(root().glob("*.json"), key=mtime, reverse=True)
    for old in manifests[MAX_ENTRIES:]:
        for path in (old, old.with_suffix(".onnx")):
            path.unlink(missing_ok=True)
    for graph in root().glob("*.onnx"):  # a crash between the graph and its manifest
        if not graph.with_suffix(".json").exists() and time.time() - mtime(graph) > 3600:
            graph.unlink(missing_ok=True)
    atomic.remove_stale_temporaries(root())
