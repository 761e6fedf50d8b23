"""The CLI never loses data: inputs are never targets, no two results share a path, existing
outputs are kept unless --overwrite (then replaced atomically), and the summary counts what
was written. Also its refusals: -o that is a file, --size and --seed out of range."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest
import torch
from helpers.images import random_image
from helpers.train_proc import run, user_env
from PIL import Image

from img2img.cli import main
from img2img.inference import MAX_SEED
from img2img.media.processing import MAX_LONG_SIDE
from img2img.models import ResnetGenerator


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A tiny random ResNet generator saved the classic way (bare state dict)."""
    path = tmp_path_factory.mktemp("ckpt") / "g.pth"
    torch.manual_seed(0)
    torch.save(ResnetGenerator(ngf=8, n_blocks=2).state_dict(), path)
    return path


def _translate(ckpt: Path, *args: str | Path) -> int:
    return main(["translate", *map(str, args), "--checkpoint", str(ckpt), "--device", "cpu"])


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_output_folder_equal_to_the_input_folder_keeps_the_inputs(tmp_path, ckpt, capsys):
    src = tmp_path / "photos"
    src.mkdir()
    random_image(40, 30, seed=1).save(src / "a.png")
    random_image(36, 20, seed=2).save(src / "b.jpg")
    before = (src / "a.png").read_bytes()
    assert _translate(ckpt, src, "-o", src) == 1
    err = capsys.readouterr().err
    assert (src / "a.png").read_bytes() == before  # the input was not replaced
    assert "a.png is an input" in err and "1 of 2 images written" in err
    assert Image.open(src / "b.png").size == (36, 20)  # the other one is translated
    # --overwrite replaces outputs, never inputs
    assert _translate(ckpt, src / "a.png", "-o", src, "--overwrite") == 1
    assert (src / "a.png").read_bytes() == before


def test_inputs_reached_through_links_are_never_written(tmp_path, ckpt, capsys):
    src = tmp_path / "in"
    src.mkdir()
    random_image(40, 30).save(src / "a.png")
    before = (src / "a.png").read_bytes()
    link = tmp_path / "link"
    link.symlink_to(src, target_is_directory=True)  # -o is the input folder, by another name
    assert _translate(ckpt, src / "a.png", "-o", link) == 1
    out = tmp_path / "out"
    out.mkdir()
    os.link(src / "a.png", out / "a.png")  # the output name is a hard link to the input
    assert _translate(ckpt, src / "a.png", "-o", out) == 1
    assert _translate(ckpt, src / "a.png", "-o", out, "--overwrite") == 1
    err = capsys.readouterr().err
    assert err.count("is an input") == 3 and "0 of 1 images written" in err
    assert (src / "a.png").read_bytes() == before and _tree(src) == ["a.png"]


def test_same_name_in_three_folders_gives_three_files(tmp_path, ckpt, capsys):
    sizes = {"x": (40, 30), "y": (24, 36), "z/deep": (50, 20)}
    for folder, size in sizes.items():
        (tmp_path / folder).mkdir(parents=True)
        random_image(*size).save(tmp_path / folder / "IMG_0001.jpg")
    out = tmp_path / "out"
    folders = [tmp_path / f for f in sizes]
    assert _translate(ckpt, *folders, "-o", out) == 0
    assert "3 of 3 images written" in capsys.readouterr().err
    assert _tree(out) == ["x/IMG_0001.png", "y/IMG_0001.png", "z/deep/IMG_0001.png"]
    for folder, size in sizes.items():  # each output is its own input's translation
        assert Image.open(out / folder / "IMG_0001.png").size == size


