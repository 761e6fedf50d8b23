"""A distilled student against its teacher: cost, speed per plan, closeness on held-out photos.

    python bench/bench_distill.py photos runs/photos          # scikit-image's photos, split
    python bench/bench_distill.py measure runs/vintage/weights/student [--photos runs/photos]

`photos` writes DIR/train/ and DIR/val/ from the photos scikit-image's wheel ships (split by
file, fixed below; the stereo pair stays on one side). `measure` loads the teacher (vintagify's
trained CycleGAN ResNet-9, `pip install vintagify`, or --teacher REF) and the student, and
prints JSON rows: multiply-adds at 256x256 (torch.utils.flop_counter), ms per 256x256 frame
through Translator for each plan (eager fp32, bf16, openvino: the CPU default), and on each
held-out photo (long side 256, as the app's default working size) PSNR of the student's
8-bit output against the teacher's (eager fp32), beside the photo's own PSNR against it.
It appends the table to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import append_results, emit, machine, timed  # noqa: E402
from img2img import Translator, load_generator  # noqa: E402
from img2img.checkpoints.hub import load_model  # noqa: E402

TRAIN = [
    "astronaut.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png",
    "motorcycle_right.png", "retina.jpg", "brick.png", "grass.png", "moon.png", "cell.png",
    "coins.png",
]  # fmt: skip
HELD_OUT = ["chelsea.png", "coffee.png", "rocket.jpg", "camera.png", "gravel.png",
            "clock_motion.png"]  # fmt: skip
PLANS = ("eager", "bf16", "openvino")


def write_photos(dest: Path) -> None:
    """DIR/train/ and DIR/val/ as RGB PNGs from skimage/data."""
    import skimage  # noqa: PLC0415 - a dev dependency, needed by this command only

    source = Path(skimage.__file__).parent / "data"
    for split, names in (("train", TRAIN), ("val", HELD_OUT)):
        (dest / split).mkdir(parents=True, exist_ok=True)
        for name in names:
            img = Image.open(source / name).convert("RGB")
            img.save(dest / split / f"{Path(name).stem}.png")
    print(f"{len(TRAIN)} training and {len(HELD_OUT)} held-out photos in {dest}")


def vintagify() -> torch.nn.Module:
    spec = importlib.util.find_spec("vintagify")
    if spec is None:
        sys.exit("vintagify is not installed: pip install vintagify (or give --teacher)")
    return load_generator(Path(spec.origin).parent / "resources" / "G_A2B_epoch33.pth")


def macs(net: torch.nn.Module, side: int = 256) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net.eval()(torch.zeros(1, 3, side, side))
    return counter.get_total_flops() / 2


def psnr(a: Image.Image, b: Image.Image) -> float:
    x, y = (np.asarray(i, np.float64) for i in (a, b))
    return 10 * math.log10(255**2 / float(((x - y) ** 2).mean()))


def speed(nets: dict[str, torch.nn.Module], reps: int) -> dict[str, dict[str, float]]:
    """{plan: {net: ms per 256x256 frame}} through Translator (as the app and CLI run)."""
    frame = Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), np.uint8))
    out: dict[str, dict[str, float]] = {}
    for plan in PLANS:
        tr = Translator(device="cpu", plan=plan)
        for name, net in nets.items():
            ms = timed(lambda n=net, t=tr: t.translate(n, [frame]), reps)["median_s"] * 1e3
            out.setdefault(plan, {})[name] = ms
            emit({"plan": plan, "net": name, "ms_per_frame": round(ms, 1)})
    return out


def closeness(teacher, student, photos: Path) -> list[dict]:
    tr = Translator(device="cpu", plan="eager")
    rows = []
    for path in sorted((photos / "val").glob("*.png")):
        img = Image.open(path).convert("RGB")
        img.thumbnail((256, 256), Image.BICUBIC)
        target, mine = (tr.translate(n, [img])[0] for n in (teacher, student))
        row = {"photo": path.stem, "student_db": psnr(mine, target), "input_db": psnr(img, target)}
        rows.append(row)
        emit({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()})
    return rows


def measure(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    teacher = load_model(args.teacher) if args.teacher else vintagify()
    student = load_generator(args.student)
    trained = json.loads((Path(args.student) / "config.json").read_text()).get("_trained_steps")
    nets = {"teacher": teacher, "student": student}
    cost = {name: macs(net) / 1e9 for name, net in nets.items()}
    emit({"gmacs_256": {k: round(v, 2) for k, v in cost.items()}})
    ms = speed(nets, args.reps)
    rows = closeness(teacher, student, Path(args.photos))
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("student_db", "input_db")}
    lines = [
        f"student `{student.config}` of teacher `{teacher.config['architecture']}` "
        f"ngf {teacher.config['ngf']}; student trained {trained} steps; {machine()}",
        "",
        "| | GMACs 256² | " + " | ".join(f"ms/frame {p}" for p in PLANS) + " |",
        "|---|---|" + "---|" * len(PLANS),
    ]
    for name in nets:
        cells = " | ".join(f"{ms[p][name]:.0f}" for p in PLANS)
        lines.append(f"| {name} | {cost[name]:.2f} | {cells} |")
    ratio = " | ".join(f"{ms[p]['teacher'] / ms[p]['student']:.1f}×" for p in PLANS)
    lines.append(f"| teacher / student | {cost['teacher'] / cost['student']:.1f}× | {ratio} |")
    lines += [
        "",
        "| held-out photo (long side 256) | student vs teacher dB | input vs teacher dB |",
    ]
    lines += ["|---|---|---|"]
    lines += [f"| {r['photo']} | {r['student_db']:.2f} | {r['input_db']:.2f} |" for r in rows]
    lines.append(f"| mean | {mean['student_db']:.2f} | {mean['input_db']:.2f} |")
    print("\n".join(lines))
    if not args.no_record:
        append_results("bench_distill", lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    photos = sub.add_parser("photos", help="write scikit-image's photos as DIR/train, DIR/val")
    photos.add_argument("dest", type=Path)
    m = sub.add_parser("measure", help="teacher vs student: MACs, ms per plan, PSNR")
    m.add_argument("student", help="the student's folder (RUN/weights/student)")
    m.add_argument("--teacher", default="", help="catalog id or file (default: vintagify's)")
    m.add_argument("--photos", default="runs/photos", help="DIR with val/ held-out photos")
    m.add_argument("--threads", type=int, default=2)
    m.add_argument("--reps", type=int, default=5)
    m.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    if args.command == "photos":
        write_photos(args.dest)
    else:
        measure(args)


if __name__ == "__main__":
    main()
