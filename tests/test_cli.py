"""The CLI contract: outputs per input stem, --official bit-exact, corrupt files skipped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.classic_pipeline import classic_png
from helpers.images import random_image
from helpers.paths import ROOT
from PIL import Image

from img2img import load_generator, save_pretrained
from img2img.cli import main
from img2img.models import HugGANUNetGenerator, ResnetGenerator, UNetGenerator


def _classic_checkpoint(path: Path, make, seed: int) -> Path:
    """A random generator saved the classic way (bare state dict, torch.save)."""
    torch.manual_seed(seed)
    torch.save(make().state_dict(), path)
    return path


CASES = [
    # (generator, seed, ngf, input sizes)
    ("unet", lambda: UNetGenerator(ngf=16), 3, [(300, 200), (64, 64)]),
    ("unet_128", lambda: UNetGenerator(ngf=4, num_downs=7), 11, [(511, 257)]),
    ("resnet", lambda: ResnetGenerator(ngf=8, n_blocks=6), 5, [(97, 333), (256, 256)]),
    ("resnet_bn", lambda: ResnetGenerator(ngf=8, n_blocks=3, norm="batch"), 7, [(120, 90)]),
    ("huggan", lambda: HugGANUNetGenerator(ngf=8), 9, [(400, 300)]),
]


@pytest.mark.parametrize("name,make,seed,sizes", CASES, ids=[c[0] for c in CASES])
def test_official_matches_classic_pipeline_bit_for_bit(tmp_path, name, make, seed, sizes):
    ckpt = _classic_checkpoint(tmp_path / f"{name}.pth", make, seed)
    src = tmp_path / "in"
    src.mkdir()
    for i, (w, h) in enumerate(sizes):
        random_image(w, h, seed=seed + i).save(src / f"img{i}.jpg", quality=90)
    out = tmp_path / "out"
    assert (
        main(
            [
                "translate",
                str(src),
                "-o",
                str(out),
                "--checkpoint",
                str(ckpt),
                "--official",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    net = load_generator(ckpt)
    for i in range(len(sizes)):
        classic_png(net, src / f"img{i}.jpg", tmp_path / "ref.png")
        ours = np.asarray(Image.open(out / f"img{i}.png"))
        ref = np.asarray(Image.open(tmp_path / "ref.png"))
        assert ours.shape == (256, 256, 3)
        assert np.array_equal(ours, ref), f"{(ours != ref).sum()} pixels differ"


def test_folder_with_corrupt_file(tmp_path, capsys):
    ckpt = _classic_checkpoint(tmp_path / "g.pth", lambda: ResnetGenerator(ngf=8, n_blocks=2), 0)
    src = tmp_path / "photos"
    src.mkdir()
    random_image(130, 70).save(src / "good.png")
    random_image(33, 31, mode="RGBA").save(src / "alpha.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (src / "notes.txt").write_text("ignored: not an image extension")
    out = tmp_path / "out"
    code = main(["translate", str(src), "-o", str(out), "--checkpoint", str(ckpt)])
    err = capsys.readouterr().err
    assert code == 1
    assert "broken.jpg" in err and "2 of 3 images" in err
    assert sorted(p.name for p in out.iterdir()) == ["alpha.png", "good.png"]
    assert Image.open(out / "good.png").size == (130, 70)
    alpha = Image.open(out / "alpha.png")
    assert alpha.size == (33, 31) and alpha.mode == "RGBA"


def test_native_size_seed_and_our_format(tmp_path):
    torch.manual_seed(0)
    save_pretrained(UNetGenerator(ngf=8), tmp_path / "model")
    src = tmp_path / "a.png"
    random_image(300, 120).save(src)
    args = ["translate", str(src), "--checkpoint", str(tmp_path / "model"), "--size", "native"]
    outs = []
    for run, seed in enumerate(["1", "1", "2"]):
        out = tmp_path / f"out{run}"
        assert main([*args, "-o", str(out), "--seed", seed]) == 0
        outs.append(np.asarray(Image.open(out / "a.png")))
    assert outs[0].shape == (120, 300, 3)
    assert np.array_equal(outs[0], outs[1])  # same seed, same variation
    assert not np.array_equal(outs[0], outs[2])  # another seed, another one


def test_bad_checkpoint_and_no_inputs(tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    random_image(8, 8).save(tmp_path / "x.png")
    assert (
        main(
            [
                "translate",
                str(tmp_path / "x.png"),
                "-o",
                str(tmp_path / "o"),
                "--checkpoint",
                str(bad),
            ]
        )
        == 2
    )
    assert "bad.pth" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["translate", str(empty), "-o", str(tmp_path / "o"), "--checkpoint", str(bad)]) == 2


def test_module_entry_point(tmp_path):
    """`python -m img2img translate ...` as a user runs it, with its progress bar."""
    ckpt = _classic_checkpoint(tmp_path / "g.pth", lambda: UNetGenerator(ngf=4), 1)
    random_image(40, 30).save(tmp_path / "p.jpg")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "img2img",
            "translate",
            str(tmp_path / "p.jpg"),
            "-o",
            str(tmp_path / "o"),
            "--checkpoint",
            str(ckpt),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1/1" in proc.stderr  # tqdm
    assert Image.open(tmp_path / "o" / "p.png").size == (40, 30)


def test_unwritable_output_is_reported_and_the_rest_written(tmp_path, capsys):
    ckpt = _classic_checkpoint(tmp_path / "g.pth", lambda: ResnetGenerator(ngf=8, n_blocks=2), 0)
    for name in ("a", "b"):
        random_image(20, 16).save(tmp_path / f"{name}.png")
    out = tmp_path / "out"
    (out / "a.png").mkdir(parents=True)  # a folder where the output file should go
    code = main(
        [
            "translate",
            str(tmp_path / "a.png"),
            str(tmp_path / "b.png"),
            "-o",
            str(out),
            "--checkpoint",
            str(ckpt),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "cannot write" in err and "a.png" in err
    assert Image.open(out / "b.png").size == (20, 16)


# --- first use: the newcomer's mistakes get one clear line ---------------------------------


def test_a_missing_gpu_is_one_line_and_exit_2(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    random_image(32, 32).save(tmp_path / "a.png")
    args = ["translate", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--checkpoint"]
    assert main([*args, str(tmp_path), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: device 'cuda' asked for, but no CUDA GPU is available here"


def test_a_typo_in_an_id_gets_suggestions(tmp_path, capsys):
    from helpers.catalog import RESNET

    random_image(32, 32).save(tmp_path / "a.png")
    args = ["translate", str(tmp_path / "a.png"), "-o", str(tmp_path / "o")]
    assert main([*args, "--checkpoint", RESNET.id[:-2]]) == 2
    assert f"did you mean {RESNET.id}" in capsys.readouterr().err


def test_models_lists_availability(tmp_path, monkeypatch, capsys):
    from helpers.catalog import PROJECT, RESNET

    from img2img.checkpoints.catalog import load_catalog

    monkeypatch.setenv("IMG2IMG_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("IMG2IMG_CACHE", str(tmp_path / "cache"))
    save_pretrained(ResnetGenerator(ngf=8, n_blocks=1), tmp_path / "w" / RESNET.id)
    assert main(["models"]) == 0
    catalog_rows = capsys.readouterr().out.split("\n\n")[0].splitlines()  # then your models
    rows = {line.split()[0]: line for line in catalog_rows}
    assert list(rows) == list(load_catalog())
    assert "ready (local)" in rows[RESNET.id]
    assert "not yet published" in rows[PROJECT.id]


def test_a_seed_for_a_generator_without_dropout_says_it_changes_nothing(tmp_path, capsys):
    save_pretrained(ResnetGenerator(ngf=8, n_blocks=1), tmp_path / "G")
    random_image(32, 32).save(tmp_path / "a.png")
    args = ["translate", str(tmp_path / "a.png"), "-o", str(tmp_path / "o")]
    assert main([*args, "--checkpoint", str(tmp_path / "G"), "--seed", "3"]) == 0
    assert "--seed 3 changes nothing: this generator has no dropout" in capsys.readouterr().err


# --- big pictures and clips --------------------------------------------------------------


def test_tile_translates_at_native_resolution_keeping_the_size(tmp_path):
    save_pretrained(ResnetGenerator(ngf=8, n_blocks=1), tmp_path / "G")
    random_image(700, 300).save(tmp_path / "big.png")
    args = ["translate", str(tmp_path / "big.png"), "-o", str(tmp_path / "o")]
    assert main([*args, "--checkpoint", str(tmp_path / "G"), "--tile", "128"]) == 0
    assert Image.open(tmp_path / "o" / "big.png").size == (700, 300)


def test_a_clip_among_the_inputs_becomes_a_clip(tmp_path):
    from helpers.videos import decode, make_clip

    from img2img import cli_media
    from img2img.media import video

    assert cli_media.VIDEO_SUFFIXES == video.VIDEO_SUFFIXES  # --help needs no PyAV import
    save_pretrained(ResnetGenerator(ngf=8, n_blocks=1), tmp_path / "G")
    folder = tmp_path / "in"
    folder.mkdir()
    make_clip(folder / "clip.mp4", frames=12, fps=12, size=(64, 48), audio=True)
    random_image(40, 30).save(folder / "photo.png")
    args = ["translate", str(folder), "-o", str(tmp_path / "o"), "--checkpoint"]
    assert main([*args, str(tmp_path / "G")]) == 0
    assert Image.open(tmp_path / "o" / "photo.png").size == (40, 30)
    info = decode(tmp_path / "o" / "clip.mp4")
    assert (info["frames"], info["fps"], info["size"]) == (12, 12, (64, 48))
    assert info["audio"] is not None
    assert main([*args, str(tmp_path / "G")]) == 1  # outputs exist: kept, reported skipped
