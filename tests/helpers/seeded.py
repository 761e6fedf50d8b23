"""Seeded tensors that any machine rebuilds bit for bit: reference fixtures store a seed and a
key/shape manifest instead of weight files.

Values come from `torch.rand` in float64 (the Mersenne Twister's uniform draws, the same on
every CPU kind, unlike `randn`'s vectorised paths), scaled per kind of tensor so that a
network of such weights neither saturates nor vanishes: conv / linear weights uniform with
variance 1 / fan_in, biases and norm shifts +-0.1, norm scales and running variances near 1.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import torch

Manifest = list[tuple[str, list[int], str]]  # (key, shape, dtype name) in state-dict order


def uniform(shape: Iterable[int], generator: torch.Generator) -> torch.Tensor:
    """U(-1, 1) in float32, drawn in float64."""
    return (torch.rand(tuple(shape), generator=generator, dtype=torch.float64) * 2 - 1).float()


def seeded_value(key: str, shape: list[int], dtype: str, g: torch.Generator) -> torch.Tensor:
    """The tensor of `key` (its kind told by its name and rank)."""
    if dtype != "float32":  # BatchNorm's num_batches_tracked
        return torch.zeros(shape, dtype=getattr(torch, dtype))
    u = uniform(shape, g)
    if len(shape) >= 2:  # conv / linear weight: (out, in, ...) or ConvTranspose (in, out, ...)
        fan_in = 1
        for s in shape[1:]:
            fan_in *= s
        return u * (3.0 / fan_in) ** 0.5
    if key.endswith("running_var"):
        return 1.0 + 0.25 * (u + 1)
    if key.endswith("weight"):  # a norm's scale
        return 1.0 + 0.1 * u
    return 0.1 * u  # biases, norm shifts, running means


def seeded_state(manifest: Manifest, seed: int) -> OrderedDict[str, torch.Tensor]:
    """The state dict of `manifest`, every tensor drawn in manifest order from one seed."""
    g = torch.Generator().manual_seed(seed)
    return OrderedDict((k, seeded_value(k, shape, dtype, g)) for k, shape, dtype in manifest)


def manifest_of(state: dict[str, torch.Tensor]) -> Manifest:
    return [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state.items()]


def seeded_images(shape: Iterable[int], seed: int) -> torch.Tensor:
    """A batch in [-1, 1] (the generators' input range)."""
    return uniform(shape, torch.Generator().manual_seed(seed))
