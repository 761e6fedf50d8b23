"""How a generator's forward runs: backend, dtype, memory format, compilation. One plan per device.

Plans (all compute the same network; `bench/bench_inference.py` measures speed and fidelity
of each against the eager fp32 reference):

    eager          fp32, contiguous: the classic code's forward (the reference, and --official)
    channels_last  fp32, NHWC tensors: oneDNN / cuDNN pick faster convolution kernels
    bf16 / fp16    autocast to bfloat16 / float16, channels_last
    openvino       CPU only: the prepared module converted once to OpenVINO (openvino/runner.py),
                   dynamic batch/H/W, bf16 inference-precision hint where the CPU has native
                   bf16, f32 elsewhere. Its torch side (the fallback when openvino is missing
                   or a model does not convert, and the hooked / seeded eager forwards) runs
                   the torch plan this CPU would otherwise get (bf16 + channels_last on native
                   bf16, eager fp32 elsewhere): `torch_side(plan)`.
    openvino-f32   the same, pinned to f32 and the eager fp32 torch side on every CPU
    openvino-bf16  the same, pinned to the bf16 hint and the bf16 torch side
    + compile      torch.compile on top (`compile=True`, opt-in): the 256x256 batch-1 shape
                   is compiled when a model loads; every other shape (aspect ratio, batch)
                   compiles on first use, 10-70 s on a CPU, so it is never the default

`auto_plan(device)` picks the fastest faithful plan:
- CUDA: fp16/bf16 autocast + channels_last + cuDNN autotuning;
- CPU with `openvino` importable: openvino. Rule, from the paired figures in bench/RESULTS.md
  (2026-12-02): on AVX2 (AMD EPYC, 2 threads) OpenVINO f32 was 1.7-4.1x eager fp32 for both
  U-Nets and 1.1-1.4x for ResNet-9 at 256² and 512², at >= 79.8 dB 8-bit PSNR (at most one
  level off) on trained weights, never slower; on AVX-512 BF16 / AMX CPUs the issue measured
  the bf16 hint at 8-10x on ResNet-9 at 55 dB on trained weights (not measurable on this
  project's AVX2 machine, so taken from the issue);
- CPU without openvino: bf16 + channels_last with native bf16, else eager fp32 (there bf16 is
  emulated, channels_last picks slower fp32 kernels, and compile recompiles for every shape).
`IMG2IMG_PLAN` (eager, channels_last, bf16, fp16, openvino, openvino-f32, openvino-bf16) and
`IMG2IMG_COMPILE=1` override it; `IMG2IMG_PLAN=eager` always means the plain eager fp32 torch
forward (the reference); `IMG2IMG_BF16=0` makes a native-bf16 CPU choose as an AVX2 one does.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..errors import ConfigError
from .openvino import runner as openvino_plan

log = logging.getLogger(__name__)

_DTYPES = {
    "eager": torch.float32,
    "channels_last": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
    "openvino": torch.float32,  # the compute dtype is decided per CPU in make_plan
    "openvino-f32": torch.float32,  # OpenVINO pinned to f32 (exact parity on every CPU)
    "openvino-bf16": torch.bfloat16,  # OpenVINO pinned to the bf16 hint (native bf16 CPUs)
}


@dataclass(frozen=True)
class ExecPlan:
    name: str  # eager | channels_last | bf16 | fp16 | openvino | openvino-f32 | openvino-bf16
    dtype: torch.dtype = torch.float32  # autocast dtype; float32 means no autocast
    # (openvino: the inference precision, and its torch side's autocast dtype)
    channels_last: bool = False
    compile: bool = False

    def describe(self) -> str:
        return self.name + (" + compile" if self.compile else "")

    @property
    def openvino(self) -> bool:
        return self.name.startswith("openvino")


def make_plan(name: str, compile: bool = False) -> ExecPlan:
    if name not in _DTYPES:
        raise ConfigError(f"unknown execution plan {name!r}; known: {sorted(_DTYPES)}")
    if name.startswith("openvino"):  # torch.compile does not apply
        # "openvino": the precision follows the CPU; -f32 / -bf16 pin it (tests pin what they check)
        bf16 = native_cpu_bf16() if name == "openvino" else _DTYPES[name] == torch.bfloat16
        dtype = torch.bfloat16 if bf16 else torch.float32
        return ExecPlan(name, dtype, channels_last=bf16, compile=False)
    return ExecPlan(name, _DTYPES[name], channels_last=name != "eager", compile=compile)


EAGER = make_plan("eager")


def native_cpu_bf16() -> bool:
    """True when oneDNN runs bf16 natively here (AVX-512 BF16 or AMX), not emulated.

    `IMG2IMG_BF16=0` answers False on any CPU: every automatic choice (the auto plan, the
    openvino plan's precision and torch side, train.py --amp) then takes the f32 path that
    AVX2-only CPUs take."""
    if os.environ.get("IMG2IMG_BF16", "").strip() == "0":
        return False
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
        elif device.type == "cpu" and openvino_plan.available():
            name = "openvino"
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


def compiled(model: nn.Module, plan: ExecPlan, device: torch.device | None = None):
    """The callable that runs forwards: an OpenVINORunner for the openvino plan on a CPU
    (the module itself if it does not convert), torch.compile'd when the plan asks for it."""
    if plan.openvino:
        if device is not None and device.type != "cpu":
            log.warning("the openvino plan runs on the CPU only: using torch on %s", device)
            return model
        runner = openvino_plan.convert(model, native_bf16=plan.dtype == torch.bfloat16)
        return model if runner is None else runner
    return torch.compile(model, dynamic=False) if plan.compile else model


def autocast(plan: ExecPlan, device: torch.device):
    if plan.dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=plan.dtype)


def forward(runner, x: torch.Tensor, plan: ExecPlan, device: torch.device):
    """(B, 3, H, W) in [-1, 1] -> float32 output on the CPU, under the plan."""
    if isinstance(runner, openvino_plan.OpenVINORunner):
        return runner(x.float().cpu())
    fmt = torch.channels_last if plan.channels_last else torch.contiguous_format
    x = x.to(device).contiguous(memory_format=fmt)
    with torch.inference_mode(), autocast(plan, device):
        y = runner(x)
    return y.float().contiguous().cpu()


def without_compile(plan: ExecPlan) -> ExecPlan:
    """The plan of an eager torch forward of the same model (hooked or seeded forwards)."""
    return torch_side(plan) if plan.openvino else replace(plan, compile=False)


def torch_side(plan: ExecPlan) -> ExecPlan:
    """The torch plan an openvino plan's module runs under: bf16 + channels_last on native
    bf16 CPUs, eager fp32 elsewhere (the plan itself for torch plans)."""
    if not plan.openvino:
        return plan
    return make_plan("bf16") if plan.dtype == torch.bfloat16 else EAGER
