"""Tiled translation: seams, fidelity to the untiled run, statistics scale, memory and time.

Random-init generators at their published widths (ngf 64, seed 0), per-window ("window")
against shared ("shared") normalisation statistics (img2img/tiles.py):

    quality  real photos (scikit-image's astronaut, coffee, chelsea, rocket; generated
             photo-like images when scikit-image is missing) and a smooth colour gradient,
             each translated untiled and tiled: difference to the untiled run (mean / max
             abs, 8-bit levels; PSNR) and seam visibility (below)
    overlap  the same on one photo for overlaps 0 .. 128
    scale    images larger than the statistics pass (astronaut x3, a 2048x1536 gradient):
             shared statistics measured at long side 256 / 512 / 1024 against the untiled run
    memory   peak RSS and wall time, each run in its own process: tiled on a 6000x4000
             input; untiled on smaller inputs (the 6000x4000 untiled run would not fit the
             machine), extrapolated linearly in pixels to 24 MP
Seam visibility: at each blend crossover (the middle of an overlap), the mean abs step in
tone between the 16-pixel bands either side, averaged over 32-pixel segments along the seam
(a tone jump between windows survives the averaging; texture does not), divided by the same
step measured at the windows' centres. 1.0: seams are no more visible than any line; the
untiled output measured at the same lines gives the content's own baseline.
Prints JSON lines; appends tables to bench/RESULTS.md.

    python bench/bench_tiles.py [--sections quality overlap scale memory] [--nets ...]
        [--save DIR] [--no-record]
    python bench/bench_tiles.py --sections curve [--weights PATH] [--curve-size W H] [--plan P]
        tiled against untiled on a photo mosaic for each (tile, overlap, statistics size) of
        CURVE: what chose tiles.stats_side (statistics as large as memory allows)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import append_results, emit, photo  # noqa: E402
from img2img import Translator  # noqa: E402
from img2img.media.tiles import default_tile, grid, translate_tiled  # noqa: E402
from img2img.models import build_generator  # noqa: E402

NETS = {
    "unet_256": {"architecture": "unet"},
    "resnet_9": {"architecture": "resnet"},
    "huggan_unet": {"architecture": "huggan_unet"},
    "huggan_resnet": {"architecture": "huggan_resnet"},
}
BAND, SEGMENT = 16, 32
BIG = (6000, 4000)
UNTILED_SIZES = [(1000, 667), (1500, 1000), (2000, 1333)]


def net(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_generator(NETS[name]).eval()


def photos() -> dict[str, Image.Image]:
    try:
        from skimage import data
    except ImportError:
        return {f"generated{i}": photo(640, 480, seed=i) for i in range(4)}
    names = ("astronaut", "coffee", "chelsea", "rocket")
    return {n: Image.fromarray(getattr(data, n)()) for n in names}


def gradient(w: int, h: int) -> Image.Image:
    """A smooth diagonal colour ramp: the worst case for per-window statistics."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = xx / w, yy / h
    rgb = np.stack([40 + 170 * u, 60 + 120 * v, 200 - 120 * (u + v) / 2], -1)
    return Image.fromarray(np.round(rgb).astype(np.uint8))


def _steps(a: np.ndarray, positions: list[float]) -> list[float]:
    """Mean abs tone step across vertical lines at `positions` of an (H, W, 3) array."""
    h, w = a.shape[:2]
    n = h // SEGMENT * SEGMENT
    out = []
    for p in positions:
        c = int(round(p))
        if c - BAND < 0 or c + BAND > w or n == 0:
            continue
        left = a[:n, c - BAND : c].mean(1).reshape(-1, SEGMENT, 3).mean(1)
        right = a[:n, c : c + BAND].mean(1).reshape(-1, SEGMENT, 3).mean(1)
        out.append(float(np.abs(right - left).mean()))
    return out


def _lines(ax) -> tuple[list[float], list[float]]:
    """(blend crossovers, window centres) along one axis."""
    s, n = ax.starts, ax.length
    cross = [(s[i + 1] + s[i] + n) / 2 for i in range(len(s) - 1)]
    return cross, [x + n / 2 for x in s]


def seams(img: Image.Image, tile: int, overlap: int, multiple: int) -> dict[str, float]:
    """Seam step (levels) and its ratio to the step at window centres, both axes pooled."""
    a = np.asarray(img, dtype=np.float64)
    rows, cols = grid(img.size, tile, overlap, multiple)
    seam, ctrl = [], []
    for arr, ax in ((a, cols), (a.transpose(1, 0, 2), rows)):
        cross, centres = _lines(ax)
        seam += _steps(arr, cross)
        ctrl += _steps(arr, centres)
    if not seam or not ctrl:
        return {"seam_step": float("nan"), "seam_ratio": float("nan")}
    s, c = float(np.mean(seam)), float(np.mean(ctrl))
    return {"seam_step": round(s, 3), "seam_ratio": round(s / max(c, 1e-9), 2)}


