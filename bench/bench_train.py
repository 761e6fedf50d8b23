"""Training step speed of every speed option against a plain eager fp32 step, same run.

pix2pix and CycleGAN at 256², batch 1, published widths (ngf 64 / ndf 64), the classic
recipes (img2img.training). Options: eager fp32 (the reference), channels_last, AMP (bf16 or
fp16 + scaler on CUDA; bf16 on CPUs with native bf16, skipped with a note elsewhere),
torch.compile. Each option starts from the same weights and batch; the losses of its first
step are compared with the reference's (max relative difference). Prints JSON lines and
appends a table to bench/RESULTS.md.

    .venv/bin/python bench/bench_train.py [--families pix2pix cyclegan] [--steps 3] [--compile]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import append_results, emit  # noqa: E402
from img2img.plans import execution  # noqa: E402
from img2img.training.config import resolve  # noqa: E402
from img2img.training.pool import ImagePool  # noqa: E402
from img2img.training.precision import choose_precision  # noqa: E402
from img2img.training.recipes import recipe  # noqa: E402


def make_step(c, nets, device):
    r = recipe(c)
    optimizers = r.optimizers(c, nets)
    precision = choose_precision(device, c.amp)
    pools = {d: ImagePool(c.pool_size, i) for i, d in enumerate(r.pools)}
    runners = {k: torch.compile(v) if c.compile else v for k, v in nets.items()}
    fmt = torch.channels_last if c.channels_last else torch.contiguous_format

    def step(A, B):
        A, B = A.to(device, memory_format=fmt), B.to(device, memory_format=fmt)
        return r.step(runners, optimizers, pools, A, B, c, precision)

    return step, precision


def options(device: torch.device, with_compile: bool) -> list[tuple[str, dict]]:
    out = [("eager fp32 (reference)", {}), ("channels_last", {"channels_last": True})]
    if device.type == "cuda" or execution.native_cpu_bf16():
        out.append(("amp", {"amp": True}))
        out.append(("amp + channels_last", {"amp": True, "channels_last": True}))
    if with_compile:
        out.append(("compile", {"compile": True}))
    return out


def bench_family(family: str, steps: int, device, with_compile: bool, rows: list) -> None:
    base = resolve(family, {"data": "unused", "out": "unused"}, None)
    torch.manual_seed(0)
    init = recipe(base).networks(base)
    A, B = torch.rand(1, 3, 256, 256) * 2 - 1, torch.rand(1, 3, 256, 256) * 2 - 1
    ref_losses, ref_s = None, None
    for label, flags in options(device, with_compile):
        c = resolve(family, {"data": "unused", "out": "unused", **flags}, None)
        nets = {k: copy.deepcopy(v).to(device) for k, v in init.items()}
        if c.channels_last:
            nets = {k: v.to(memory_format=torch.channels_last) for k, v in nets.items()}
        step, _ = make_step(c, nets, device)
        torch.manual_seed(1)  # the same dropout masks and pool draws for every option
        start = time.perf_counter()
        first = {k: float(v) for k, v in step(A, B).items()}  # compiles here if asked
        first_s = time.perf_counter() - start
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            step(A, B)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        median = sorted(times)[len(times) // 2]
        if ref_losses is None:
            ref_losses, ref_s = first, median
        rel = max(abs(first[k] - ref_losses[k]) / max(abs(ref_losses[k]), 1e-8) for k in first)
        row = {
            "bench": "train",
            "family": family,
            "option": label,
            "step_s": round(median, 3),
            "steps_per_s": round(1 / median, 3),
            "speedup": round(ref_s / median, 2),
            "first_step_s": round(first_s, 1),
            "loss_max_rel_diff": float(f"{rel:.2e}"),
        }
        emit(row)
        rows.append(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", nargs="+", default=["pix2pix", "cyclegan"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and not execution.native_cpu_bf16():
        emit({"bench": "train", "note": "no native bf16 on this CPU: AMP options skipped"})
    rows: list[dict] = []
    for family in args.families:
        bench_family(family, args.steps, device, args.compile, rows)
    if not args.no_record:
        lines = [
            "| family | option | s/step | steps/s | × eager fp32 | first step s | loss rel. diff |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['family']} | {r['option']} | {r['step_s']} | {r['steps_per_s']} | "
            f"{r['speedup']} | {r['first_step_s']} | {r['loss_max_rel_diff']} |"
            for r in rows
        ]
        append_results("train", lines)


if __name__ == "__main__":
    main()
