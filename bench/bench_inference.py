"""Inference speed and fidelity of every execution plan against the eager fp32 reference.

Networks: `--checkpoint PATH` (any checkpoint our loader loads, repeatable), else the trained
references of bench/train_reference.py when they are in the cache (published width, trained by
our train.py on real photos), else published-width random-init U-Net-256, ResNet-9 and HugGAN
U-Net (say so: random weights mislead fidelity). Each line says which weights it used.
Inputs: real photographs (scikit-image's public-domain data images), resized to the size.

Per network and input size, batch 1 (and batch 8 at 256² with --batch8): latency median and
spread of each plan and, in the same run, of the reference (a plain eager fp32 forward, as
the classic code runs it); the speed-up over the reference; fidelity against the reference
output: PSNR of the 8-bit images (what a user gets) and the largest 8-bit level difference,
plus the float PSNR. The main plan of each converting backend in the plan table (the first
row of each non-torch backend of execution.PLANS that runs here: openvino, onnxruntime; more
rows with --also, e.g. openvino-f32) also reports its
cold start (trace + convert + compile, no disk cache), a load from the disk cache, and each
size's first call after the warm-up at 256² (a new size: what the first request at that size
costs). Emulated bf16 (a CPU without
native bf16) is skipped and says so. Prints JSON lines; appends a table to bench/RESULTS.md.

    .venv/bin/python bench/bench_inference.py [--checkpoint PATH] [--sizes 256 512] [--batch8]
                                              [--compile] [--no-openvino] [--also PLAN ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import append_results, emit, fidelity, timed  # noqa: E402
from bench.train_reference import reference_weights  # noqa: E402
from img2img import load_generator
from img2img.models import HugGANUNetGenerator, ResnetGenerator, UNetGenerator  # noqa: E402
from img2img.models.norm import set_image_stats  # noqa: E402
from img2img.plans import execution  # noqa: E402

RANDOM = {
    "unet_256": UNetGenerator,
    "resnet_9": ResnetGenerator,
    "huggan_unet": HugGANUNetGenerator,
}
REFERENCES = {"unet_256": "unet", "resnet_9": "resnet", "huggan_unet": "huggan_unet"}
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def networks(checkpoints: list[str], names: list[str]) -> list[tuple[str, str, torch.nn.Module]]:
    """(name, which weights, module) for each network to measure."""
    if checkpoints:
        return [(Path(p).name, f"checkpoint {p}", load_generator(p)) for p in checkpoints]
    out = []
    for name in names:
        trained = reference_weights(REFERENCES[name])
        if trained is not None:
            out.append((name, f"trained reference {trained}", load_generator(trained)))
        else:
            torch.manual_seed(0)
            out.append((name, "RANDOM init (run bench/train_reference.py)", RANDOM[name]()))
    return out


def photos(size: int, batch: int) -> torch.Tensor:
    """(batch, 3, size, size) in [-1, 1]: scikit-image photographs, centre-cropped, resized."""
    from skimage import data

    tensors = []
    for k in range(batch):
        img = Image.fromarray(getattr(data, PHOTOS[k % len(PHOTOS)])()).convert("RGB")
        w, h = img.size
        s = min(w, h)
        img = img.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
        a = np.asarray(img.resize((size, size), Image.BICUBIC), dtype=np.float32)
        tensors.append(torch.from_numpy(a).permute(2, 0, 1) / 127.5 - 1)
    return torch.stack(tensors)


def eight_bit(y: torch.Tensor) -> np.ndarray:
    """The output as the 8-bit image a user gets (processing.finish's rounding)."""
    return ((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy().astype(np.int16)


def fidelity8(y: torch.Tensor, ref: torch.Tensor) -> dict:
    a, b = eight_bit(y), eight_bit(ref)
    mse = float(((a - b).astype(np.float64) ** 2).mean())
    psnr = "inf" if mse == 0 else round(10 * np.log10(255**2 / mse), 1)
    return {"psnr8_db": psnr, "max_levels": int(np.abs(a - b).max()), **fidelity(y, ref)}


def torch_plans(device: torch.device, with_compile: bool) -> list[execution.ExecPlan]:
    names = ["channels_last"]
    if device.type == "cuda":
        names += ["fp16", "bf16"] if torch.cuda.is_bf16_supported() else ["fp16"]
    elif execution.native_cpu_bf16():
        names += ["bf16"]
    plans = [execution.make_plan(n) for n in names]
    return plans + ([execution.make_plan(n, compile=True) for n in names] if with_compile else [])


@contextlib.contextmanager
def empty_cache() -> Iterator[None]:
    """IMG2IMG_CACHE pointed at a new empty folder (the OpenVINO disk cache starts cold)."""
    old = os.environ.get("IMG2IMG_CACHE")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["IMG2IMG_CACHE"] = tmp
        try:
            yield
        finally:
            if old is None:
                del os.environ["IMG2IMG_CACHE"]
            else:
                os.environ["IMG2IMG_CACHE"] = old


def backend_plans(
    device: torch.device, skip: list[str], also: tuple[str, ...] = ()
) -> list[execution.ExecPlan]:
    """The main plan of each converting backend that runs on `device` (its first table row),
    plus the rows named in `also` (e.g. openvino-f32 beside openvino's bf16 hint)."""
    plans: dict[str, execution.ExecPlan] = {}
    for row in execution.PLANS.values():
        backend = row.backend
        if backend is execution.TORCH or backend.name in skip or backend.name in plans:
            continue
        if backend.devices is None or device.type in backend.devices:
            plans[backend.name] = execution.make_plan(row.name)
    extra = [execution.make_plan(n) for n in also if n not in {p.name for p in plans.values()}]
    return list(plans.values()) + extra


def precision(plan: execution.ExecPlan, runner: object) -> str:
    return getattr(runner, "precision", None) or str(plan.dtype).removeprefix("torch.")


def backend_runner(model, plan, device, base) -> tuple[str, execution.ExecPlan, object] | None:
    """The model converted twice: with an empty disk cache (cold) and from it; warmed up."""
    if not plan.backend.available():
        emit({**base, "plan": plan.name, "note": f"{plan.backend.name} not installed: skipped"})
        return None
    prepared = execution.prepare(model, plan, device)
    with empty_cache():
        start = time.perf_counter()
        execution.compiled(prepared, plan, device)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        runner = execution.compiled(prepared, plan, device)
        cached = time.perf_counter() - start
    if runner is prepared:
        emit({**base, "plan": plan.name, "note": "the model did not convert: skipped"})
        return None
    start = time.perf_counter()
    execution.forward(runner, torch.zeros(1, 3, 256, 256), plan, device)
    warm = time.perf_counter() - start
    emit(
        {
            **base,
            "plan": plan.name,
            "precision": precision(plan, runner),
            "convert_cold_s": round(cold, 2),
            "load_cached_s": round(cached, 2),
            "warm_up_256_s": round(warm, 2),
        }
    )
    return f"{plan.name} {precision(plan, runner)}", plan, runner


def bench_case(name, model, converted, size, batch, device, plans, rows) -> None:
    x = photos(size, batch)
    ref_model = execution.prepare(model, execution.EAGER, device)
    reps = 20 if device.type == "cuda" else max(3, 7 - (size * size * batch) // (256 * 256 * 2))
    ref_out = execution.forward(ref_model, x, execution.EAGER, device)
    base = {"bench": "inference", "net": name, "size": size, "batch": batch}
    cases = []
    for plan in plans:
        m = execution.compiled(execution.prepare(model, plan, device), plan, device)
        cases.append((plan.describe(), lambda m=m, p=plan: execution.forward(m, x, p, device)))
        model = model.to(memory_format=torch.contiguous_format)
    for label, plan, runner in converted:
        cases.append((label, lambda r=runner, p=plan: execution.forward(r, x, p, device)))
    # Interleaved rounds: every plan and the reference measured alternately, so a change of
    # machine load hits all of them alike (the ratios are paired).
    results = {"reference (eager fp32)": []}
    first = {}
    for label, fn in cases:
        start = time.perf_counter()
        out = fn()
        first[label] = (time.perf_counter() - start, fidelity8(out, ref_out))
        results[label] = []
    for _ in range(reps):
        for label, fn in [("reference (eager fp32)", None), *cases]:
            if fn is None:
                fn = lambda: execution.forward(ref_model, x, execution.EAGER, device)  # noqa: E731
            results[label].append(timed(fn, 1, warmup=0)["median_s"])
    ref_med = float(np.median(results["reference (eager fp32)"]))
    for label, times in results.items():
        med = float(np.median(times))
        row = {**base, "plan": label, "median_s": round(med, 4), "min_s": round(min(times), 4)}
        row |= {"max_s": round(max(times), 4), "speedup": round(ref_med / med, 2)}
        if label in first:
            first_s, fid = first[label]
            row |= {"first_call_s": round(first_s, 3), **fid}
        emit(row)
        rows.append(row)


def table(rows: list[dict], weights: dict[str, str]) -> list[str]:
    lines = [
        "| net (weights) | size | batch | plan | median s | spread s | × eager | first call s "
        "| PSNR 8-bit dB | max levels | PSNR float dB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = "first_call_s" not in r
        lines.append(
            f"| {r['net']} ({weights[r['net']]}) | {r['size']}² | {r['batch']} | {r['plan']} | "
            f"{r['median_s']:.3f} | {r['min_s']:.3f}–{r['max_s']:.3f} | {r['speedup']:.2f} | "
            + ("– | ref | ref | ref |" if ref else f"{r['first_call_s']:.3f} | {r['psnr8_db']} | ")
            + ("" if ref else f"{r['max_levels']} | {r['psnr_db']} |")
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", action="append", default=[], help="repeatable")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--nets", nargs="+", default=list(RANDOM), choices=list(RANDOM))
    parser.add_argument("--batch8", action="store_true", help="also batch 8 at 256²")
    parser.add_argument("--compile", action="store_true", help="also the torch.compile plans")
    parser.add_argument("--no-openvino", action="store_true", help="skip the openvino plan")
    parser.add_argument(
        "--also", nargs="+", default=[], metavar="PLAN", help="more converting rows to measure"
    )
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    auto = execution.auto_plan(device)
    note = f"auto plan here = {auto.describe()}"
    if device.type == "cpu" and not execution.native_cpu_bf16():
        note += "; no native bf16 on this CPU (AVX2): the bf16 plan is emulated and skipped"
    emit({"bench": "inference", "note": note})
    rows, weights = [], {}
    for name, which, model in networks(args.checkpoint, args.nets):
        model = model.eval()
        set_image_stats(model, True)  # pix2pix test semantics (no effect without BatchNorm)
        weights[name] = "trained" if "trained" in which or "checkpoint" in which else "random"
        emit({"bench": "inference", "net": name, "weights": which})
        base = {"bench": "inference", "net": name}
        skip = ["openvino"] if args.no_openvino else []
        plans = backend_plans(device, skip, tuple(args.also))
        converted = [backend_runner(model, p, device, base) for p in plans]
        converted = [c for c in converted if c is not None]
        cases = [(s, 1) for s in args.sizes] + ([(256, 8)] if args.batch8 else [])
        for size, batch in cases:
            bench_case(
                name, model, converted, size, batch, device, torch_plans(device, args.compile), rows
            )
    if not args.no_record:
        append_results("inference", [f"{note}.", "", *table(rows, weights)])


if __name__ == "__main__":
    main()