def diff(a: Image.Image, b: Image.Image) -> dict[str, float]:
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    mse = float((d**2).mean())
    psnr = 10 * np.log10(255**2 / mse) if mse else float("inf")
    return {"mae": round(float(d.mean()), 3), "max": int(d.max()), "psnr_db": round(psnr, 1)}


def tiled_case(tr, g, img, ref, stats, overlap=None, stats_size=512, save=None, tag=""):
    mult = tr.multiple(g)
    tile = default_tile(mult)
    overlap = tile // 4 if overlap is None else overlap
    start = time.perf_counter()
    out = translate_tiled(
        tr, g, img, tile=tile, overlap=overlap, stats=stats, stats_size=stats_size, progress=False
    )
    row = {"stats": stats, "tile": tile, "overlap": overlap, "stats_size": stats_size}
    row.update(seconds=round(time.perf_counter() - start, 2), **diff(out, ref))
    row.update(seams(out, tile, overlap, mult))
    row["untiled_seam_ratio"] = seams(ref, tile, overlap, mult)["seam_ratio"]
    if save:
        out.save(Path(save) / f"{tag}_{stats}_{overlap}_{stats_size}.png")
    return row


def quality(names, tr, save) -> list[dict]:
    images = {**photos(), "gradient": gradient(1024, 768)}
    rows = []
    for name in names:
        g = net(name)
        for iname, img in images.items():
            ref = tr.translate(g, [img], size=None)[0]
            if save:
                ref.save(Path(save) / f"{name}_{iname}_untiled.png")
            for stats in ("window", "shared"):
                r = tiled_case(tr, g, img, ref, stats, save=save, tag=f"{name}_{iname}")
                rows.append({"bench": "tiles", "net": name, "image": iname, **r})
                emit(rows[-1])
    return rows


def overlap(names, tr, save) -> list[dict]:
    img = photos()["astronaut"] if "astronaut" in photos() else photo(640, 480)
    rows = []
    for name in names:
        g = net(name)
        ref = tr.translate(g, [img], size=None)[0]
        for ov in (0, 32, 64, 128):
            for stats in ("window", "shared"):
                r = tiled_case(tr, g, img, ref, stats, overlap=ov, save=save, tag=name)
                rows.append({"bench": "tiles-overlap", "net": name, "image": "astronaut", **r})
                emit(rows[-1])
    return rows


def scale(names, tr, save) -> list[dict]:
    ph = photos()
    first = next(iter(ph))
    big = ph[first].resize((ph[first].width * 3, ph[first].height * 3), Image.BICUBIC)
    images = {f"{first} x3": big, "gradient": gradient(2048, 1536)}
    rows = []
    for name in names:
        g = net(name)
        for iname, img in images.items():
            ref = tr.translate(g, [img], size=None)[0]
            cases = [("window", 512)] + [("shared", s) for s in (256, 512, 1024)]
            for stats, ss in cases:
                r = tiled_case(tr, g, img, ref, stats, stats_size=ss, save=save, tag=name)
                rows.append({"bench": "tiles-scale", "net": name, "image": iname, **r})
                emit(rows[-1])
    return rows


