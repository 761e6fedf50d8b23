"""The OpenVINO backend object the plan table points at (`execution.PLANS`: openvino,
openvino-f32, openvino-bf16).

CPU only; `convert` is runner.convert with the plan's precision (the bf16 hint when the plan's
dtype is bfloat16, f32 otherwise); hooks do not act on a converted graph, so hooked and seeded
forwards, and models that do not convert, run the torch module under the torch plan of the
same precision (bf16 + channels_last, or eager fp32); normstats' shared-statistics forwards run
as OpenVINO graphs of their own (stats.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..backend import Backend
from . import runner as openvino_runner
from .stats import OpenVINOStatsGraphs

if TYPE_CHECKING:
    from ..execution import ExecPlan


class OpenVINOBackend(Backend):
    name = "openvino"
    devices = ("cpu",)
    hooks_work = False

    def available(self) -> bool:
        return openvino_runner.available()

    def convert(self, model: nn.Module, plan: ExecPlan, device: torch.device):
        bf16 = plan.dtype == torch.bfloat16
        return openvino_runner.convert(model, native_bf16=bf16, throughput=plan.throughput)

    def stats_graphs(self, runner) -> OpenVINOStatsGraphs | None:
        if not isinstance(runner, openvino_runner.OpenVINORunner):
            return None
        return OpenVINOStatsGraphs(runner)


OPENVINO = OpenVINOBackend()
