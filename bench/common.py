"""Shared by the benchmarks: timing, fidelity, machine description, inputs, RESULTS.md rows."""

from __future__ import annotations

import datetime
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"


def cpu_kind(flags: set[str] | None = None) -> str:
    """The CPU kind by its flags (/proc/cpuinfo, as `lscpu` shows them), never by vendor:
    "AMX" (amx_bf16 + avx512_bf16), "AVX-512 BF16" (avx512_bf16, no AMX: e.g. AMD Zen 4),
    "AVX2" (neither), or "unknown" (no flags to read)."""
    if flags is None:
        flags = set()
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.exists():
            for line in cpuinfo.read_text().splitlines():
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    if "amx_bf16" in flags and "avx512_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX-512 BF16"
    return "AVX2" if "avx2" in flags else "unknown"


def machine() -> str:
    """CPU kind (by flags) and model (or the GPU), torch version, threads."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} · torch {torch.__version__}"
    model = "cpu"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    kind = cpu_kind()
    return f"{kind} CPU ({model}) × {torch.get_num_threads()} threads · torch {torch.__version__}"


def timed(fn: Callable[[], object], reps: int, warmup: int = 1) -> dict[str, float]:
    """Median and spread (min, max) of `reps` calls after `warmup` calls, in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def fidelity(y: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """PSNR in dB (signal range [-1, 1], peak-to-peak 2) and max abs error against `ref`."""
    err = (y.float() - ref.float()).abs()
    mse = float((err**2).mean())
    psnr = math.inf if mse == 0 else 10 * math.log10(4.0 / mse)
    return {
        "psnr_db": round(psnr, 1) if math.isfinite(psnr) else "inf",
        "max_abs_err": float(err.max()),
    }


def photo(w: int, h: int, seed: int = 0) -> Image.Image:
    """A photo-like RGB input: random colours upsampled, smooth enough to compress like a
    picture (pure noise would be every codec's worst case)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(h // 8, 1), max(w // 8, 1), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)


def emit(row: dict) -> None:
    print(json.dumps(row), flush=True)


def append_results(bench: str, lines: list[str]) -> None:
    """Append a section to bench/RESULTS.md: machine, date, command, then `lines`."""
    header = (
        f"\n## {bench} · {datetime.date.today()} · {machine()}\n\n"
        f"`{' '.join(['python', *sys.argv])}` ({platform.node() and 'this machine'})\n\n"
    )
    with open(RESULTS, "a") as f:
        f.write(header + "\n".join(lines) + "\n")
