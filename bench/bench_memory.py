"""Peak memory (RSS high-water mark) of tiles, video and photos under each plan, in fresh processes.

Cases (every one in its own subprocess, peak read from /proc/self/status VmHWM, the same
figure as getrusage's ru_maxrss):

    tiled   a 6000x4000 (24 MP) photo through media.tiles.translate_tiled (shared statistics,
            the default tile and overlap); `--windows N` translates the first N batches of
            windows for real and answers the rest with zeros (the peak is set by the
            statistics pass and the first batch: the accumulator and the input exist from the
            start, the output image is built at the end either way), so a case takes seconds,
            not the ~10 minutes a 2-core CPU needs for all 651 ResNet-9 windows
    video   a 48-frame 320x240 clip (tests/helpers/videos.py's colour bars) through
            media.video.translate_video at the default working size (256) and batch (8)
    photo   one untiled forward of a photo of `--mp` megapixels (Translator.translate at its own
            size): what translate_auto's memory estimate is fitted on

Each case reports the peak after the model is loaded (`load_mib`) and the peak of the whole run
(`peak_mib`); the ratio to the eager fp32 run of the same case is `x_eager`. Weights: a
trained ResNet-9 given with `--weights PATH` (any checkpoint img2img.load_generator reads,
e.g. vintagify's G_A2B_epoch33.pth), else a random-init published-width ResNet-9.

    python bench/bench_memory.py [--cases tiled video photo] [--plans eager openvino]
        [--weights PATH] [--windows N] [--mp 3 6 12] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BIG = (6000, 4000)
CLIP = (320, 240)


def _status(field: str) -> int:
    """A /proc/self/status figure in KiB (VmHWM: peak RSS, VmRSS: now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _model(weights: str | None):
    import torch

    from img2img import load_generator
    from img2img.models import build_generator

    if weights:
        return load_generator(weights)
    torch.manual_seed(0)
    return build_generator({"architecture": "resnet"}).eval()


def _limit_windows(n: int | None) -> None:
    """Make tiles run only the first `n` batches of windows; later ones answer zeros."""
    if n is None:
        return
    import torch

    from img2img.media import tiles

    calls = {"windows": 0}
    real = tiles._accumulate

    def accumulate(runner, *args, **kwargs):
        run = runner.run

        def limited(x, fixed=None, record=False):
            if fixed is not None and not record:
                calls["windows"] += 1
                if calls["windows"] > n:
                    return torch.zeros(x.shape[0], 3, *x.shape[2:]), None
            return run(x, fixed=fixed, record=record)

        runner.run = limited
        try:
            return real(runner, *args, **kwargs)
        finally:
            runner.run = run

    tiles._accumulate = accumulate


def child(args: argparse.Namespace) -> dict:
    """One case in this process; returns its figures."""
    import torch  # noqa: F401  (imported before the baseline, as every case needs it)
    from PIL import Image

    from img2img import Translator

    base = _status("VmRSS")
    translator = Translator(device="cpu", plan=args.plan)
    model = _model(args.weights)
    prepared = translator._resolve(model)  # the prepared copy every call below reuses
    load = _status("VmHWM")
    out: dict = {"case": args.case, "plan": translator.plan.describe()}
    if args.case == "tiled":
        from bench.common import photo
        from img2img.media.tiles import translate_tiled

        _limit_windows(args.windows)
        img = photo(*BIG)
        result = translate_tiled(translator, model, img, progress=False)
        out.update(size=f"{BIG[0]}x{BIG[1]}", windows=args.windows, out=result.size)
    elif args.case == "video":
        sys.path.insert(0, str(ROOT / "tests"))
        from helpers.videos import make_clip

        from img2img.media.video import translate_video

        with tempfile.TemporaryDirectory() as tmp:
            src = make_clip(Path(tmp) / "in.mp4", frames=48, size=CLIP, audio=False)
            base = max(base, _status("VmRSS"))
            info = translate_video(translator, model, src, Path(tmp) / "out.mp4", progress=False)
        out.update(size=f"{CLIP[0]}x{CLIP[1]}", frames=info.frames)
    elif args.case == "photo":
        from bench.common import photo

        side = round((args.mp[0] * 1e6 / 12) ** 0.5)
        img = photo(4 * side, 3 * side)
        Image.MAX_IMAGE_PIXELS = None
        translator.translate(model, [img], size=None)
        out.update(size=f"{img.width}x{img.height}", mp=round(img.width * img.height / 1e6, 2))
    del prepared
    out.update(
        base_mib=round(base / 1024, 1),
        load_mib=round(load / 1024, 1),
        peak_mib=round(_status("VmHWM") / 1024, 1),
    )
    return out


def run_case(case: str, plan: str, args: argparse.Namespace, mp: float | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", case, "--plans", plan]
    if args.weights:
        cmd += ["--weights", args.weights]
    if args.windows is not None:
        cmd += ["--windows", str(args.windows)]
    if mp is not None:
        cmd += ["--mp", str(mp)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        return {"case": case, "plan": plan, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cases", nargs="+", default=["tiled", "video"])
    p.add_argument("--plans", nargs="+", default=["eager", "openvino"])
    p.add_argument("--weights", default=None)
    p.add_argument("--windows", type=int, default=2, help="batches of windows run for real")
    p.add_argument("--mp", type=float, nargs="+", default=[1, 2, 3])
    p.add_argument("--no-record", action="store_true")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.case, args.plan = args.child, args.plans[0]
        print(json.dumps(child(args)), flush=True)
        return

    from bench.common import append_results, emit

    rows = []
    for case in args.cases:
        for mp in args.mp if case == "photo" else [None]:
            eager = None
            for plan in args.plans:
                row = run_case(case, plan, args, mp)
                if plan == "eager" and "peak_mib" in row:
                    eager = row["peak_mib"]
                if eager and "peak_mib" in row:
                    row["x_eager"] = round(row["peak_mib"] / eager, 2)
                emit(row)
                rows.append(row)
    if args.no_record:
        return
    weights = Path(args.weights).name if args.weights else "random-init ResNet-9"
    lines = [
        f"Weights: {weights}. Peak RSS (VmHWM) per case in a fresh process; "
        f"tiled: first {args.windows} batches of windows run for real.",
        "",
        "| case | size | plan | after load MiB | peak MiB | × eager |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "peak_mib" not in r:
            lines.append(f"| {r['case']} | | {r['plan']} | error: {r.get('error')} | | |")
            continue
        lines.append(
            f"| {r['case']} | {r['size']} | {r['plan']} | {r['load_mib']} | {r['peak_mib']} "
            f"| {r.get('x_eager', '')} |"
        )
    append_results("bench_memory.py", lines)


if __name__ == "__main__":
    main()
