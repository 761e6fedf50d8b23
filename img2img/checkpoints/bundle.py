"""Files that hold several networks (a whole CycleGAN) -> the one generator the user names.

Training scripts save a CycleGAN as one object in two ways, and both are read here:
- nested dicts, `{"G_AB": state, "G_BA": state, "D_A": state, ...}` (HugGAN-style scripts,
  PyTorchModelHubMixin users; also `{"state_dict": ...}`, `{"G": ..., "D": ...}` wrappers and
  extra entries such as optimizer states or an epoch number, which are no networks);
- one flat dict with a prefix per network, `G_AB.model.1.weight`, `netG_A.model.1.weight`, ...
Each network gets a name (nested keys joined by "."). A flat dict that is one generator by
itself keeps the name "". Generators are the networks an architecture in the registry
recognises; `select` returns the named one, or the only one, and otherwise says which names
there are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..errors import CheckpointError
from .convert import StateDict, clean_state_dict, find_family

_MAX_DEPTH = 3  # {"checkpoint": {"nets": {"G_AB": state}}} is as deep as saved files go


def _split_prefixed(state: StateDict) -> dict[str, StateDict]:
    """A flat dict as {"": itself} if it is one generator, else by its first key component
    when at least one of those groups is a generator (`G_AB.`, `netG_A.`, ...)."""
    if find_family(clean_state_dict(state)) is not None:
        return {"": state}
    groups: dict[str, StateDict] = {}
    for key, value in state.items():
        head, dot, rest = key.partition(".")
        if dot:  # a dotless tensor (a step counter, ...) belongs to no network
            groups.setdefault(head, {})[rest] = value
    if any(find_family(clean_state_dict(g)) is not None for g in groups.values()):
        return groups
    return {"": state}


def _collect(obj: Mapping, prefix: str, depth: int, out: dict[str, StateDict]) -> None:
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and torch.is_tensor(v)}
    if tensors:
        for name, state in _split_prefixed(tensors).items():
            out[".".join(p for p in (prefix, name) if p)] = state
    if depth >= _MAX_DEPTH:
        return
    for key, value in obj.items():
        if isinstance(key, str) and isinstance(value, Mapping):
            _collect(value, f"{prefix}.{key}" if prefix else key, depth + 1, out)


def networks(obj: Any) -> dict[str, StateDict]:
    """Every network in a loaded checkpoint object: name -> its state dict (keys as saved)."""
    out: dict[str, StateDict] = {}
    if isinstance(obj, Mapping):
        _collect(obj, "", 0, out)
    return out


def generators(nets: dict[str, StateDict]) -> dict[str, str]:
    """Name -> architecture of every network that a registry architecture recognises."""
    found = {name: find_family(clean_state_dict(state)) for name, state in nets.items()}
    return {name: family for name, family in found.items() if family is not None}


def _by_name(nets: dict[str, StateDict], name: str, source: str) -> StateDict:
    if name in nets:
        return nets[name]
    # `G_AB` also finds `state_dict.G_AB`: users know the network, not the wrapper keys.
    suffixed = [n for n in nets if n.endswith(f".{name}")]
    if len(suffixed) == 1:
        return nets[suffixed[0]]
    raise CheckpointError(f"{source} holds no network named {name!r}; it holds: {_names(nets)}")


def _names(nets: dict[str, StateDict], gens: dict[str, str] | None = None) -> str:
    gens = generators(nets) if gens is None else gens
    return ", ".join(
        f"{n or '(unnamed)'} ({gens[n]})" if n in gens else (n or "(unnamed)") for n in nets
    )


def select(nets: dict[str, StateDict], name: str | None, source: str) -> StateDict:
    """The network called `name`; without a name, the file's only generator (or only network).

    Raises CheckpointError listing the names when the file holds several generators and none
    is named, when the name is not there, or when the file holds no tensors at all.
    """
    if not nets:
        raise CheckpointError(f"{source} does not hold a state dict of tensors")
    if name is not None:
        return _by_name(nets, name, source)
    if len(nets) == 1:
        return next(iter(nets.values()))
    gens = generators(nets)
    if len(gens) == 1:
        return nets[next(iter(gens))]
    if not gens:
        raise CheckpointError(
            f"{source} holds {len(nets)} networks and none has a generator layout we know: "
            f"{_names(nets, gens)}"
        )
    raise CheckpointError(
        f"{source} holds {len(gens)} generators: {_names(nets, gens)}. Name the one to load, "
        f"e.g. load_generator(path, name={next(iter(gens))!r})"
    )
