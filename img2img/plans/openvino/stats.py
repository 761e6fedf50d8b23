"""normstats' shared-statistics forwards as OpenVINO graphs: tiles and video keep OpenVINO's
speed with fixed statistics.

`media.normstats.StatsGraph` is the generator with its stat layers' statistics as tensors in
and out (forward(x, *fixed) -> (y, *recorded)); here it is traced once per kind (fixed,
fixed + record; normstats records alone with torch hooks, see its docstring) into a companion
graph of the generator's OpenVINORunner (`OpenVINORunner.variant`), x dynamic in batch,
height and width, every statistic (C_i,) static, and cached on disk like the generator
(cache.py, told apart by the graph's tag).
"""

from __future__ import annotations

import torch
from torch import nn

from . import runner as openvino_runner


def graph_of(stats_graph: nn.Module) -> openvino_runner.Graph:
    """What openvino_runner converts for `stats_graph` (a normstats.StatsGraph)."""
    side = openvino_runner.example_side(stats_graph.model)
    examples, shapes = stats_graph.examples(side)
    return openvino_runner.Graph(
        stats_graph, examples, shapes, stats_graph.tag, source=stats_graph.model
    )


class OpenVINOStatsGraphs:
    """The `plans.backend.StatsGraphs` of one OpenVINORunner."""

    def __init__(self, runner: openvino_runner.OpenVINORunner) -> None:
        self.runner = runner

    def run(self, graph: nn.Module, inputs: list[torch.Tensor]) -> list[torch.Tensor] | None:
        """`graph`'s outputs, converted on first use of its tag; None if it does not convert."""
        compiled = self.runner.variant(graph.tag, lambda: graph_of(graph))
        return None if compiled is None else compiled.infer(inputs)
