"""How a generator's forward runs: backend, dtype, memory format, compilation. One plan per device.

The plans are the rows of one table, `PLANS` (name -> `PlanRow`: backend, dtype,
channels_last, whether compile applies, whether the precision follows the CPU); the backends
(how a prepared module becomes the callable that runs, and how it is called) follow the
contract in backend.py. Adding a backend is one new file (or folder) under `img2img/plans/`
plus one row here per plan name; `register` / `unregister` is the door for rows defined
elsewhere (tests, extensions). This module keeps the choosing (`auto_plan`) and the calls
every caller goes through (`make_plan`, `prepare`, `compiled`, `forward`, `without_compile`,
`torch_side`, `stats_graphs`).

Plans (all compute the same network; `bench/bench_inference.py` measures speed and fidelity
of each against the eager fp32 reference):

    eager          fp32, contiguous: the classic code's forward (the reference, and --official)
    channels_last  fp32, NHWC tensors: oneDNN / cuDNN pick faster convolution kernels
    bf16 / fp16    autocast to bfloat16 / float16, channels_last
    openvino       CPU only: the prepared module converted once to OpenVINO (openvino/),
                   dynamic batch/H/W, bf16 inference-precision hint where the CPU has native
                   bf16, f32 elsewhere. Its torch side (the fallback when openvino is missing
                   or a model does not convert, and the hooked / seeded eager forwards) runs
                   the torch plan this CPU would otherwise get (bf16 + channels_last on native
                   bf16, eager fp32 elsewhere): `torch_side(plan)`.
    openvino-f32   the same, pinned to f32 and the eager fp32 torch side on every CPU
    openvino-bf16  the same, pinned to the bf16 hint and the bf16 torch side
    onnxruntime    the prepared module exported to ONNX (img2img.export's tracer, dynamic
                   batch/H/W, cached on disk: onnxruntime/) and run by ONNX Runtime, fp32, CPU
                   (CUDA with onnxruntime-gpu); its torch side is eager fp32. Never chosen by
                   auto_plan (no rule says when it is faster: docs/export.md has the figures)
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
`IMG2IMG_PLAN` (eager, channels_last, bf16, fp16, openvino, openvino-f32, openvino-bf16,
onnxruntime) and `IMG2IMG_COMPILE=1` override it; `IMG2IMG_PLAN=eager` always means the plain
eager fp32 torch forward (the reference); `IMG2IMG_BF16=0` makes a native-bf16 CPU choose as an
AVX2 one does.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..errors import ConfigError
from . import int8
from .backend import TORCH, Backend, StatsGraphs, autocast
from .onnxruntime.backend import ONNXRUNTIME
from .openvino.backend import OPENVINO

log = logging.getLogger(__name__)

__all__ = [
    "EAGER",
    "PLANS",
    "ExecPlan",
    "PlanRow",
    "auto_plan",
    "autocast",
    "compiled",
    "forward",
    "make_plan",
    "native_cpu_bf16",
    "prepare",
    "register",
    "stats_graphs",
    "torch_side",
    "unregister",
    "without_compile",
]


@dataclass(frozen=True)
class PlanRow:
    """One execution plan: what `make_plan(name)` builds and which backend runs it.

    A non-torch row's dtype and channels_last are what its torch side runs (the module is
    prepared in that memory format, for the fallback and the hooked / seeded forwards)."""

    name: str
    backend: Backend
    dtype: torch.dtype = torch.float32  # autocast dtype (float32: none); a backend's precision
    channels_last: bool = False
    compiles: bool = True  # whether compile=True / IMG2IMG_COMPILE=1 applies (torch.compile)
    # The precision follows this CPU: bf16 + channels_last where native_cpu_bf16(), else fp32
    # contiguous (dtype / channels_last above are then ignored).
    cpu_precision: bool = False


PLANS: dict[str, PlanRow] = {}


def register(row: PlanRow) -> PlanRow:
    """Add `row` to the plan table (ConfigError if its name is taken); returns it."""
    if row.name in PLANS:
        raise ConfigError(f"execution plan {row.name!r} is already registered")
    PLANS[row.name] = row
    return row


def unregister(name: str) -> None:
    """Remove plan `name` from the table (a test's toy backend, an extension unloading)."""
    PLANS.pop(name, None)


for _builtin in (
    PlanRow("eager", TORCH),  # the reference: the classic code's forward
    PlanRow("channels_last", TORCH, channels_last=True),
    PlanRow("bf16", TORCH, torch.bfloat16, channels_last=True),
    PlanRow("fp16", TORCH, torch.float16, channels_last=True),
    PlanRow("openvino", OPENVINO, compiles=False, cpu_precision=True),
    PlanRow("openvino-f32", OPENVINO, compiles=False),  # exact parity on every CPU
    PlanRow("openvino-bf16", OPENVINO, torch.bfloat16, channels_last=True, compiles=False),
    PlanRow("onnxruntime", ONNXRUNTIME, compiles=False),  # fp32, eager fp32 torch side
    PlanRow("openvino-int8", int8.OPENVINO_INT8, compiles=False, cpu_precision=True),  # int8.py
):
    register(_builtin)


@dataclass(frozen=True)
class ExecPlan:
    name: str  # a key of PLANS: eager | channels_last | bf16 | fp16 | openvino | ...
    dtype: torch.dtype = torch.float32  # autocast dtype; float32 means no autocast
    # (a converted backend's: its inference precision, and its torch side's autocast dtype)
    channels_last: bool = False
    compile: bool = False
    # Batch jobs: a backend with a throughput mode runs a batch as parallel requests (OpenVINO's
    # THROUGHPUT hint, plans/openvino/runner.py); others ignore it. translate sets it.
    throughput: bool = False

    def describe(self) -> str:
        return self.name + (" + compile" if self.compile else "")

    @property
    def backend(self) -> Backend:
        return _row(self.name).backend

    @property
    def openvino(self) -> bool:
        return self.backend is OPENVINO


def _row(name: str) -> PlanRow:
    if name not in PLANS:
        raise ConfigError(f"unknown execution plan {name!r}; known: {sorted(PLANS)}")
    return PLANS[name]


def make_plan(name: str, compile: bool = False) -> ExecPlan:
    row = _row(name)
    dtype, channels_last = row.dtype, row.channels_last
    if row.cpu_precision:  # e.g. "openvino": -f32 / -bf16 pin it (tests pin what they check)
        bf16 = native_cpu_bf16()
        dtype, channels_last = (torch.bfloat16 if bf16 else torch.float32), bf16
    return ExecPlan(name, dtype, channels_last=channels_last, compile=compile and row.compiles)


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
        elif device.type == "cpu" and OPENVINO.available():
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
    """The callable that runs the plan's forwards, built by its backend: the module itself,
    torch.compile(module) when the plan asks for it, or a converted runner (an
    OpenVINORunner for the openvino plans); the module when the backend is not available,
    does not run on `device`, or the model does not convert (the backend logs why)."""
    backend = plan.backend
    if backend is TORCH:
        return backend.convert(model, plan, device)
    if device is not None and backend.devices is not None and device.type not in backend.devices:
        where = "/".join(backend.devices).upper()
        log.warning("the %s plan runs on the %s only: using torch on %s", plan.name, where, device)
        return model
    if not backend.available():
        return model
    runner = backend.convert(model, plan, device or torch.device("cpu"))
    return model if runner is None else runner


def forward(runner, x: torch.Tensor, plan: ExecPlan, device: torch.device):
    """(B, 3, H, W) in [-1, 1] -> float32 output on the CPU, under the plan. A torch module
    (the prepared model, its compiled form, a backend's fallback) runs with torch; any other
    runner through the plan's backend."""
    if isinstance(runner, nn.Module):
        return TORCH.forward(runner, x, plan, device)
    return plan.backend.forward(runner, x, plan, device)


def without_compile(plan: ExecPlan) -> ExecPlan:
    """The plan of an eager torch forward of the same model (hooked or seeded forwards)."""
    return replace(plan, compile=False) if plan.backend.hooks_work else torch_side(plan)


def torch_side(plan: ExecPlan) -> ExecPlan:
    """The torch plan a converted plan's module runs under (openvino: bf16 + channels_last on
    native bf16 CPUs, eager fp32 elsewhere); the plan itself for torch plans."""
    name = plan.backend.torch_side(plan)
    return plan if name is None else make_plan(name)


def stats_graphs(runner, plan: ExecPlan) -> StatsGraphs | None:
    """What runs normstats' fixed-statistics graphs on `runner`, or None: torch hooks on the
    module (torch plans, backends without such graphs, a model that did not convert)."""
    if isinstance(runner, nn.Module):
        return None
    return plan.backend.stats_graphs(runner)
