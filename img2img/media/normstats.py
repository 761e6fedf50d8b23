"""Normalisation statistics shared by many forwards: recorded once, then held fixed.

InstanceNorm, and our BatchNorm2d in image-statistics mode (the pix2pix test semantics),
normalise every input with its own per-channel mean and variance. When one picture is cut into
windows, or a clip into frames, each piece then gets its own statistics and so its own tone:
seams between windows, flicker between frames. This module records the statistics of each
such layer's input over some forwards (pooled: the mean and variance of everything seen) and
runs later forwards with those statistics instead of each input's own.

Layers concerned (`stat_layers`): nn.InstanceNorm2d that normalises with its input's
statistics (affine or not) and models.norm.BatchNorm2d with `image_stats` on, i.e. every norm
of every registry architecture. A BatchNorm that uses its running statistics already treats
all pieces alike and is left alone.

Under a plan whose backend converts the model into a graph of its own (openvino), hooks do
not act on that graph, so StatsRunner hands the backend a StatsGraph instead: the same hooks
in a traceable module whose extra inputs are the fixed statistics and whose extra outputs are
the recorded ones (one graph per use: fixed, fixed + record), which the backend converts once
(`execution.stats_graphs`, the contract in plans/backend.py; OpenVINO's in
plans/openvino/stats.py), so tiles and video keep its speed with shared statistics. A backend
without such graphs (and every torch plan) gets the hooks on the torch module. Recording
alone (a tiled photo's statistics pass, a clip's first batch: one forward per job) always runs
the torch module with hooks: a converted graph keeps its largest intermediate buffers for
good, and OpenVINO's record-only graph kept 1.2 GB for eight 256x192 ResNet-9 frames, which
doubled the peak memory of tiles and video (bench/bench_memory.py; figures in
bench/RESULTS.md).

Mechanism: forward hooks registered for the duration of a `with use_stats(...)` block. They
act only in the context (thread) that entered the block (a ContextVar), so a Translator's
cached model stays usable by other threads meanwhile. Hooked forwards run eagerly (never the
compiled runner: hooks would force recompilation).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from ..models.norm import BatchNorm2d
from ..plans import execution
from ..plans.backend import StatsGraphs

# The state of the innermost `use_stats` block of this context; hooks of other blocks idle.
_ACTIVE: contextvars.ContextVar[object | None] = contextvars.ContextVar("normstats", default=None)


@dataclass
class ChannelStats:
    """Pooled per-channel statistics of everything a layer saw: count, mean, sum of squares."""

    count: int
    mean: torch.Tensor  # (C,) float64, on the CPU
    m2: torch.Tensor  # (C,) float64: sum of squared deviations from the mean

    @classmethod
    def of(cls, x: torch.Tensor) -> ChannelStats:
        """Statistics of a (B, C, H, W) activation over batch and space."""
        var, mean = torch.var_mean(x.float(), dim=(0, 2, 3), correction=0)
        n = x.shape[0] * x.shape[2] * x.shape[3]
        return cls(n, mean.double().cpu(), var.double().cpu() * n)

    def merged(self, other: ChannelStats) -> ChannelStats:
        """Both sets pooled (Chan et al.'s parallel update: exact, no catastrophic loss)."""
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
        return ChannelStats(n, mean, m2)

    @property
    def var(self) -> torch.Tensor:
        """Biased variance, as instance and batch normalisation use it."""
        return self.m2 / self.count


class NormStats(dict[str, ChannelStats]):
    """Layer name (as in `model.named_modules()`) -> the statistics of that layer's input."""

    def add(self, name: str, x: torch.Tensor) -> None:
        new = ChannelStats.of(x)
        self[name] = self[name].merged(new) if name in self else new

    def blended(self, other: NormStats, momentum: float) -> NormStats:
        """Exponential running mean: (1 - momentum) * self + momentum * other, per layer."""
        out = NormStats()
        for name, s in self.items():
            o = other[name]
            mean = (1 - momentum) * s.mean + momentum * o.mean
            var = (1 - momentum) * s.var + momentum * o.var
            out[name] = ChannelStats(1, mean, var)  # count 1: m2 is the variance itself
        return out


def stat_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The norm layers of `model` that normalise each input with its own statistics."""
    found = {}
    for name, m in model.named_modules():
        if isinstance(m, BatchNorm2d) and m.image_stats:
            found[name] = m
        elif isinstance(m, nn.InstanceNorm2d) and (m.training or not m.track_running_stats):
            found[name] = m
    return found


def _normalise(layer: nn.Module, x: torch.Tensor, stats: ChannelStats) -> torch.Tensor:
    """What `layer` computes when its input's statistics are `stats`: (B, C, H, W)."""
    mean, var = stats.mean.to(x.device, torch.float32), stats.var.to(x.device, torch.float32)
    return _normalise_with(layer, x, mean, var)


def _normalise_with(
    layer: nn.Module, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor
) -> torch.Tensor:
    """`_normalise` with (C,) float32 mean and biased variance tensors (traceable)."""
    # One per-channel scale and shift, computed on the (C,) vectors: a converted graph fuses
    # x * a + b into the convolution before it, so fixed statistics cost no activation-sized
    # intermediate (the (x - mean) * rsqrt(var) * weight + bias chain cost one per layer).
    scale = torch.rsqrt(var + layer.eps)
    if getattr(layer, "weight", None) is not None:  # affine: this layer's own parameters
        scale = scale * layer.weight.float()
        shift = layer.bias.float() - mean * scale
    else:
        shift = -mean * scale
    shape = (1, -1, 1, 1)
    return (x.float() * scale.view(shape) + shift.view(shape)).to(x.dtype)


@dataclass
class _Block:
    fixed: NormStats | None
    recorded: NormStats | None


def _hook(block: _Block, name: str):
    def hook(layer: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor | None:
        if _ACTIVE.get() is not block:
            return None  # another thread's forward, or outside the block
        x = args[0]
        if block.recorded is not None:
            block.recorded.add(name, x)
        return None if block.fixed is None else _normalise(layer, x, block.fixed[name])

    return hook


@contextlib.contextmanager
def use_stats(
    model: nn.Module, fixed: NormStats | None = None, record: bool = False
) -> Iterator[NormStats | None]:
    """Within the block, forwards of `model` in this thread normalise with `fixed` (None: each
    input's own statistics, as usual) and, with `record`, pool the statistics every such layer
    sees into the NormStats yielded (None without `record`).

    Recording while fixed gives the statistics each layer's input has under the fixed
    statistics upstream: what a running mean over video frames needs, in the same forward.
    """
    layers = stat_layers(model)
    if fixed is not None and set(fixed) != set(layers):
        raise ConfigError(
            "recorded normalisation statistics do not fit this model "
            f"({len(fixed)} layers recorded, the model has {len(layers)})"
        )
    block = _Block(fixed, NormStats() if record else None)
    handles = [m.register_forward_hook(_hook(block, name)) for name, m in layers.items()]
    token = _ACTIVE.set(block)
    try:
        yield block.recorded
    finally:
        _ACTIVE.reset(token)
        for h in handles:
            h.remove()


class StatsGraph(nn.Module):
    """`model` with its stat layers' statistics as tensors in and out, for a backend's tracer.

    forward(x, *fixed) -> (y, *recorded). `fixed` (with `fixed=True`): mean_1, var_1, ...,
    mean_n, var_n, (C_i,) float32, in `stat_layers` order; every stat layer normalises with
    them, as under `use_stats(fixed=...)`. `recorded` (with `record=True`): mean_i, var_i and
    count_i (a float32 scalar: batch x height x width) of each stat layer's input.
    """

    def __init__(self, model: nn.Module, fixed: bool, record: bool) -> None:
        super().__init__()
        self.model, self.fixed, self.record = model, fixed, record
        self.layers = list(stat_layers(model).items())

    @property
    def tag(self) -> str:
        """Which graph this is (a backend keeps one converted graph per tag and model)."""
        return f"stats-fixed{int(self.fixed)}-record{int(self.record)}"

    def forward(self, x: torch.Tensor, *fixed: torch.Tensor) -> tuple[torch.Tensor, ...]:
        recorded: list[torch.Tensor] = []

        def hook_for(i: int):
            def hook(layer: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor | None:
                x = args[0]
                if self.record:
                    var, mean = torch.var_mean(x.float(), dim=(0, 2, 3), correction=0)
                    count = torch.ones_like(x[:, :1]).sum()  # traced, so dynamic in the shape
                    recorded.extend((mean, var, count))
                if not self.fixed:
                    return None
                return _normalise_with(layer, x, fixed[2 * i], fixed[2 * i + 1])

            return hook

        handles = [m.register_forward_hook(hook_for(i)) for i, (_, m) in enumerate(self.layers)]
        try:
            y = self.model(x)
        finally:
            for h in handles:
                h.remove()
        return (y, *recorded)

    def examples(self, side: int) -> tuple[tuple[torch.Tensor, ...], list[list[int]]]:
        """Example inputs to trace with at `side`², and their shapes: x dynamic (-1) in batch,
        height and width, every statistic (C_i,) static."""
        x = torch.zeros(1, 3, side, side)
        stats, shapes = [], [[-1, 3, -1, -1]]
        if self.fixed:
            for _, m in self.layers:
                c = m.num_features
                stats += [torch.zeros(c), torch.ones(c)]
                shapes += [[c], [c]]
        return (x, *stats), shapes


def _run_graph(
    graphs: StatsGraphs,
    model: nn.Module,
    x: torch.Tensor,
    fixed: NormStats | None,
    record: bool,
) -> tuple[torch.Tensor, NormStats | None] | None:
    """One batch through the backend's statistics graph; None if that graph does not convert."""
    names = list(stat_layers(model))
    inputs = [x]
    if fixed is not None:
        for name in names:
            inputs += [fixed[name].mean.float(), fixed[name].var.float()]
    outputs = graphs.run(StatsGraph(model, fixed is not None, record), inputs)
    if outputs is None:
        return None
    y, *outs = outputs
    if not record:
        return y, None
    recorded = NormStats()
    for k, name in enumerate(names):
        mean, var, count = outs[3 * k : 3 * k + 3]
        n = int(round(float(count)))
        recorded[name] = ChannelStats(n, mean.double(), var.double() * n)
    return y, recorded


class StatsRunner:
    """A Translator's generator run on batches, with or without shared norm statistics.

    `model_or_id` is a catalog id or path (the translator's cached, prepared model is used and
    shared, thread-safely) or a module (prepared once on a copy, private to this runner).
    """

    def __init__(self, translator, model_or_id: str | nn.Module) -> None:
        self.translator = translator
        if isinstance(model_or_id, nn.Module):
            # A private prepared copy: use_stats hooks the module that actually runs, and the
            # Translator keeps only its two most recent callers' copies.
            prepared = translator.prepare(model_or_id)
            self.model, self._runner = prepared.model, prepared.runner
            self._shared = False
        else:
            self.model = translator.load(model_or_id)
            self._runner, self._shared = translator.runner(model_or_id), True
        self.multiple = translator.multiple(self.model)
        self.has_stats = bool(stat_layers(self.model))
        # A converted runner (openvino): shared-statistics forwards run the backend's
        # statistics graphs, not hooks (None: hooks on the torch module).
        self._graphs = execution.stats_graphs(self._runner, translator.plan)

    def forward(self, x: torch.Tensor, hooked: bool = False) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> float32 output on the CPU; `hooked`: inside use_stats,
        so run eagerly."""
        if self._shared:
            return self.translator.forward(self.model, x, compiled=not hooked)
        plan = self.translator.plan
        runner = self.model if hooked else self._runner
        plan = execution.without_compile(plan) if hooked else plan
        return execution.forward(runner, x, plan, self.translator.device)

    def run(
        self,
        x: torch.Tensor,
        fixed: NormStats | None = None,
        record: bool = False,
        hooks: bool = False,
    ) -> tuple[torch.Tensor, NormStats | None]:
        """One batch with `fixed` statistics (None: each input's own); with `record`, also
        the statistics its norm layers saw. `hooks`: run the torch module with hooks even
        where the backend has statistics graphs (a one-off pass: its activations are freed
        when it ends, where a graph keeps its buffers)."""
        if fixed is None and not record:
            return self.forward(x), None
        if fixed is not None and set(fixed) != set(stat_layers(self.model)):
            raise ConfigError(
                "recorded normalisation statistics do not fit this model "
                f"({len(fixed)} layers recorded, the model has {len(stat_layers(self.model))})"
            )
        # Recording alone (the statistics pass of tiles, a clip's first batch) runs the torch
        # module with hooks even under a converted plan: one forward, whose activations are
        # freed when it ends, where a converted record-only graph kept its buffers for good
        # (OpenVINO: +1.2 GB for eight 256x192 ResNet-9 frames, more than the forward itself).
        if self._graphs is not None and fixed is not None and not hooks:
            done = _run_graph(self._graphs, self.model, x, fixed, record)
            if done is not None:
                return done
        with use_stats(self.model, fixed, record) as recorded:
            return self.forward(x, hooked=True), recorded
