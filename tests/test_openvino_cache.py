"""The OpenVINO disk cache's integrity: damaged, uncompilable, read-only and unwritable caches.

Every case must end with the OpenVINO plan running (not torch) and outputs within float
rounding of eager torch (TOL, as in test_openvino.py), with one log line at most. Tiny
generators (ngf 8: a 35 kB model.xml and a 203 kB model.bin) in each test's own cache folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import openvino
import pytest
import torch
from helpers.models import tiny_generators
from helpers.paths import ROOT
from helpers.train_proc import small_tmpfs

from img2img import Translator
from img2img.models import registry
from img2img.plans.openvino import runner as openvino_plan
from img2img.plans.openvino.runner import OpenVINORunner

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not openvino_plan.available(), reason="openvino is not installed"),
]
TOL = 1e-4
PLAN = "openvino-f32"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Converted models go to this test's own cache folder, not the user's."""
    monkeypatch.setenv("IMG2IMG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("IMG2IMG_OPENVINO_CACHE", raising=False)  # not the session's shared one
    return tmp_path / "cache" / "openvino"


def _input(model: torch.nn.Module) -> torch.Tensor:
    side = max(registry.size_multiple(model.config), 64)
    torch.manual_seed(1)
    return torch.rand(1, 3, side, side * 2) * 2 - 1


def _eager(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return Translator(device="cpu", plan="eager").forward(model, x)


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.iterdir() if not p.name.startswith(".tmp-"))


def _converted(name: str):
    """A tiny generator, an input, its eager output, and the model converted once into the
    test's cache: (model, x, want)."""
    model = tiny_generators()[name]
    x = _input(model)
    want = _eager(model, x)
    Translator(device="cpu", plan=PLAN).prepare(model)
    return model, x, want


def _flip(weights: Path, count: int) -> bytes:
    """`count` bytes in the middle of `weights` flipped, its size kept; the new content."""
    data = bytearray(weights.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + count):
        data[i] ^= 0x40
    weights.write_bytes(bytes(data))
    return bytes(data)


def _lines(caplog) -> list[str]:
    """What the OpenVINO plan logged at WARNING or above."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("img2img.plans") and r.levelno >= logging.WARNING
    ]


def _reseal(entry: Path) -> None:
    """Rewrite the entry's manifest for its files as they are now (an entry whose files are
    consistent with it: the checksum cannot tell). No manifest: nothing to do."""
    manifest = entry / "entry.json"
    if not manifest.exists():
        return
    data = json.loads(manifest.read_text())
    for name in data["files"]:
        body = (entry / name).read_bytes()
        data["files"][name] = {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    manifest.write_text(json.dumps(data))


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in [folder, *folder.rglob("*")]
    }


def _converts(monkeypatch) -> list[int]:
    """Counts the traced conversions from now on (a cache hit traces nothing)."""
    calls: list[int] = []
    convert_model = openvino.convert_model

    def counting(*args, **kwargs):
        calls.append(1)
        return convert_model(*args, **kwargs)

    monkeypatch.setattr(openvino, "convert_model", counting)
    return calls


@contextlib.contextmanager
def _read_only(folder: Path):
    """`folder` read-only for this process: a read-only bind mount over itself as root (who
    writes through permission bits), chmod a-w otherwise."""
    if os.geteuid() != 0:
        paths = [folder, *folder.rglob("*")]
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(modes[p] & ~0o222)
        try:
            yield
        finally:
            for p in reversed(paths):
                p.chmod(modes[p])
        return
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if bind.returncode:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
        yield
    finally:
        # lazily where a runner of the test still maps a file there
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def test_flipped_bytes_in_a_cached_model_are_caught_and_converted_again(private_cache, caplog):
    model, x, want = _converted("resnet")
    (entry,) = _entries(private_cache)
    weights = entry / "model.bin"
    data = _flip(weights, 64)  # same size: only a checksum can tell
    with caplog.at_level(logging.INFO):
        got = Translator(device="cpu", plan=PLAN).forward(model, x)
    assert float((got - want).abs().max()) < TOL
    lines = _lines(caplog)
    assert len(lines) == 1, lines
    assert "damaged" in lines[0] and "model.bin" in lines[0] and "converting again" in lines[0]
    (again,) = _entries(private_cache)  # stored again, this time intact
    assert again.name == entry.name and weights.read_bytes() != bytes(data)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        reread = Translator(device="cpu", plan=PLAN).forward(model, x)
    assert not _lines(caplog) and torch.equal(reread, got)


def test_a_cached_model_that_does_not_compile_is_dropped_and_converted_again(private_cache, caplog):
    model, x, want = _converted("unet")
    (entry,) = _entries(private_cache)
    xml = entry / "model.xml"
    text = xml.read_text()
    # A dynamic-rank input reads but does not compile ("CPU plug-in doesn't support Parameter
    # operation with dynamic rank"), and the manifest matches: the checksum cannot tell.
    assert 'shape="?,3,?,?"' in text
    xml.write_text(text.replace('shape="?,3,?,?"', 'shape="..."'))
    _reseal(entry)
    with caplog.at_level(logging.INFO):
        t = Translator(device="cpu", plan=PLAN)
        got = t.forward(model, x)
    assert isinstance(t._resolve(model).runner, OpenVINORunner)  # not the torch module
    assert float((got - want).abs().max()) < TOL
    lines = _lines(caplog)
    assert len(lines) == 1, lines
    assert "does not compile" in lines[0] and "converting again" in lines[0]
    assert 'shape="?,3,?,?"' in xml.read_text()  # replaced by the fresh conversion
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert isinstance(Translator(device="cpu", plan=PLAN).prepare(model).runner, OpenVINORunner)
    assert not _lines(caplog)


def test_a_read_only_cache_is_used_as_it_is(private_cache, caplog, monkeypatch):
    model, x, want = _converted("resnet")
    cache = private_cache.parent
    before = _snapshot(cache)
    with _read_only(cache):
        converts = _converts(monkeypatch)
        with caplog.at_level(logging.INFO):
            t = Translator(device="cpu", plan=PLAN)
            got = t.forward(model, x)
            assert isinstance(t._resolve(model).runner, OpenVINORunner)
    assert not converts  # read back, not traced again
    assert not _lines(caplog)
    assert _snapshot(cache) == before  # nothing written, nothing removed
    assert float((got - want).abs().max()) < TOL


def test_a_damaged_entry_in_a_read_only_cache_is_converted_in_memory(private_cache, caplog):
    model, x, want = _converted("resnet")
    (entry,) = _entries(private_cache)
    _flip(entry / "model.bin", 1)
    cache = private_cache.parent
    before = _snapshot(cache)
    with _read_only(cache), caplog.at_level(logging.INFO):
        t = Translator(device="cpu", plan=PLAN)
        got = t.forward(model, x)
        assert isinstance(t._resolve(model).runner, OpenVINORunner)
    assert float((got - want).abs().max()) < TOL
    lines = _lines(caplog)
    assert len(lines) == 1 and "damaged" in lines[0] and "it stays" in lines[0], lines
    assert _snapshot(cache) == before


def _fail_save_model(exc: Exception):
    """openvino.save_model that writes part of the IR, then fails as a full disk does."""

    def save_model(model, path, compress_to_fp16=True):
        Path(path).write_text("<?xml version='1.0'?>\n<net")
        Path(path).with_suffix(".bin").write_bytes(b"\0" * 1000)
        raise exc

    return save_model


@pytest.mark.parametrize(
    "disk",
    [
        "tmpfs",  # a real 100 kB disk: model.bin (203 kB) does not fit
        # what openvino 2026.4 raises when the disk is full (measured on that tmpfs)
        RuntimeError("basic_ios::clear: iostream error"),
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
        OSError(errno.EIO, os.strerror(errno.EIO)),
        PermissionError(errno.EACCES, os.strerror(errno.EACCES)),
    ],
    ids=["tmpfs", "RuntimeError", "ENOSPC", "EIO", "EACCES"],
)
def test_a_failed_save_keeps_the_conversion_for_the_process(
    private_cache, caplog, monkeypatch, disk
):
    model = tiny_generators()["resnet"]
    x = _input(model)
    want = _eager(model, x)
    with contextlib.ExitStack() as stack:
        if disk == "tmpfs":
            stack.enter_context(small_tmpfs(private_cache.parent, "100k"))
        else:
            monkeypatch.setattr(openvino, "save_model", _fail_save_model(disk))
        with caplog.at_level(logging.INFO):
            t = Translator(device="cpu", plan=PLAN)
            got = t.forward(model, x)
            assert isinstance(t._resolve(model).runner, OpenVINORunner)  # not torch
        lines = _lines(caplog)
        assert len(lines) == 1 and "not cached" in lines[0], lines
        assert float((got - want).abs().max()) < TOL
        assert not list(private_cache.iterdir())  # no partial entry, no temporary folder


_CONVERT = """
import logging, sys
import torch
sys.path.insert(0, "tests")
logging.basicConfig(level=logging.WARNING, format="LOG %(levelname)s %(name)s %(message)s")
from helpers.models import tiny_generators
from img2img import Translator
from img2img.plans.openvino.runner import OpenVINORunner
torch.set_num_threads(1)
model = tiny_generators()["resnet"]
x = torch.rand(1, 3, 64, 64) * 2 - 1
t = Translator(device="cpu", plan="openvino-f32")
assert isinstance(t.prepare(model).runner, OpenVINORunner)
want = Translator(device="cpu", plan="eager").forward(model, x)
assert float((t.forward(model, x) - want).abs().max()) < 1e-4
print("CONVERTED")
"""


def test_two_processes_converting_the_same_model_both_end_with_a_valid_entry(private_cache):
    env = {
        "PATH": "/usr/bin:/bin",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
        "IMG2IMG_CACHE": str(private_cache.parent),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONVERT],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "CONVERTED" in out, err[-3000:]
        assert "LOG " not in err, err[-3000:]  # not a word from the cache
    (entry,) = _entries(private_cache)
    assert not [p for p in private_cache.iterdir() if p.name.startswith(".tmp-")]
    manifest = json.loads((entry / "entry.json").read_text())
    for name in ("model.xml", "model.bin"):
        body = (entry / name).read_bytes()
        assert manifest["files"][name] == {
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
