"""Wall time of `python -m img2img translate` on 10 images per architecture (full-size nets).

Random-init generators at their published sizes (ngf 64) are saved the classic way, ten
generated photos (640x480 JPEG) are translated by the CLI in a subprocess, once with the
default size policy and once with --official. Prints one JSON object per run and appends
a table to bench/RESULTS.md (unless --no-record).

    .venv/bin/python bench/bench_cli.py [--images 10] [--device cpu] [--no-record]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import append_results, emit  # noqa: E402
from img2img.models import HugGANUNetGenerator, ResnetGenerator, UNetGenerator  # noqa: E402

NETS = {
    "unet_256": lambda: UNetGenerator(),
    "resnet_9blocks": lambda: ResnetGenerator(),
    "huggan_unet": lambda: HugGANUNetGenerator(),
}


def make_images(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        a = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        Image.fromarray(a).save(folder / f"photo{i:02d}.jpg", quality=90)


def run_cli(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "img2img", "translate", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-record", action="store_true")
    opts = parser.parse_args()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        make_images(tmp / "in", opts.images)
        for name, make in NETS.items():
            torch.manual_seed(0)
            torch.save(make().state_dict(), tmp / f"{name}.pth")
            for mode, extra in (("default", []), ("official", ["--official"])):
                seconds = run_cli(
                    [
                        str(tmp / "in"),
                        "-o",
                        str(tmp / f"out-{name}-{mode}"),
                        "--checkpoint",
                        str(tmp / f"{name}.pth"),
                        "--device",
                        opts.device,
                        *extra,
                    ]
                )
                row = {
                    "bench": "cli",
                    "net": name,
                    "mode": mode,
                    "images": opts.images,
                    "input": "640x480",
                    "seconds": round(seconds, 2),
                    "seconds_per_image": round(seconds / opts.images, 3),
                    "device": opts.device,
                    "torch": torch.__version__,
                    "threads": torch.get_num_threads(),
                }
                emit(row)
                rows.append(row)
    if not opts.no_record:
        lines = [
            f"{opts.images} photos of 640x480, process start included, device {opts.device}",
            "",
            "| net | mode | total s | s/image |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['net']} | {r['mode']} | {r['seconds']} | {r['seconds_per_image']} |"
            for r in rows
        ]
        append_results("cli", lines)


if __name__ == "__main__":
    main()
