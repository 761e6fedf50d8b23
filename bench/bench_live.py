"""The Live tab's frame rate: the real app, driven by Debian's chromium with a fake camera.

The generator (`--checkpoint`, any file or folder load_generator reads, e.g. a distilled
student; else a random one of `--arch` / `--ngf` / `--n-blocks`) is saved as one of your
models (IMG2IMG_WEIGHTS_DIR/custom/live-bench/), `python app.py` is started (bench/serve.py),
and chromium plays a generated `--size`² YUV4MPEG2 clip at 30 fps as its webcam
(tests/helpers/live.py: the steps the browser test takes). After a warm-up of `--warmup`
frames, the status line is read for `--seconds`: frames translated per second, model ms
per frame and frames dropped, as the page shows them. In the same run, before the server
starts, the same network is timed in this process at `--size`²: the plain eager fp32
forward (the reference) and one live frame under the app's plan (img2img.media.live:
pre-processing, running statistics, post-processing), with no browser or server.

Browser, server and model share this machine's cores: on 2 cores the page's rate is below
what the model alone allows (chromium encodes each frame as a JPEG, the server decodes it).
Prints JSON; appends to bench/RESULTS.md unless --no-record.

    .venv/bin/python bench/bench_live.py [--checkpoint student/] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # helpers.live: the browser test's steps
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import torch  # noqa: E402
from helpers.live import launch, open_live, record, status, wait_frames, write_y4m  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from bench.common import append_results, cpu_kind, emit, photo, timed  # noqa: E402
from bench.serve import serve  # noqa: E402
from img2img import Translator, load_generator  # noqa: E402
from img2img.checkpoints.release import save_pretrained  # noqa: E402
from img2img.media import processing  # noqa: E402
from img2img.media.live import translate_frame  # noqa: E402
from img2img.models import build_generator  # noqa: E402
from img2img.plans.execution import auto_plan  # noqa: E402

NAME = "live-bench"  # the model's name in the app's pickers ("Your model live-bench")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def network(args) -> tuple[torch.nn.Module, str]:
    """(the generator, how the results name it)."""
    if args.checkpoint:
        return load_generator(args.checkpoint), Path(args.checkpoint).name
    config = {"architecture": args.arch, "ngf": args.ngf}
    if args.n_blocks is not None:
        config["n_blocks"] = args.n_blocks
    torch.manual_seed(0)
    blocks = f", {args.n_blocks} blocks" if args.n_blocks is not None else ""
    return build_generator(config).eval(), f"random {args.arch} ngf {args.ngf}{blocks}"


def in_process(net: torch.nn.Module, size: int, reps: int) -> dict:
    """Milliseconds per frame here: eager fp32 forward, and a live frame under the app's plan."""
    img = photo(size, size)
    eager = Translator(device="cpu", plan="eager")
    x = processing.prepare(img, size, eager.multiple(net)).tensor
    model = eager.prepare(net).model
    with torch.inference_mode():
        ref = timed(lambda: model(x), reps)
    app = Translator(device="cpu", plan=auto_plan(torch.device("cpu")))
    state = {"stats": translate_frame(app, net, img, size=size).stats}

    def frame():
        state["stats"] = translate_frame(app, net, img, state["stats"], size=size).stats

    live = timed(frame, reps, warmup=2)
    return {
        "plan": app.plan.describe(),
        "eager_fp32_ms": round(ref["median_s"] * 1000, 1),
        "live_frame_ms": round(live["median_s"] * 1000, 1),
    }


def in_browser(folder: Path, size: int, warmup: int, seconds: float) -> dict:
    """The page's figures after `warmup` frames, at the end of `seconds` more."""
    y4m = write_y4m(folder / "camera.y4m", frames=60, size=(size, size), fps=30)
    with serve(folder) as app, sync_playwright() as p:
        browser = launch(p, CHROMIUM, y4m)
        page = browser.new_page(permissions=["camera"])
        page.set_default_timeout(180_000)
        open_live(page, app.url, NAME)
        record(page)
        start = wait_frames(page, warmup, timeout_s=300)
        time.sleep(seconds)
        end = status(page)
        record(page)
        browser.close()
    frames = end["frames"] - start["frames"]
    sent = end["sent"] - start["sent"]
    return {
        "page_fps": end["fps"],
        "page_model_ms": end["model_ms"],
        "frames": frames,
        "dropped": end["dropped"] - start["dropped"],
        "sent": sent,
        "measured_fps": round(frames / seconds, 1),
        "offered_fps": round(sent / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="a generator file or folder (e.g. a student)")
    parser.add_argument("--arch", default="resnet", help="random net's architecture")
    parser.add_argument("--ngf", type=int, default=8)
    parser.add_argument("--n-blocks", type=int, default=None)
    parser.add_argument("--size", type=int, default=256, help="camera side (working size)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=int, default=10, help="frames before measuring")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    net, name = network(args)
    row = {"bench": "live", "net": name, "size": args.size, "cpu": cpu_kind()}
    row |= in_process(net, args.size, args.reps)
    folder = Path(tempfile.mkdtemp(prefix="img2img-bench-live-"))
    save_pretrained(net, folder / "weights" / "custom" / NAME)
    row |= in_browser(folder, args.size, args.warmup, args.seconds)
    emit(row)
    if not args.no_record:
        append_results(
            "live",
            [
                "| net | size | plan | eager fp32 ms | live frame ms | page fps | page model ms "
                "| measured fps | offered fps | dropped / sent |",
                "|---|---|---|---|---|---|---|---|---|---|",
                f"| {name} | {args.size}² | {row['plan']} | {row['eager_fp32_ms']} | "
                f"{row['live_frame_ms']} | {row['page_fps']} | {row['page_model_ms']} | "
                f"{row['measured_fps']} | {row['offered_fps']} | "
                f"{row['dropped']} / {row['sent']} |",
            ],
        )


if __name__ == "__main__":
    main()
