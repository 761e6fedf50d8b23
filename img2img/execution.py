"""How a generator's forward runs: dtype, memory format, compilation. One plan per device.

Plans (all compute the same network; `bench/bench_inference.py` measures speed and fidelity
of each against the eager fp32 reference):

    eager          fp32, contiguous: the classic code's forward (the reference, and --official)
    channels_last  fp32, NHWC tensors: oneDNN / cuDNN pick faster convolution kernels
    bf16 / fp16    autocast to bfloat16 / float16, channels_last
    + compile      torch.compile on top (`compile=True`, opt-in): the 256x256 batch-1 shape
                   is compiled when a model loads; every other shape (aspect ratio, batch)
                   compiles on first use, 10-70 s on a CPU, so it is never the default

`auto_plan(device)` picks the fastest faithful plan: CUDA: fp16/bf16 autocast + channels_last
+ cuDNN autotuning; CPU with native bf16 (AVX-512 BF16 / AMX): bf16 + channels_last; other
CPUs (AVX2): eager fp32, because there bf16 is emulated, channels_last picks slower fp32
kernels, and compile recompiles for every new input shape (the measured figures are in
bench/RESULTS.md and the README).
`IMG2IMG_PLAN` (eager, channels_last, bf16, fp16) and `IMG2IMG_COMPILE=1` override it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace

import torch
from torch import nn

from .errors import ConfigError

_DTYPES = {
    "eager": torch.float32,
    "channels_last": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


@dataclass(frozen=True)
class ExecPlan:
    name: str  # eager | channels_last | bf16 | fp16
    dtype: torch.dtype = torch.float32  # autocast dtype; float32 means no autocast
    channels_last: bool = False
    compile: bool = False

    def describe(self) -> str:
        return self.name + (" + compile" if self.compile else "")


def make_plan(name: str, compile: bool = False) -> ExecPlan:
    if name not in _DTYPES:
        raise ConfigError(f"unknown execution plan {name!r}; known: {sorted(_DTYPES)}")
    return ExecPlan(name, _DTYPES[name], channels_last=name != "eager", compile=compile)


EAGER = make_plan("eager")


def native_cpu_bf16() -> bool:
    """True when oneDNN runs bf16 natively here (AVX-512 BF16 or AMX), not emulated."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def auto_plan(device: torch.device) -> ExecPlan:
    """The fastest faithful plan for `device` (environment overrides applied)."""
    name = os.environ.get("IMG2IMG_PLAN", "").strip()
    if not name:
        if device.type == "cuda":
            name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        elif device.type == "cpu":
            name = "bf16" if native_cpu_bf16() else "eager"
        else:
            name = "eager"
    return make_plan(name, compile=os.environ.get("IMG2IMG_COMPILE", "") == "1")


def prepare(model: nn.Module, plan: ExecPlan, device: torch.device) -> nn.Module:
    """Move `model` to `device` in the plan's memory format (weights stay fp32)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # autotune conv algorithms per input shape
    model = model.to(device)
    if plan.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def compiled(model: nn.Module, plan: ExecPlan) -> nn.Module:
    """The callable that runs forwards: torch.compile'd when the plan asks for it."""
    return torch.compile(model, dynamic=False) if plan.compile else model


def autocast(plan: ExecPlan, device: torch.device):
    if plan.dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=plan.dtype)


def forward(runner: nn.Module, x: torch.Tensor, plan: ExecPlan, device: torch.device):
    """(B, 3, H, W) in [-1, 1] -> float32 output on the CPU, under the plan."""
    fmt = torch.channels_last if plan.channels_last else torch.contiguous_format
    x = x.to(device).contiguous(memory_format=fmt)
    with torch.inference_mode(), autocast(plan, device):
        y = runner(x)
    return y.float().contiguous().cpu()


def without_compile(plan: ExecPlan) -> ExecPlan:
    return replace(plan, compile=False)