def mosaic(w: int, h: int) -> Image.Image:
    """A w x h photo: four scikit-image photographs (coffee, chelsea, rocket, motorcycle),
    each resized to a quarter, in a 2 x 2 grid (generated photos without scikit-image)."""
    try:
        from skimage import data

        parts = [data.coffee(), data.chelsea(), data.rocket(), data.stereo_motorcycle()[0]]
        parts = [Image.fromarray(p) for p in parts]
    except (ImportError, AttributeError):
        parts = [photo(640, 480, seed=i) for i in range(4)]
    out = Image.new("RGB", (w, h))
    for i, p in enumerate(parts):
        out.paste(p.resize((w // 2, h // 2), Image.LANCZOS), ((i % 2) * w // 2, (i // 2) * h // 2))
    return out


CURVE = [  # (tile, overlap, statistics pass's long side; None: the image's own)
    (256, 64, 256),
    (256, 64, 512),
    (256, 64, 768),
    (256, 64, None),
    (256, 128, None),
    (512, 128, None),
]


def curve(g, tr, size: tuple[int, int], cases=CURVE) -> list[dict]:
    """Tiled against untiled on one photo of `size` for each (tile, overlap, statistics)."""
    img = mosaic(*size)
    start = time.perf_counter()
    ref = tr.translate(g, [img], size=None)[0]
    untiled_s = time.perf_counter() - start
    rows = []
    for tile, ov, ss in cases:
        start = time.perf_counter()
        out = translate_tiled(
            tr, g, img, tile=tile, overlap=ov, stats_size=ss or max(size), progress=False
        )
        row = {"bench": "tiles-curve", "image": f"mosaic {size[0]}x{size[1]}", "tile": tile}
        row.update(overlap=ov, stats_size=ss or "own", **diff(out, ref))
        row.update(seconds=round(time.perf_counter() - start, 1), untiled_s=round(untiled_s, 1))
        rows.append(row)
        emit(row)
    return rows


def child(spec: dict) -> None:
    """One measured run in this (fresh) process; prints a JSON line."""
    g = net(spec["net"])
    tr = Translator(device="cpu", plan="eager")
    img = photo(spec["w"], spec["h"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if spec["tiled"]:
        translate_tiled(tr, g, img, progress=False)
    else:
        tr.translate(g, [img], size=None)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mp = spec["w"] * spec["h"] / 1e6
    print(
        json.dumps(
            {
                **spec,
                "rss_before_mb": round(before),
                "peak_rss_mb": round(peak),
                "seconds": round(seconds, 1),
                "s_per_mp": round(seconds / mp, 2),
            }
        )
    )


def measure(spec: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory(names) -> list[dict]:
    rows = []
    for name in names:
        big = measure({"net": name, "tiled": True, "w": BIG[0], "h": BIG[1]})
        small = [measure({"net": name, "tiled": False, "w": w, "h": h}) for w, h in UNTILED_SIZES]
        mps = np.array([r["w"] * r["h"] / 1e6 for r in small])
        slope, icpt = np.polyfit(mps, [r["peak_rss_mb"] for r in small], 1)
        predicted = icpt + slope * BIG[0] * BIG[1] / 1e6
        for r in [big, *small]:
            rows.append({"bench": "tiles-memory", **r})
            emit(rows[-1])
        rows.append(
            {
                "bench": "tiles-memory",
                "net": name,
                "tiled": False,
                "w": BIG[0],
                "h": BIG[1],
                "peak_rss_mb": round(predicted),
                "extrapolated": True,
                "mb_per_mp": round(slope),
            }
        )
        emit(rows[-1])
    return rows


def record(sections: dict[str, list[dict]]) -> None:
    lines = [f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores, shared)", ""]
    quality_rows = sections.get("quality", []) + sections.get("overlap", [])
    quality_rows += sections.get("scale", [])
    if quality_rows:
        lines += [
            "| net | image | stats | tile / overlap | stats at | MAE vs untiled | max | PSNR dB "
            "| seam step | seam ratio | untiled at the same lines | s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in quality_rows:
            at = r["stats_size"] if r["stats"] == "shared" else "window"
            lines.append(
                f"| {r['net']} | {r['image']} | {r['stats']} | {r['tile']} / {r['overlap']} | "
                f"{at} | {r['mae']} | {r['max']} | {r['psnr_db']} | {r['seam_step']} | "
                f"{r['seam_ratio']} | {r['untiled_seam_ratio']} | {r['seconds']} |"
            )
    mem = sections.get("memory", [])
    if mem:
        lines += ["", "| net | run | input | peak RSS MB | s | s / MP |"]
        lines += ["|---|---|---|---|---|---|"]
        for r in mem:
            run = (
                "tiled"
                if r["tiled"]
                else "untiled" + (" (extrapolated)" * bool(r.get("extrapolated")))
            )
            lines.append(
                f"| {r['net']} | {run} | {r['w']}x{r['h']} | {r['peak_rss_mb']} | "
                f"{r.get('seconds', '')} | {r.get('s_per_mp', '')} |"
            )
    append_results("tiles", lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", nargs="+", default=["quality", "overlap", "scale", "memory"])
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--save", help="folder for the output images")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--weights", help="curve: a trained ResNet checkpoint (load_generator)")
    parser.add_argument("--curve-size", type=int, nargs=2, default=[1000, 750])
    parser.add_argument("--plan", default="eager", help="curve: the plan to run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))
    if args.sections == ["curve"]:
        from img2img import load_generator

        g = load_generator(args.weights) if args.weights else net("resnet_9")
        rows = curve(g, Translator(device="cpu", plan=args.plan), tuple(args.curve_size))
        if not args.no_record:
            lines = ["| image | tile / overlap | stats at | MAE vs untiled | max | PSNR dB | s |"]
            lines += ["|---|---|---|---|---|---|---|"]
            lines += [
                f"| {r['image']} | {r['tile']} / {r['overlap']} | {r['stats_size']} | "
                f"{r['mae']} | {r['max']} | {r['psnr_db']} | {r['seconds']} |"
                for r in rows
            ]
            append_results("tiles curve", lines)
        return
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
    tr = Translator(device="cpu", plan="eager")
    funcs = {"quality": quality, "overlap": overlap, "scale": scale}
    done = {}
    for s in args.sections:
        done[s] = memory(args.nets) if s == "memory" else funcs[s](args.nets, tr, args.save)
    if not args.no_record:
        record(done)


if __name__ == "__main__":
    main()
