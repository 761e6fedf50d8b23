"""`img2img evaluate` with bad inputs and bad targets: a corrupt test image is skipped and
listed (as a test image, with the reason), the run finishes and exits 1; --json / --report
targets are checked before the run and named as the user gave them; a failed run leaves no
empty output folder."""

from __future__ import annotations

import json

import pytest
import torch
from helpers.images import random_image

from img2img import save_pretrained
from img2img.cli import main
from img2img.models import ResnetGenerator

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval-ckpt") / "G"
    torch.manual_seed(0)
    save_pretrained(ResnetGenerator(ngf=8, n_blocks=1), path)
    return path


def _paired(root, n: int, corrupt: tuple[int, ...] = ()):
    (root / "test").mkdir(parents=True)
    for i in range(n):
        if i in corrupt:
            (root / "test" / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
        else:
            random_image(64, 32, seed=i).save(root / "test" / f"{i}.png")
    return root


def _evaluate(ckpt, data, *extra) -> int:
    argv = ["evaluate", "--checkpoint", str(ckpt), "--data", str(data), "--device", "cpu"]
    return main([*argv, *map(str, extra)])


def test_a_corrupt_test_image_is_skipped_listed_and_the_run_finishes(ckpt, tmp_path, capsys):
    data = _paired(tmp_path / "d", 4, corrupt=(1,))
    out, report = tmp_path / "s.json", tmp_path / "report"
    assert _evaluate(ckpt, data, "--json", out, "--report", report) == 1
    err = capsys.readouterr().err
    assert "training image" not in err and "Traceback" not in err, err
    skipped = [line for line in err.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1 and "1.png" in skipped[0] and "test image" in skipped[0], err
    assert "3 of 4 test images scored; 1 skipped" in err, err
    doc = json.loads(out.read_text())
    assert doc["images"] == 3
    assert [r["name"] for r in doc["per_image"]] == ["0.png", "2.png", "3.png"]
    assert [s["name"] for s in doc["skipped"]] == ["1.png"] and doc["skipped"][0]["reason"]
    page = (report / "index.html").read_text()
    assert "1.png" in page and "Skipped" in page


def test_no_readable_test_image_fails_and_writes_nothing(ckpt, tmp_path, capsys):
    data = _paired(tmp_path / "d", 2, corrupt=(0, 1))
    out, report = tmp_path / "s.json", tmp_path / "report"
    assert _evaluate(ckpt, data, "--json", out, "--report", report) == 1
    err = capsys.readouterr().err
    assert "none of the 2 test images could be read" in err.splitlines()[-1], err
    assert not out.exists() and not report.exists()


@pytest.mark.parametrize("target", ["folder", "under_a_file"])
def test_a_bad_json_target_is_refused_before_the_run(ckpt, tmp_path, capsys, target):
    data = _paired(tmp_path / "d", 2)
    (tmp_path / "f.txt").write_text("x")
    path = {
        "folder": tmp_path / "d",
        "under_a_file": tmp_path / "f.txt" / "s.json",
    }[target]
    bad_ckpt = tmp_path / "no-such-checkpoint"  # were the run started, this would be the error
    assert _evaluate(bad_ckpt, data, "--json", path, "--report", tmp_path / "r") == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and line.startswith("error: --json"), line
    assert str(path) in line and ".tmp" not in line, line
    assert not (tmp_path / "r").exists()


def test_a_report_target_that_is_a_file_is_refused_before_the_run(ckpt, tmp_path, capsys):
    data = _paired(tmp_path / "d", 2)
    (tmp_path / "f.txt").write_text("x")
    assert _evaluate(tmp_path / "no-such-checkpoint", data, "--report", tmp_path / "f.txt") == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: --report") and "f.txt" in line and "\n" not in line, line


@pytest.mark.parametrize("failure", ["checkpoint", "too_few_for_fid"])
def test_a_failed_run_leaves_no_empty_report_folder(ckpt, tmp_path, capsys, failure):
    data = _paired(tmp_path / "d", 1 if failure == "too_few_for_fid" else 2)
    checkpoint = tmp_path / "missing" if failure == "checkpoint" else ckpt
    extra = ["--metrics", "psnr,fid"] if failure == "too_few_for_fid" else []
    report, out = tmp_path / "out" / "report", tmp_path / "out" / "json" / "s.json"
    assert _evaluate(checkpoint, data, "--report", report, "--json", out, *extra) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "out").exists()  # missing folders are made only to be filled
