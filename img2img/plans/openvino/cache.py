"""Converted OpenVINO models kept on disk, so a generator is traced once per machine, not per load.

Tracing and converting a published-width generator takes 5-20 s on a 2-core CPU; reading the
saved IR back takes ~0.05 s. The key is a SHA-256 of everything the converted graph depends on:
the openvino and torch versions, the generator's class and config, the source files of its
img2img classes, each module's norm mode (per-image BatchNorm statistics or running ones),
the trace's example size, and every tensor of its state dict. A different weight, version or
norm mode is a different entry, never a stale one.

Entries live under cache_dir()/openvino/<key>/ (IMG2IMG_CACHE or $HF_HOME/img2img): model.xml,
model.bin (weights uncompressed: fp16 compression would change results) and entry.json, the
size and SHA-256 of both. Each is written to a temporary folder and renamed into place, so a
crash leaves no half-written entry and two processes converting the same model both end with
a whole one (the second rename finds the first's entry and keeps it). At most MAX_ENTRIES are
kept (the least recently used go).

Integrity, every case one log line at most, none breaking a translation (docs/reliability.md):
    damaged entry       files not matching entry.json (flipped bytes, cut short, manifest
                        missing or unreadable) or not readable by OpenVINO: removed and
                        converted again (`load` returns None). Hashing U-Net-256's 218 MB
                        model.bin takes 0.26-0.34 s on this 2-core AVX2 CPU under load
                        (0.65-1.1 GB/s, SHA-NI), of a 0.9 s cached load; it is paid once per
                        process per entry: a verified entry is remembered by its files' inode,
                        size, mtime and ctime, so later loads in the process do not hash
    does not compile    the runner drops the entry (`discard`), converts from the torch module
                        and compiles that; only if that fails too does torch run
    read-only cache     a valid entry is used as it is (its recency touch failing is ignored);
                        a damaged one is converted in memory and left in place
    cannot be written   (a full disk, EIO, no permission) the conversion is used for this
                        process, no partial entry is left (`save` never raises)
"""

from __future__ import annotations

import contextlib
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

FORMAT = 2  # bump when the conversion or the entry changes (2: entry.json, checksums)
MAX_ENTRIES = 8


def root() -> Path:
    """IMG2IMG_OPENVINO_CACHE when set (e.g. persistent storage of its own), else
    cache_dir()/openvino."""
    own = os.environ.get("IMG2IMG_OPENVINO_CACHE", "").strip()
    return Path(own).expanduser() if own else cache_dir() / "openvino"


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


MANIFEST = "entry.json"
FILES = ("model.xml", "model.bin")
_verified: dict[str, tuple] = {}  # entry folder -> its files' stat signature when last verified


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _signature(folder: Path) -> tuple:
    """What changes when a file of the entry is rewritten, replaced or touched (ctime cannot be
    set back by hand)."""
    stats = [(folder / name).stat() for name in (MANIFEST, *FILES)]
    return tuple((s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns) for s in stats)


def _problem(folder: Path) -> str | None:
    """Why the entry in `folder` does not match its manifest, or None when it does."""
    try:
        signature = _signature(folder)
        if _verified.get(str(folder)) == signature:
            return None  # verified by this process, unchanged since
        files = json.loads((folder / MANIFEST).read_text())["files"]
        for name in FILES:
            size, want = files[name]["size"], files[name]["sha256"]
            got = (folder / name).stat().st_size
            if got != size:
                return f"{name}: {got} bytes, {size} expected"
            if _digest(folder / name) != want:
                return f"{name}: SHA-256 mismatch"
    except FileNotFoundError as e:
        return f"{Path(e.filename).name if e.filename else MANIFEST} missing"
    except OSError as e:
        return f"cannot read it: {e}"
    except (ValueError, KeyError, TypeError) as e:  # not JSON, or not the manifest's shape
        return f"{MANIFEST} unreadable: {type(e).__name__}: {e}"
    _verified[str(folder)] = signature
    return None


def reason(e: BaseException) -> str:
    """`e` on one line: OpenVINO's messages open with lines naming its own source files."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith("Exception from src/")]
    return f"{type(e).__name__}: {' '.join(useful or lines)[:300]}"


def load(ov, entry: str):
    """The cached ov.Model for `entry`, or None: not cached, or damaged (logged, removed)."""
    folder = root() / entry
    if not (folder / "model.xml").is_file():
        return None
    why = _problem(folder)
    if why is None:
        try:
            model = ov.Core().read_model(str(folder / "model.xml"))
        except Exception as e:  # OpenVINO raises RuntimeError; anything unreadable is damage
            why = f"unreadable: {reason(e)}"
    if why is not None:
        discard(entry, f"is damaged ({why})")
        return None
    try:
        os.utime(folder)  # recently used: pruned last
    except OSError as e:  # a read-only cache: used as it is
        log.debug("OpenVINO model cache %s: recency of %s not recorded (%s)", root(), entry, e)
    return model


def discard(entry: str, why: str) -> bool:
    """Log that cached `entry` `why` (one line) and remove it; False when it cannot be removed
    (a read-only cache: it stays, and `save` leaves it alone)."""
    folder = root() / entry
    _verified.pop(str(folder), None)
    stays = ""
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        pass  # another process removed it meanwhile
    except OSError as e:  # a read-only cache
        stays = f" (it cannot be removed: {e.strerror or e}; it stays)"
    log.warning("cached OpenVINO model %s %s: converting again%s", folder, why, stays)
    return not stays


def save(ov, entry: str, model) -> None:
    """Store `model` under `entry` (all or nothing), then prune old entries. Never raises: a
    cache that cannot be written (full disk, EIO, permissions) is logged in one line and the
    caller keeps using `model`."""
    final = root() / entry
    tmp = None
    try:
        if all((final / name).is_file() for name in (MANIFEST, *FILES)):
            return  # stored by another process meanwhile, or a damaged one that cannot go
        root().mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root()))
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
        files = {n: {"size": (tmp / n).stat().st_size, "sha256": _digest(tmp / n)} for n in FILES}
        (tmp / MANIFEST).write_text(json.dumps({"format": FORMAT, "files": files}, indent=1))
        try:
            os.replace(tmp, final)
        except OSError:
            if (final / MANIFEST).is_file():
                return  # another process renamed its whole entry in first: keep that one
            shutil.rmtree(final, ignore_errors=True)  # what a partial removal left
            os.replace(tmp, final)
        _verified[str(final)] = _signature(final)
        _prune()
    except (OSError, RuntimeError) as e:  # OpenVINO reports a failed write as RuntimeError
        why = reason(e)
        if not isinstance(e, OSError):  # "basic_ios::clear: iostream error" says little
            with contextlib.suppress(OSError):
                why += f"; {shutil.disk_usage(root()).free / 2**20:.1f} MiB free there"
        log.warning(
            "OpenVINO model cache %s not writable (%s): not cached, this process keeps the "
            "converted model",
            root(),
            why,
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _prune() -> None:
    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # removed by another process meanwhile
            return 0.0

    entries = [p for p in root().iterdir() if p.is_dir() and not p.name.startswith(".tmp-")]
    entries.sort(key=mtime, reverse=True)
    for old in entries[MAX_ENTRIES:]:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in root().glob(".tmp-*"):  # left by a crash over an hour ago
        if mtime(tmp) and time.time() - mtime(tmp) > 3600:
            shutil.rmtree(tmp, ignore_errors=True)