def test_clashing_stems_and_repeated_files(tmp_path, ckpt, capsys):
    src = tmp_path / "in"
    src.mkdir()
    random_image(20, 16, seed=1).save(src / "x.jpg")
    random_image(24, 16, seed=2).save(src / "x.png")
    (tmp_path / "alias.jpg").symlink_to(src / "x.jpg")
    out = tmp_path / "out"
    # x.jpg three times: in the folder, by name, and through a symlink elsewhere
    assert _translate(ckpt, src, src / "x.jpg", tmp_path / "alias.jpg", "-o", out) == 0
    err = capsys.readouterr().err
    assert err.count("translated once") == 2 and "2 of 2 images written" in err
    assert _tree(out) == ["x.jpg.png", "x.png.png"]
    assert Image.open(out / "x.jpg.png").size == (20, 16)
    assert Image.open(out / "x.png.png").size == (24, 16)


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, ckpt, capsys):
    random_image(30, 20).save(tmp_path / "a.png")
    random_image(20, 30).save(tmp_path / "b.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"an earlier result")
    assert _translate(ckpt, tmp_path / "a.png", tmp_path / "b.png", "-o", out) == 1
    err = capsys.readouterr().err
    assert "skipped" in err and "--overwrite" in err and "1 of 2 images written" in err
    assert (out / "a.png").read_bytes() == b"an earlier result"
    assert _translate(ckpt, tmp_path / "a.png", "-o", out, "--overwrite") == 0
    assert Image.open(out / "a.png").size == (30, 20)
    assert "1 of 1 images written" in capsys.readouterr().err
    assert _tree(out) == ["a.png", "b.png"]  # no temporary files left


def test_full_disk_keeps_the_previous_output(tmp_path, ckpt):
    """RLIMIT_FSIZE stands in for a full disk: the new PNG cannot be written."""
    random_image(64, 48).save(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"the previous result")
    args = [sys.executable, "-m", "img2img", "translate", str(tmp_path / "a.png"), "-o", str(out)]
    args += ["--checkpoint", str(ckpt), "--device", "cpu", "--overwrite"]
    code, _, err = run(args, user_env(PYTHONDONTWRITEBYTECODE="1"), max_file_bytes=2000)
    assert code == 1, err
    assert "cannot write" in err and "File too large" in err and "Traceback" not in err
    assert "0 of 1 images written" in err
    assert (out / "a.png").read_bytes() == b"the previous result"
    assert _tree(out) == ["a.png"]  # the temporary file was removed


def test_out_dir_that_is_a_file_or_cannot_be_created(tmp_path, ckpt, capsys):
    random_image(16, 16).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    assert _translate(ckpt, tmp_path / "a.png", "-o", tmp_path / "notes.txt") == 2
    assert _translate(ckpt, tmp_path / "a.png", "-o", tmp_path / "notes.txt" / "sub") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines)
    assert "is a file" in lines[0] and "cannot create the output folder" in lines[1]
    assert (tmp_path / "notes.txt").read_text() == "a file, not a folder"


@pytest.mark.parametrize(
    "option,value,expect",
    [
        ("--size", str(MAX_LONG_SIDE + 1), str(MAX_LONG_SIDE)),
        ("--size", "100000000", str(MAX_LONG_SIDE)),
        ("--seed", str(MAX_SEED + 1), str(MAX_SEED)),  # would repeat seed 0's variation
        ("--seed", str(2**64), str(MAX_SEED)),
        ("--seed", "-1", str(MAX_SEED)),
        ("--seed", "lucky", str(MAX_SEED)),
    ],
)
def test_out_of_range_options_are_refused(tmp_path, ckpt, capsys, option, value, expect):
    empty = tmp_path / "empty"
    empty.mkdir()  # refused before looking for inputs: nothing else could answer
    with pytest.raises(SystemExit) as exit_info:
        _translate(ckpt, empty, "-o", tmp_path / "out", option, value)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert option in err and expect in err and "Traceback" not in err


def test_largest_seed_is_accepted(tmp_path, ckpt):
    random_image(16, 16).save(tmp_path / "a.png")
    assert _translate(ckpt, tmp_path / "a.png", "-o", tmp_path / "o", "--seed", str(MAX_SEED)) == 0


def test_truncated_jpeg_is_translated_with_a_note(tmp_path, ckpt, capsys):
    buf = io.BytesIO()
    random_image(64, 48).save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2] + b"\xff\xd9")  # rows missing
    (tmp_path / "whole.jpg").write_bytes(data)
    assert _translate(ckpt, tmp_path / "cut.jpg", tmp_path / "whole.jpg", "-o", tmp_path / "o") == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "cut.jpg" in notes[0] and "truncated" in notes[0]
    assert Image.open(tmp_path / "o" / "cut.png").size == (64, 48)
