"""Foreign checkpoint formats -> (config, state dict) for our modules.

The families are recognised from the tensors alone, by the architectures in
models/registry.py (each knows its key layout and reads its width, depth, channels, norm
and dropout off the shapes). Our own modules use the original key layouts, so conversion is
key hygiene: strip wrapper prefixes (`module.`, `_orig_mod.`) and drop the InstanceNorm
buffers that PyTorch < 0.4 wrote into old CycleGAN files. Anything else that does not match
is left for the strict load to report.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from ..errors import CheckpointError
from ..models.registry import ARCHITECTURES

StateDict = dict[str, torch.Tensor]
_STAT_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def strip_prefixes(state: StateDict) -> StateDict:
    """Remove DataParallel / torch.compile prefixes from every key."""
    out = {}
    for key, value in state.items():
        while key.startswith(_WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def drop_legacy_instance_norm_stats(state: StateDict) -> StateDict:
    """Drop running stats that belong to no affine norm layer (pre-0.4 InstanceNorm buffers).

    A BatchNorm layer always has `weight` next to its running stats; a stat without a
    sibling `weight` can only come from InstanceNorm(track_running_stats) in old files.
    """
    out = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf in _STAT_SUFFIXES and f"{prefix}.weight" not in state:
            continue
        out[key] = value
    return out


def find_family(state: StateDict) -> str | None:
    """The registry name of the architecture whose key layout `state` has, or None."""
    for arch in ARCHITECTURES.values():  # matchers are exclusive: at most one accepts
        if arch.matches(state):
            return arch.name
    return None


def detect_family(state: StateDict) -> str:
    """`find_family`, or a CheckpointError saying what was found and what was tried."""
    name = find_family(state)
    if name is not None:
        return name
    near = [m for a in ARCHITECTURES.values() if (m := a.near_miss(state))]
    raise CheckpointError(
        "unrecognised checkpoint layout. "
        + "".join(f"Nearly: {m}. " for m in near)
        + "Tried: "
        + "; ".join(a.about for a in ARCHITECTURES.values())
        + f". Found: {describe_keys(state)}"
    )


def key_patterns(state: StateDict, limit: int = 8) -> str:
    """Keys with layer indices as N, and how often each occurs (`model.N.block.N.weight x18`)."""
    counts: dict[str, int] = {}
    for key in state:
        pattern = re.sub(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.)", "N", key)
        counts[pattern] = counts.get(pattern, 0) + 1
    shown = ", ".join(f"{p} x{n}" for p, n in list(counts.items())[:limit])
    more = f" (+{len(counts) - limit} more patterns)" if len(counts) > limit else ""
    return shown + more


def describe_keys(state: StateDict, limit: int = 6) -> str:
    """What a state dict holds, for error messages: its key patterns and first keys/shapes."""
    if not state:
        return "no tensors"
    shown = ", ".join(f"{k} {tuple(v.shape)}" for k, v in list(state.items())[:limit])
    more = f" (+{len(state) - limit} more)" if len(state) > limit else ""
    return f"{len(state)} tensors in key patterns {key_patterns(state)}; first: {shown}{more}"


def infer_config(state: StateDict) -> dict[str, Any]:
    """Architecture config (as in config.json) of a generator state dict in any family."""
    name = detect_family(state)
    try:
        return ARCHITECTURES[name].config_from_state(state)
    except (KeyError, IndexError) as e:
        raise CheckpointError(
            f"checkpoint looks like a {name} generator but lacks a tensor needed to read it: {e}"
        ) from e


def clean_state_dict(state: StateDict) -> StateDict:
    """Key hygiene common to every family (see module docstring)."""
    return drop_legacy_instance_norm_stats(strip_prefixes(state))
