"""What an execution backend is: the one interface every plan's forward goes through.

A backend turns a prepared generator (eval, no grad, on the device, in the plan's memory
format: `execution.prepare`) into the callable that runs the plan's forwards, and runs them.
Torch itself is one (`TORCH`: the module, or torch.compile of it); every other lives in its
own file or folder under `img2img/plans/` (`openvino/backend.py`) and is an object with the
same methods, as diffusers' OnnxRuntimeModel stands in for a torch model with the same call.

Contract (a subclass of `Backend` overrides what differs from the defaults):
    name                          a short word, for messages ("openvino")
    devices                       device types it runs on (None: every device). On another
                                  device execution.compiled logs one line and keeps torch
    available() -> bool           whether it can run here (its package imports); False: its
                                  plans run the torch module (auto_plan does not choose them)
    convert(model, plan, device)  the runner built once per prepared model, or None when the
                                  model does not convert (log one line why; the torch module
                                  then runs under the plan's dtype and memory format). A
                                  runner is any callable that is not an nn.Module: an
                                  nn.Module returned by any backend is run as a torch module
    forward(runner, x, plan, device) -> Tensor
                                  one forward: x (B, 3, H, W) in [-1, 1], any device and
                                  dtype; returns float32 on the CPU. Default: runner(x as
                                  float32 on the CPU)
    hooks_work                    whether forward hooks and dropout act on its runner. False
                                  (a converted graph): hooked forwards (normstats), seeded
                                  variations and fallbacks run the torch module under
                                  `torch_side(plan)` instead
    torch_side(plan) -> str|None  the torch plan name those forwards run under (None: the
                                  plan itself, without compile). Default: the torch plan of
                                  the plan's dtype (bf16, fp16, else eager)
    stats_graphs(runner)          a `StatsGraphs` that runs normstats' fixed-statistics graphs
                                  on this runner, or None (default): normstats then records
                                  and applies statistics with torch hooks on the module

Adding a backend: a subclass in a new file under `img2img/plans/` (or a folder, with its own
cache and helpers), and one row per plan name in `execution.PLANS` (its dtype, memory format,
whether compile applies, the backend). Everything else (the Translator, normstats, tiles,
video, IMG2IMG_PLAN, the error listing the known plans, tests/test_plans.py, which builds and
runs every row) reads the table. `execution.auto_plan` chooses a new backend only once a rule
that says when it is faster is added there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from .execution import ExecPlan

Runner = Callable[[torch.Tensor], torch.Tensor]
# The default torch side: the torch plan of the same compute dtype (its memory format too:
# a row's channels_last must be its torch side's, the module being prepared for the row).
_TORCH_PLAN_OF = {torch.bfloat16: "bf16", torch.float16: "fp16"}


class StatsGraphs(Protocol):
    """normstats' statistics graphs run by a backend, for one runner (its model and precision).

    `graph` is a `media.normstats.StatsGraph`: an nn.Module, forward(x, *fixed) -> (y,
    *recorded), whose `tag` names which graph it is (fixed / record) and whose
    `examples(side)` gives example inputs and their shapes (-1: dynamic) to trace it with.
    """

    def run(self, graph: nn.Module, inputs: list[torch.Tensor]) -> list[torch.Tensor] | None:
        """All outputs of `graph` on `inputs`, as float32 CPU tensors; None when the graph
        does not convert (logged once; normstats then uses torch hooks)."""
        ...


class Backend:
    """Defaults for a backend that converts the model into its own runner (see the module
    docstring for the contract)."""

    name: str = "backend"
    devices: tuple[str, ...] | None = None
    hooks_work: bool = False

    def available(self) -> bool:
        return True

    def convert(self, model: nn.Module, plan: ExecPlan, device: torch.device) -> Runner | None:
        raise NotImplementedError

    def forward(
        self, runner: Runner, x: torch.Tensor, plan: ExecPlan, device: torch.device
    ) -> torch.Tensor:
        return runner(x.float().cpu())

    def torch_side(self, plan: ExecPlan) -> str | None:
        return _TORCH_PLAN_OF.get(plan.dtype, "eager")

    def stats_graphs(self, runner: Runner) -> StatsGraphs | None:
        return None

    def __repr__(self) -> str:
        return f"<{self.name} backend>"


def autocast(plan: ExecPlan, device: torch.device):
    if plan.dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=plan.dtype)


class TorchBackend(Backend):
    """The module itself under autocast and the plan's memory format; torch.compile'd when
    the plan asks for it."""

    name = "torch"
    hooks_work = True

    def convert(self, model: nn.Module, plan: ExecPlan, device: torch.device) -> nn.Module:
        return torch.compile(model, dynamic=False) if plan.compile else model

    def forward(
        self, runner: Runner, x: torch.Tensor, plan: ExecPlan, device: torch.device
    ) -> torch.Tensor:
        fmt = torch.channels_last if plan.channels_last else torch.contiguous_format
        x = x.to(device).contiguous(memory_format=fmt)
        with torch.inference_mode(), autocast(plan, device):
            y = runner(x)
        return y.float().contiguous().cpu()

    def torch_side(self, plan: ExecPlan) -> str | None:
        return None


TORCH = TorchBackend()
