"""Retraining options (issue 23): channels (--input-nc / --output-nc, grey and 16-bit PNG,
translate --bit-depth 16, the app), --preprocess modes (aspect kept, A and B cropped alike,
exact resume), --keep-best / --keep-last (the best by validation, exported beside the last).

Runs train tiny pix2pix U-Nets (ngf 8, 5 downsamplings: 32 px multiples) in this process
on generated data, a few steps each.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.paths import ROOT
from helpers.train_proc import same_training_state
from PIL import Image
from safetensors.torch import load_file

from img2img import cli, data, load_generator
from img2img.errors import ConfigError, DatasetError
from img2img.inference import Translator
from img2img.models import build_generator
from img2img.training import checkpoint as ckpt
from img2img.training import keep
from img2img.training.config import resolve
from img2img.training.trainer import run

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ["--seed", "0", "--ngf", "8", "--ndf", "8", "--num-downs", "5", "--workers", "0"]


def grey16(w: int, h: int, seed: int) -> np.ndarray:
    """A smooth 16-bit grey gradient with noise: thousands of distinct levels."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 60000, w)[None, :] + np.linspace(0, 5000, h)[:, None]
    return (ramp + rng.integers(0, 500, (h, w))).clip(0, 65535).astype(np.uint16)


def pair_file(path: Path, a: np.ndarray, b: np.ndarray) -> Path:
    """Save A|B side by side (uint16 -> 16-bit PNG, uint8 -> 8-bit)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([a, b], axis=1)).save(path)
    return path


def grey_dataset(root: Path, n_train: int = 3, n_val: int = 2, size=(40, 32)) -> Path:
    """train/ and val/ of A|B grey pairs: 16-bit PNGs, one 8-bit L and one RGB among them."""
    w, h = size
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            a = grey16(w, h, i)
            b = (65535 - a).astype(np.uint16)  # the target: the negative
            path = pair_file(root / split / f"{i}.png", a, b)
            if i == 1:  # 8-bit grey
                Image.open(path).point(lambda v: v / 257).convert("L").save(path)
            if i == 2:  # RGB: converted to grey on reading
                Image.open(path).point(lambda v: v / 257).convert("L").convert("RGB").save(path)
    return root


def train(*argv: str, resume: bool = False) -> int:
    """train.py's command line, in this process; Img2ImgError propagates (no exit 2)."""
    family, given, resumed = train_cli().parse_args([*argv, *(["--resume"] if resume else [])])
    return run(family, given, resumed, "python train.py " + " ".join(argv))


