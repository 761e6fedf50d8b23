"""The photo pipeline (img2img/pipeline.py): byte-identical to the serial loop, decoded and
pending photos within their bounds, and the output formats (--format, --png-compress,
--quality)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.images import random_image
from PIL import Image

from img2img import Translator, save_pretrained
from img2img.cli import main
from img2img.models import ResnetGenerator
from img2img.pipeline import PhotoPipeline, Stages


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ckpt") / "G"
    save_pretrained(ResnetGenerator(ngf=8, n_blocks=2), folder)
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """19 photos of three sizes (chunks mix sizes) and one unreadable file."""
    src = tmp_path_factory.mktemp("in")
    for i in range(19):
        w, h = [(48, 32), (40, 40), (32, 48)][i % 3]
        random_image(w, h, seed=i).save(src / f"p{i:02d}.png")
    (src / "p07x.png").write_bytes(b"broken")
    return src


def run(src: Path, out: Path, *flags: str, ckpt: Path) -> int:
    return main(["translate", str(src), "-o", str(out), "--checkpoint", str(ckpt), *flags])


def test_pipeline_writes_the_serial_loops_bytes(tmp_path, folder, tiny):
    assert run(folder, tmp_path / "serial", "--io-threads", "0", ckpt=tiny) == 1
    assert run(folder, tmp_path / "piped", "--io-threads", "3", ckpt=tiny) == 1
    serial = {p.name: p.read_bytes() for p in (tmp_path / "serial").iterdir()}
    assert len(serial) == 19
    assert {p.name: p.read_bytes() for p in (tmp_path / "piped").iterdir()} == serial


def test_decoded_and_pending_photos_stay_within_the_bounds(tmp_path, tiny):
    """A slow writer makes the forward wait on the write slots, a fast decoder runs ahead as
    far as it is let: neither count passes its bound, and every job is recorded once."""
    import time

    translator = Translator(device="cpu", plan="eager")
    model = translator.load(tiny)
    images = {Path(f"{i}.png"): random_image(32, 32, seed=i) for i in range(60)}
    seen = []
    stages = Stages(
        decode=lambda path: images[path].copy(),
        translate=lambda batch: translator.translate(model, batch, size=None),
        write=lambda img, target: time.sleep(0.004),
        record=lambda src, dst, status, seconds, why: seen.append((src, status)),
    )
    pipeline = PhotoPipeline(stages, threads=2, chunk=4)
    pipeline.run([(path, tmp_path / path.name) for path in images])
    counters = pipeline.counters
    assert sorted(seen) == sorted((path, "written") for path in images)
    assert 4 <= counters.decoded_peak <= pipeline.max_decoded == 8
    assert 1 <= counters.writes_peak <= pipeline.max_writes == 8
    assert counters.decoded == counters.writes == 0


@pytest.mark.parametrize(
    ("flags", "suffix", "fmt"),
    [
        (["--png-compress", "9"], ".png", "PNG"),
        (["--format", "jpg", "--quality", "90"], ".jpg", "JPEG"),
        (["--format", "webp"], ".webp", "WEBP"),
    ],
)
def test_output_formats(tmp_path, folder, tiny, flags, suffix, fmt):
    assert run(folder, tmp_path / "out", *flags, ckpt=tiny) == 1
    outs = sorted((tmp_path / "out").iterdir())
    assert len(outs) == 19 and {p.suffix for p in outs} == {suffix}
    with Image.open(outs[0]) as img:
        assert img.format == fmt and img.size == Image.open(folder / f"{outs[0].stem}.png").size


def test_lossless_formats_hold_the_same_pixels(tmp_path, folder, tiny):
    assert run(folder, tmp_path / "png1", ckpt=tiny) == 1
    assert run(folder, tmp_path / "png9", "--png-compress", "9", ckpt=tiny) == 1
    assert run(folder, tmp_path / "webp", "--format", "webp", ckpt=tiny) == 1
    for p in (tmp_path / "png1").iterdir():
        pixels = Image.open(p).tobytes()
        assert Image.open(tmp_path / "png9" / p.name).tobytes() == pixels
        assert Image.open((tmp_path / "webp" / p.name).with_suffix(".webp")).tobytes() == pixels


@pytest.mark.parametrize("flag", ["--png-compress=10", "--quality=0", "--io-threads=-1"])
def test_bad_format_values_are_refused(tmp_path, folder, tiny, flag, capsys):
    with pytest.raises(SystemExit) as stop:
        run(folder, tmp_path / "out", flag, ckpt=tiny)
    assert stop.value.code == 2 and "takes" in capsys.readouterr().err
