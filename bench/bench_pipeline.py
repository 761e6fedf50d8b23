"""Images per second of `img2img translate` over a folder of 64 640x480 photos: the serial loop
(decode, forward, write in turn: --io-threads 0) against the pipeline (decoders and writers
beside the forward), at PNG levels 6 (Pillow's default, what translate wrote before) and 1
(the default now), same plan, same chunks; and the pipeline at level 1 with the batch forward as
OpenVINO THROUGHPUT requests (translate's default for many photos: Translator(throughput=True)).
Each serial run also times its forward stage (preprocessing, forward, resizing back), so the
row gives the forward's share of the serial time and the bound that share puts on any overlap
when the forward already uses every core (Amdahl: 1 / share). JSON lines, then a RESULTS.md
section.

    python bench/bench_pipeline.py [--photos 64] [--repeats 2] [--nets vintagify,tiny]

Photos: scikit-image's sample photographs (JPEG q90, cropped / resized to 640x480), else
generated ones. Nets: vintagify's trained CycleGAN ResNet-9 (`pip install vintagify`:
resources/G_A2B_epoch33.pth) and a tiny random ResNet (ngf 8), where the forward is cheap and
the I/O is most of the time.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import append_results, cpu_kind, emit, machine, photo  # noqa: E402
from img2img import Translator, load_generator  # noqa: E402
from img2img.atomic import Folders  # noqa: E402
from img2img.cli import _translate_chunk, build_parser  # noqa: E402
from img2img.cli_batch import Tally, run_photos  # noqa: E402
from img2img.models import ResnetGenerator  # noqa: E402

MODES = {  # name: (io threads, PNG level)
    "serial-png6": (0, 6),
    "serial-png1": (0, 1),
    "pipeline-png6": (2, 6),
    "pipeline-png1": (2, 1),
    "pipeline-png1-throughput": (2, 1),  # the same with OpenVINO THROUGHPUT requests
}


def sample_photos(folder: Path, n: int) -> list[Path]:
    """`n` 640x480 JPEGs in `folder`: scikit-image's colour photographs, cycled, else generated."""
    spec = importlib.util.find_spec("skimage")
    found = []
    if spec is not None and spec.origin:
        data = Path(spec.origin).parent / "data"
        for p in sorted([*data.glob("*.png"), *data.glob("*.jpg")]):
            with Image.open(p) as img:
                if img.mode == "RGB" and min(img.size) >= 256:
                    found.append(img.copy())
    paths = []
    for i in range(n):
        img = found[i % len(found)] if found else photo(640, 480, seed=i)
        scale = max(640 / img.width, 480 / img.height)
        img = img.resize((round(img.width * scale + 0.5), round(img.height * scale + 0.5)))
        left, top = (img.width - 640) // 2, (img.height - 480) // 2
        path = folder / f"photo{i:03d}.jpg"
        img.crop((left, top, left + 640, top + 480)).save(path, quality=90)
        paths.append(path)
    return paths


def nets(names: list[str]) -> dict[str, torch.nn.Module]:
    found = {}
    for name in names:
        if name == "tiny":
            torch.manual_seed(0)
            found["tiny ResNet ngf 8 (random)"] = ResnetGenerator(ngf=8, n_blocks=2)
        elif name == "vintagify":
            spec = importlib.util.find_spec("vintagify")
            if spec is None or not spec.origin:
                print("vintagify not installed (pip install vintagify): skipped", file=sys.stderr)
                continue
            weights = Path(spec.origin).parent / "resources" / "G_A2B_epoch33.pth"
            found["vintagify ResNet-9 (trained)"] = load_generator(weights)
    return found


def run_once(
    translator, model, photos: list[Path], out: Path, threads: int, level: int
) -> tuple[float, float]:
    """(seconds for the folder, seconds inside the chunk forwards)."""
    # translate's own parser, so the flags are the command's (and its defaults) as they change
    argv = ["translate", str(photos[0]), "-o", str(out), "--checkpoint", "unused", "--size", "256"]
    argv += ["--overwrite"]
    argv += ["--format", "png", "--png-compress", str(level), "--io-threads", str(threads)]
    args = build_parser().parse_args(argv)
    jobs = [(p, out / f"{p.stem}.png") for p in photos]
    tally = Tally()
    inside = [0.0]

    def forward(images):
        t0 = time.perf_counter()
        try:
            return _translate_chunk(translator, model, images, args)
        finally:
            inside[0] += time.perf_counter() - t0

    start = time.perf_counter()
    run_photos(translator, model, jobs, args, Folders(), tally, forward)
    return time.perf_counter() - start, inside[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--nets", default="vintagify,tiny")
    opts = parser.parse_args()
    translator = Translator(device="cpu")
    throughput = Translator(device="cpu", throughput=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        photos = sample_photos(Path(tmp), opts.photos)
        out = Path(tmp) / "out"
        out.mkdir()
        for label, module in nets(opts.nets.split(",")).items():
            model = module  # prepared (converted) once by the translator, then reused
            for t in (translator, throughput):  # warm-up (kernels, caches, both compiles)
                run_once(t, model, photos[:8], out, 0, 1)
            rates, shares = {}, {}
            for mode, (threads, level) in MODES.items():
                t = throughput if mode.endswith("throughput") else translator
                runs = [run_once(t, model, photos, out, threads, level)
                        for _ in range(opts.repeats)]  # fmt: skip
                best, inside = min(runs)
                rates[mode] = round(len(photos) / best, 2)
                shares[mode] = round(inside / best, 3)
            ratio = lambda a, b, r=rates: round(r[a] / r[b], 2)  # noqa: E731
            row = {"bench": "pipeline", "net": label, "plan": translator.plan.describe(),
                   "photos": len(photos), "size": "640x480 JPEG -> PNG, working side 256",
                   "images_per_s": rates,
                   "pipeline_vs_serial_png6": ratio("pipeline-png6", "serial-png6"),
                   "pipeline_vs_serial_png1": ratio("pipeline-png1", "serial-png1"),
                   "throughput_vs_latency": ratio("pipeline-png1-throughput", "pipeline-png1"),
                   "default_vs_before": ratio("pipeline-png1-throughput", "serial-png6"),
                   "forward_share_serial_png1": shares["serial-png1"],
                   "overlap_bound_png1": round(1 / shares["serial-png1"], 2),
                   "cpu_kind": cpu_kind(), "machine": machine()}  # fmt: skip
            emit(row)
            rows.append(row)
    lines = ["| net | plan | " + " | ".join(MODES) + " | pipeline/serial (png6, png1) | "
             "THROUGHPUT/LATENCY | forward share (serial png1), bound | default / before |",
             "|---" * (len(MODES) + 6) + "|"]  # fmt: skip
    for r in rows:
        rates = " | ".join(str(r["images_per_s"][m]) for m in MODES)
        lines.append(f"| {r['net']} | {r['plan']} | {rates} | {r['pipeline_vs_serial_png6']}x, "
                     f"{r['pipeline_vs_serial_png1']}x | {r['throughput_vs_latency']}x | "
                     f"{r['forward_share_serial_png1']}, {r['overlap_bound_png1']}x | "
                     f"{r['default_vs_before']}x |")  # fmt: skip
    append_results("pipeline (images/s, 64 photos 640x480)", lines)


if __name__ == "__main__":
    main()