def train_cli():
    if "train_cli" not in sys.modules:
        spec = importlib.util.spec_from_file_location("train_cli", ROOT / "train.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["train_cli"] = module
    return sys.modules["train_cli"]


def records(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


# --- channels --------------------------------------------------------------------------------


def test_sixteen_bit_grey_is_read_at_full_precision(tmp_path):
    a = grey16(32, 32, 0)
    path = pair_file(tmp_path / "p.png", a, a)
    assert Image.open(path).mode == "I;16"
    ds = data.PairedDataset([path], data.Augment(32, 32, False), 0, False, channels=(1, 1))
    x = ds[0]["A"]
    assert x.shape == (1, 32, 32)
    expected = torch.from_numpy(a.astype(np.float32) / 65535).sub(0.5).div(0.5)
    assert torch.allclose(x[0], expected, atol=1e-6)
    assert len(torch.unique(x)) > 1000  # not rounded to 256 levels


def test_channel_modes_round_trip_through_a_translator():
    rgba = Image.new("RGBA", (40, 30), (200, 100, 50, 128))
    for ins, outs, mode in ((1, 1, "LA"), (3, 1, "LA"), (4, 4, "RGBA"), (1, 3, "RGBA")):
        net = build_generator({"architecture": "unet", "num_downs": 5, "ngf": 8,
                               "in_channels": ins, "out_channels": outs})  # fmt: skip
        out = Translator(device="cpu", plan="eager").translate(net, [rgba], size=None)[0]
        assert (out.mode, out.size) == (mode, (40, 30)), (ins, outs)
    grey = build_generator({"architecture": "unet", "num_downs": 5, "ngf": 8,
                            "in_channels": 1, "out_channels": 1})  # fmt: skip
    out = Translator(device="cpu", plan="eager").translate(grey, [Image.new("RGB", (33, 20))],
                                                           bits=16)[0]  # fmt: skip
    assert (out.mode, out.size) == ("I;16", (33, 20))
    rgb = build_generator({"architecture": "unet", "num_downs": 5, "ngf": 8})
    with pytest.raises(ConfigError, match="16-bit output is for 1-channel"):
        Translator(device="cpu", plan="eager").translate(rgb, [rgba], bits=16)


def test_the_app_shows_a_grey_model_in_grey(tmp_path):
    """What the Photo tab does with a result: the engine's Translator, then a PNG file."""
    from webui import photo

    grey = build_generator({"architecture": "unet", "num_downs": 5, "ngf": 8,
                            "in_channels": 1, "out_channels": 1})  # fmt: skip
    out = Translator(device="cpu").translate(grey, [Image.new("RGB", (64, 48), "red")])[0]
    shown = Image.open(photo._save_png(out, tmp_path, "result"))
    assert (shown.mode, shown.size) == ("L", (64, 48))


def test_a_grey_pix2pix_run_trains_exports_and_translates_grey(tmp_path):
    root = grey_dataset(tmp_path / "data")
    out = tmp_path / "run"
    assert train("pix2pix", "--data", str(root), "--out", str(out), *TINY, "--input-nc", "1",
                 "--output-nc", "1", "--load-size", "36", "--crop-size", "32",
                 "--steps", "2", "--val-images", "2") == 0  # fmt: skip
    config = json.loads((out / "weights/G/config.json").read_text())
    assert (config["in_channels"], config["out_channels"]) == (1, 1)
    state = ckpt.load_checkpoint(ckpt.checkpoint_path(out))
    assert state["nets"]["D"]["model.0.weight"].shape[1] == 2  # judges cat(A, B): 1 + 1
    assert {"L1", "PSNR", "SSIM"} <= records(out, "val")[0].keys()
    photo = tmp_path / "photo.png"
    Image.fromarray(grey16(50, 40, 9)).save(photo)
    for bits, mode in (("8", "L"), ("16", "I;16")):
        target = tmp_path / f"out{bits}"
        argv = ["translate", str(photo), "-o", str(target), "--checkpoint", str(out / "weights/G")]
        assert cli.main([*argv, "--bit-depth", bits, "--device", "cpu"]) == 0
        written = Image.open(target / "photo.png")
        assert (written.mode, written.size) == (mode, (50, 40))
    argv = [
        "translate",
        str(photo),
        "-o",
        str(tmp_path / "j"),
        "--checkpoint",
        str(out / "weights/G"),
    ]
    assert cli.main([*argv, "--bit-depth", "16", "--format", "jpg"]) == 2


def test_channel_settings_that_cannot_work_are_refused(tmp_path):
    base = {"data": "d", "out": str(tmp_path)}
    with pytest.raises(ConfigError, match="identity loss"):
        resolve("cyclegan", {**base, "input_nc": 1}, None)
    resolve("cyclegan", {**base, "input_nc": 1, "lambda_identity": 0.0}, None)
    with pytest.raises(ConfigError, match="--keep-best must be one of"):
        resolve("pix2pix", {**base, "keep_best": "lpips"}, None)


# --- preprocess modes ------------------------------------------------------------------------

FRAME = (640, 480)
# mode -> (load, crop, the size a 640x480 frame comes out at, multiple 32)
MODES = {
    "resize_and_crop": (286, 256, (256, 256)),
    "crop": (286, 256, (256, 256)),
    "scale_width": (320, 128, (320, 256)),  # 320x240, padded to 32 multiples
    "scale_width_and_crop": (320, 128, (128, 128)),
    "none": (286, 256, (640, 480)),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_each_mode_keeps_the_geometry_and_crops_a_and_b_alike(tmp_path, mode):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (FRAME[1], FRAME[0], 3), dtype=np.uint8)
    path = pair_file(tmp_path / "f.png", frame, frame)  # B == A: alignment shows as equality
    load, crop, (w, h) = MODES[mode]
    augment = data.Augment(load, crop, True, mode, multiple=32)
    ds = data.PairedDataset([path], augment, seed=3, swap=False)
    seen = set()
    for epoch in range(4):
        sample = ds[(epoch, 0)]
        assert sample["A"].shape == (3, h, w)
        assert torch.equal(sample["A"], sample["B"])
        seen.add(sample["A"].sum().item())
    if mode != "none" and mode != "scale_width":
        assert len(seen) > 1  # the crop (and flip) are drawn per epoch
    val = augment.evaluation()
    first = data.PairedDataset([path], val, 3, False)[0]["A"]
    assert torch.equal(first, data.PairedDataset([path], val, 9, False)[0]["A"])  # no draw
    if mode == "none":
        padded = data.PairedDataset([path], data.Augment(load, crop, False, mode, 256), 0, False)
        assert padded[0]["A"].shape == (3, 512, 768)  # a U-Net-256 gets 768x512


def test_scale_width_keeps_the_aspect_of_a_frame():
    augment = data.Augment(320, 128, False, "scale_width")
    assert augment.resized(FRAME) == (320, 240)  # 4:3 stays 4:3, not squashed to a square
    assert data.Augment(286, 256, False).resized(FRAME) == (286, 286)  # the default squash


def test_resume_is_exact_with_a_non_default_preprocess(tmp_path):
    root = tmp_path / "data"
    rng = np.random.default_rng(1)
    for i in range(3):
        a = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        pair_file(root / "train" / f"{i}.png", a, 255 - a)
    common = ["pix2pix", "--data", str(root), *TINY, "--preprocess", "scale_width_and_crop",
              "--load-size", "64", "--crop-size", "32", "--val-images", "0"]  # fmt: skip
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train(*common, "--out", str(straight), "--steps", "4") == 0
    assert train(*common, "--out", str(split), "--steps", "2") == 0
    assert train("pix2pix", "--out", str(split), "--steps", "4", resume=True) == 0
    same_training_state(straight, split)
    weights = "weights/G/model.safetensors"
    assert (straight / weights).read_bytes() == (split / weights).read_bytes()


def test_mixed_sizes_in_one_batch_are_a_clear_error(tmp_path):
    root = tmp_path / "data"
    for i, (w, h) in enumerate(((64, 32), (32, 64))):
        a = np.full((h, w, 3), 40 * i, dtype=np.uint8)
        pair_file(root / "train" / f"{i}.png", a, a)
    argv = ["pix2pix", "--data", str(root), "--out", str(tmp_path / "r"), *TINY, "--steps",
            "1", "--preprocess", "none", "--batch-size", "2", "--val-images", "0"]  # fmt: skip
    with pytest.raises(DatasetError, match="--batch-size 1"):
        train(*argv)


# --- keep-best / keep-last -------------------------------------------------------------------


def test_keep_best_exports_the_best_validation_and_resume_continues_it(tmp_path):
    root = grey_dataset(tmp_path / "data", n_train=2, n_val=2, size=(32, 32))
    out = tmp_path / "run"
    common = ["pix2pix", "--data", str(root), "--out", str(out), *TINY, "--input-nc", "1",
              "--output-nc", "1", "--load-size", "36", "--crop-size", "32",
              "--save-every", "1", "--val-images", "2", "--keep-best", "psnr"]  # fmt: skip
    assert train(*common, "--steps", "4", "--keep-last", "4") == 0
    val = records(out, "val")
    assert [r["step"] for r in val] == [1, 2, 3, 4]
    best = max(val, key=lambda r: (r["PSNR"], -r["step"]))  # ties: the earlier step
    exported = json.loads((out / "weights/G-best/config.json").read_text())
    assert (exported["_trained_steps"], exported["_best_value"]) == (best["step"], best["PSNR"])
    assert "--keep-best" in (out / "weights/G-best/README.md").read_text()
    chosen = ckpt.load_checkpoint(keep.step_path(out / "checkpoints", best["step"]))
    tensors = load_file(out / "weights/G-best/model.safetensors")
    assert all(torch.equal(tensors[k], v) for k, v in chosen["nets"]["G"].items())
    assert [r["step"] for r in records(out, "best")][-1] == best["step"]
    assert len(list((out / "checkpoints").glob("step-*.pt"))) == 4

    # Resume to 6 with --keep-last 2: the record continues over all six validations.
    assert train("pix2pix", "--out", str(out), "--steps", "6", "--keep-last", "2",
                 resume=True) == 0  # fmt: skip
    val = records(out, "val")
    assert [r["step"] for r in val] == [1, 2, 3, 4, 5, 6]
    best = max(val, key=lambda r: (r["PSNR"], -r["step"]))
    state = ckpt.load_checkpoint(ckpt.checkpoint_path(out))
    assert (state["best"]["step"], state["best"]["value"]) == (best["step"], best["PSNR"])
    exported = json.loads((out / "weights/G-best/config.json").read_text())
    assert exported["_trained_steps"] == best["step"]
    names = sorted(p.name for p in (out / "checkpoints").glob("*.pt"))
    assert names == ["last.pt", "step-00000005.pt", "step-00000006.pt"]
    assert load_generator(out / "weights/G").config["in_channels"] == 1  # the last, beside

    # A best export lost (a kill between checkpoint and export): --resume writes it again.
    (out / "weights/G-best/model.safetensors").unlink()
    assert train("pix2pix", "--out", str(out), "--steps", "6", resume=True) == 0
    tensors = load_file(out / "weights/G-best/model.safetensors")
    assert all(torch.equal(tensors[k], v) for k, v in state["best"]["nets"]["G"].items())


def test_keep_best_needs_paired_validation(tmp_path):
    root = tmp_path / "data"
    a = np.zeros((32, 32, 3), dtype=np.uint8)
    pair_file(root / "train" / "0.png", a, a)
    argv = ["pix2pix", "--data", str(root), "--out", str(tmp_path / "r"), *TINY, "--steps",
            "1", "--load-size", "32", "--crop-size", "32", "--keep-best", "ssim"]  # fmt: skip
    with pytest.raises(ConfigError, match="needs held-out images"):
        train(*argv)
