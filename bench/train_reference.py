"""Trained reference generators for the benchmarks, made here by our own train.py on real photos.

Random-init networks mislead fidelity figures (their activations are not those of a trained
net: a path that keeps 55 dB on trained weights showed 43.8 dB on random ones). This script
trains published-width generators (ngf 64) on real photographs, grey -> colour pairs made from
scikit-image's public-domain data images, long enough that the weights are far from their
initialisation, and caches them under cache_dir()/reference/ (IMG2IMG_CACHE or
$HF_HOME/img2img): nothing is committed. bench_inference.py uses them by default when present.

    .venv/bin/python bench/train_reference.py [--families unet resnet] [--steps N]

Families: "unet" (pix2pix U-Net-256, per-image BatchNorm, the pix2pix recipe), "resnet"
(ResNet-9, instance norm, the CycleGAN generator, trained with the pix2pix recipe: paired L1 +
GAN, one generator instead of two, so it fits the time budget), "huggan_unet" (HugGAN U-Net).
Prints one JSON line per family (path, steps, seconds, final losses).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from img2img.checkpoints.download import cache_dir  # noqa: E402

PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "cat",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
)
DONE = "reference-done.json"  # written once the run reached its steps
LOAD = 286  # the pix2pix recipe's load size (random 256 crops of it)
# family -> (train.py arguments beyond the pix2pix preset, default steps). Measured here (AMD
# EPYC, 2 cores): 100 steps took 189 s for U-Net-256 at 256² and 276 s for ResNet-9 (fully
# convolutional: it trains on 128² crops of 143²) on a quiet machine, 3-5x that when other
# work shares the cores; 100 steps keep the default pair under ~20 min even then. The L1 term
# has fallen by then (ResNet 40 -> 34 between steps 50 and 100): trained, not random weights.
FAMILIES = {
    "unet": (["--generator", "unet", "--norm", "batch"], 100),
    "resnet": (
        ["--generator", "resnet", "--norm", "instance", "--no-dropout"]
        + ["--load-size", "143", "--crop-size", "128"],
        100,
    ),
    "huggan_unet": (["--preset", "huggan", "--generator", "huggan_unet"], 100),
}


def photos() -> dict[str, Image.Image]:
    """scikit-image's colour data photographs (public domain / CC0, shipped with the wheel)."""
    from skimage import data

    return {name: Image.fromarray(getattr(data, name)()).convert("RGB") for name in PHOTOS}


def crops(img: Image.Image) -> list[Image.Image]:
    """Five squares per photo (centre, four corners at 70 % of the short side), LOAD² each."""
    w, h = img.size
    s, c = min(w, h), int(min(w, h) * 0.7)
    boxes = [((w - s) // 2, (h - s) // 2, s)]
    boxes += [(x, y, c) for x in (0, w - c) for y in (0, h - c)]
    return [img.crop((x, y, x + n, y + n)).resize((LOAD, LOAD), Image.BICUBIC) for x, y, n in boxes]


def make_dataset(folder: Path) -> Path:
    """train/ of A|B pairs: A the greyscale photo (as RGB), B the colour one."""
    train = folder / "train"
    if train.is_dir() and any(train.iterdir()):
        return folder
    train.mkdir(parents=True, exist_ok=True)
    for name, img in photos().items():
        for k, crop in enumerate(crops(img)):
            grey = crop.convert("L").convert("RGB")
            pair = Image.new("RGB", (2 * LOAD, LOAD))
            pair.paste(grey, (0, 0))
            pair.paste(crop, (LOAD, 0))
            pair.save(train / f"{name}_{k}.png")
    return folder


def reference_dir(family: str, steps: int | None = None) -> Path:
    steps = FAMILIES[family][1] if steps is None else steps
    return cache_dir() / "reference" / f"{family}-grey2colour-{steps}"


def reference_weights(family: str) -> Path | None:
    """The cached trained reference of `family` at its default steps, if its run finished."""
    return weights_of(reference_dir(family))


def _finished(run: Path, steps: int) -> bool:
    """Whether train.py reached `steps` in `run` (a run stopped by a signal also exports
    its generators: those are not a reference). DONE is written only after that check."""
    if not (run / DONE).is_file():
        return False
    return json.loads((run / DONE).read_text()).get("steps") == steps


def weights_of(run: Path) -> Path | None:
    """The exported generator folder of a finished run (config.json + model.safetensors)."""
    steps = int(run.name.rsplit("-", 1)[-1]) if run.name[-1:].isdigit() else -1
    if not _finished(run, steps):
        return None
    for config in sorted(run.glob("weights/**/config.json")):
        if (config.parent / "model.safetensors").is_file():
            return config.parent
    return None


def train(family: str, steps: int | None = None) -> dict:
    extra, default = FAMILIES[family]
    steps = default if steps is None else steps
    run = reference_dir(family, steps)
    done = weights_of(run)
    if done is not None:
        return {"family": family, "weights": str(done), "cached": True}
    data = make_dataset(cache_dir() / "reference" / "data-grey2colour")
    cmd = [sys.executable, str(ROOT / "train.py"), "pix2pix", *extra]
    cmd += ["--data", str(data), "--ngf", "64", "--steps", str(steps), "--out", str(run)]
    cmd += ["--workers", "0", "--val-images", "0", "--save-every", str(steps), "--device", "cpu"]
    cmd += ["--log-every", "50"]
    if run.exists():  # an unfinished earlier attempt: start again from scratch
        shutil.rmtree(run)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    metrics = (run / "metrics.jsonl").read_text().splitlines()
    last = json.loads(metrics[-1]) if metrics else {}
    if last.get("step") != steps:  # stopped early (a signal): not a reference
        raise SystemExit(f"{family}: train.py stopped at step {last.get('step')}, not {steps}")
    (run / DONE).write_text(json.dumps({"steps": steps, "train_s": round(seconds, 1)}))
    return {
        "family": family,
        "weights": str(weights_of(run)),
        "steps": steps,
        "train_s": round(seconds, 1),
        "last_metrics": last,
        "cached": False,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", nargs="+", default=["unet", "resnet"], choices=FAMILIES)
    parser.add_argument("--steps", type=int, default=None, help="default: per family")
    args = parser.parse_args()
    for family in args.families:
        print(json.dumps(train(family, args.steps)), flush=True)


if __name__ == "__main__":
    main()
