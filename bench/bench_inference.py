"""Inference speed and fidelity of every execution plan against the eager fp32 reference.

Per architecture (U-Net-256, ResNet-9, HugGAN U-Net; published width ngf 64, random init)
and input size, for batch 1 (and batch 8 at 256²): latency median and spread of each plan
(execution.py) and, in the same run, of the reference (a plain eager fp32 forward, as the
classic code runs it); the speed-up over the reference; PSNR and max abs error of each
plan's output against the reference output. Emulated bf16 (a CPU without native bf16) is
skipped and says so. Prints JSON lines; appends a table to bench/RESULTS.md.

    .venv/bin/python bench/bench_inference.py [--sizes 256 512 1024] [--batch8] [--compile]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from bench.common import append_results, emit, fidelity, timed  # noqa: E402
from img2img import execution  # noqa: E402
from img2img.models import HugGANUNetGenerator, ResnetGenerator, UNetGenerator  # noqa: E402
from img2img.models.norm import set_image_stats  # noqa: E402

NETS = {
    "unet_256": lambda: UNetGenerator(),
    "resnet_9": lambda: ResnetGenerator(),
    "huggan_unet": lambda: HugGANUNetGenerator(),
}


def plans(device: torch.device, with_compile: bool) -> list[execution.ExecPlan]:
    names = ["channels_last"]
    if device.type == "cuda":
        names += ["fp16", "bf16"] if torch.cuda.is_bf16_supported() else ["fp16"]
    elif execution.native_cpu_bf16():
        names += ["bf16"]
    out = [execution.make_plan(n) for n in names]
    if with_compile:
        out += [execution.make_plan(n, compile=True) for n in names]
    return out


def reps_for(size: int, batch: int, device: torch.device) -> int:
    if device.type == "cuda":
        return 20
    return max(2, 6 - (size * size * batch) // (256 * 256 * 2))


def bench_case(name, model, size, batch, device, plan_list, rows) -> None:
    torch.manual_seed(0)
    x = torch.rand(batch, 3, size, size) * 2 - 1
    ref_model = execution.prepare(model, execution.EAGER, device)
    reps = reps_for(size, batch, device)
    ref_out = execution.forward(ref_model, x, execution.EAGER, device)
    ref = timed(lambda: execution.forward(ref_model, x, execution.EAGER, device), reps)
    base = {"bench": "inference", "net": name, "size": size, "batch": batch}
    emit({**base, "plan": "reference (eager fp32)", **ref, "speedup": 1.0})
    rows.append((name, size, batch, "reference (eager fp32)", ref["median_s"], ref, 1.0, None))
    for plan in plan_list:
        m = execution.prepare(model, plan, device)
        runner = execution.compiled(m, plan)
        start = time.perf_counter()
        out = execution.forward(runner, x, plan, device)  # first call (compiles if asked)
        first_s = time.perf_counter() - start
        t = timed(lambda: execution.forward(runner, x, plan, device), reps)  # noqa: B023
        fid = fidelity(out, ref_out)
        speed = ref["median_s"] / t["median_s"]
        emit(
            {
                **base,
                "plan": plan.describe(),
                **t,
                "first_call_s": round(first_s, 3),
                "speedup": round(speed, 2),
                **fid,
            }
        )
        rows.append((name, size, batch, plan.describe(), t["median_s"], t, speed, fid))
        model = model.to(memory_format=torch.contiguous_format)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--batch8", action="store_true", help="also batch 8 at 256²")
    parser.add_argument("--compile", action="store_true", help="also the torch.compile plans")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and not execution.native_cpu_bf16():
        emit(
            {
                "bench": "inference",
                "note": "no native bf16 on this CPU (AVX2): the bf16 "
                "plan is emulated and skipped; auto plan = channels_last fp32",
            }
        )
    rows = []
    plan_list = plans(device, args.compile)
    for name in args.nets:
        model = NETS[name]().eval()
        set_image_stats(model, True)  # pix2pix test semantics (no effect without BatchNorm)
        cases = [(s, 1) for s in args.sizes] + ([(256, 8)] if args.batch8 else [])
        for size, batch in cases:
            bench_case(name, model, size, batch, device, plan_list, rows)
    if not args.no_record:
        lines = [
            "| net | size | batch | plan | median s | spread s | × reference | PSNR dB | "
            "max abs err |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, size, batch, plan, med, t, speed, fid in rows:
            psnr = "ref" if fid is None else fid["psnr_db"]
            err = "" if fid is None else f"{fid['max_abs_err']:.1e}"
            lines.append(
                f"| {name} | {size}² | {batch} | {plan} | {med:.3f} | "
                f"{t['min_s']:.3f}–{t['max_s']:.3f} | {speed:.2f} | {psnr} | {err} |"
            )
        append_results("inference", lines)


if __name__ == "__main__":
    main()
