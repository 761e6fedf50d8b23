"""Every option of every subcommand is checked before anything runs: a bad value is one line
on stderr and exit 2, never a traceback, never a late failure, and no output folder is made
(issue: "bad values end in tracebacks or late failures")."""

from __future__ import annotations

import pytest
import torch
from helpers.images import random_image

from img2img import save_pretrained
from img2img.cli import main
from img2img.inference import MAX_SEED
from img2img.media.processing import MAX_LONG_SIDE
from img2img.models import ResnetGenerator, UNetGenerator

pytestmark = pytest.mark.usefixtures("one_thread")

NO_GPU = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A photo, a clip-less folder, tiny ResNet and U-Net generators, a file and a folder."""
    root = tmp_path_factory.mktemp("checks")
    torch.manual_seed(0)
    save_pretrained(ResnetGenerator(ngf=8, n_blocks=1), root / "resnet")
    save_pretrained(UNetGenerator(ngf=8), root / "unet")
    random_image(40, 30).save(root / "a.png")
    (root / "test").mkdir()  # a paired split of two A|B images
    for i in range(2):
        random_image(64, 32, seed=i).save(root / "test" / f"{i}.png")
    (root / "notes.txt").write_text("a file")
    return root


def _one_line_exit_2(argv: list[str], capsys) -> str:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (argv, code, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


TRANSLATE = [
    ("--size", "0", "1 to"),
    ("--size", "-3", "1 to"),
    ("--size", str(MAX_LONG_SIDE + 1), str(MAX_LONG_SIDE)),
    ("--size", "1.5", "1 to"),
    ("--size", "big", "1 to"),
    ("--seed", "-1", str(MAX_SEED)),
    ("--seed", str(MAX_SEED + 1), str(MAX_SEED)),
    ("--seed", "1e3", str(MAX_SEED)),
    ("--tile", "0", "--tile"),
    ("--tile", "-5", "--tile"),
    ("--tile", "7", "--tile"),  # under the least window
    ("--tile", "abc", "--tile"),
    ("--tile", "2.5", "--tile"),
    ("--tile", str(MAX_LONG_SIDE + 1), str(MAX_LONG_SIDE)),
    ("--max-seconds", "-1", "--max-seconds"),
    ("--max-seconds", "0", "--max-seconds"),
    ("--max-seconds", "nan", "--max-seconds"),
    ("--max-seconds", "inf", "--max-seconds"),
    ("--max-seconds", "ten", "--max-seconds"),
    ("--stats", "bogus", "--stats"),
    ("--device", "banana", "banana"),
    ("--device", "cuda:-1", "cuda:-1"),
]


@pytest.mark.parametrize("option,value,expect", TRANSLATE, ids=lambda v: str(v)[:12])
def test_bad_translate_options_are_one_line_exit_2(work, tmp_path, capsys, option, value, expect):
    out = tmp_path / "out"
    argv = ["translate", str(work / "a.png"), "-o", str(out), "--checkpoint", str(work / "resnet")]
    line = _one_line_exit_2([*argv, option, value], capsys)
    assert expect in line, line
    assert not out.exists()  # refused before the output folder was made


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")
def test_a_missing_gpu_leaves_no_output_folder(work, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["translate", str(work / "a.png"), "-o", str(out), "--checkpoint", str(work / "resnet")]
    assert "no CUDA GPU" in _one_line_exit_2([*argv, "--device", "cuda"], capsys)
    assert not out.exists()


@pytest.mark.parametrize("tile", ["100", "128", "300"])
def test_a_tile_the_generator_cannot_take_is_refused_before_any_input(work, tmp_path, capsys, tile):
    """The U-Net needs multiples of 256: refused once the checkpoint is read, before any
    input is translated (it used to be a traceback and exit 1)."""
    out = tmp_path / "out"
    argv = ["translate", str(work / "a.png"), "-o", str(out), "--checkpoint", str(work / "unet")]
    line = _one_line_exit_2([*argv, "--tile", tile], capsys)
    assert line.startswith("error: --tile") and "256" in line, line
    assert not out.exists()


def test_stats_that_do_not_apply_to_the_inputs_are_refused(work, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["translate", str(work / "a.png"), "-o", str(out), "--checkpoint", str(work / "resnet")]
    line = _one_line_exit_2([*argv, "--tile", "--stats", "running"], capsys)
    assert "--stats running" in line and "clips" in line, line
    assert not out.exists()


def test_an_output_folder_under_a_file_is_refused_and_nothing_made(work, capsys):
    argv = ["translate", str(work / "a.png"), "--checkpoint", str(work / "resnet")]
    line = _one_line_exit_2([*argv, "-o", str(work / "notes.txt" / "sub")], capsys)
    assert "cannot create the output folder" in line
    assert (work / "notes.txt").read_text() == "a file"


def test_a_bad_checkpoint_leaves_no_output_folder(work, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["translate", str(work / "a.png"), "-o", str(out), "--checkpoint", str(tmp_path)]
    _one_line_exit_2(argv, capsys)
    assert not out.exists()


def test_bad_evaluate_options_are_one_line_exit_2(work, tmp_path, capsys):
    base = ["evaluate", "--checkpoint", str(work / "resnet"), "--data", str(work), "--device"]
    base += ["cpu"]
    cases = [
        (["--size", "0"], "--size"),
        (["--size", str(MAX_LONG_SIDE + 1)], str(MAX_LONG_SIDE)),
        (["--size", "-2"], "--size"),
        (["--metrics", "psnr,bogus"], "bogus"),
        (["--metrics", ","], "--metrics"),
        (["--split", "../test"], "--split"),
        (["--device", "banana"], "banana"),
        (["--json", str(work)], str(work)),  # a folder
        (["--json", str(work / "notes.txt" / "s.json")], "notes.txt"),
        (["--report", str(work / "notes.txt")], "notes.txt"),
        (["--report", str(work / "notes.txt" / "r")], "notes.txt"),
    ]
    for extra, expect in cases:
        line = _one_line_exit_2([*base, *extra], capsys)
        assert expect in line and ".tmp" not in line, (extra, line)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("repo_id", ["a/b/c", "bad id!", "-x/y", "ns/" + "n" * 100])
def test_bad_repo_ids_are_refused_before_the_hub_is_asked(work, capsys, repo_id):
    for argv in (
        ["push", str(work / "resnet"), "--repo-id", repo_id],
        ["mirror", "pix2pix/facades_label2photo", "--repo-id", repo_id],
    ):
        assert "--repo-id" in _one_line_exit_2(argv, capsys)


def test_push_of_a_file_or_a_missing_folder_is_refused(work, tmp_path, capsys):
    for directory in (work / "notes.txt", tmp_path / "missing"):
        line = _one_line_exit_2(["push", str(directory), "--repo-id", "ns/name"], capsys)
        assert str(directory) in line
