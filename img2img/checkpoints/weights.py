"""A checkpoint file in any supported family -> a strict-loaded generator, in four steps.

One room: the walk from a path to the forward pass never leaves this file (the registry,
models/registry.py, is only asked what a layout is and to build the module; limits.py what
a file will cost in memory).

    load_generator(path, name)
      1. READ    read(path, max_bytes) -> RawCheckpoint
                 A folder's checkpoint file is found (our model.safetensors first), sniffed
                 (safetensors, or a zip / legacy torch pickle), its size in memory read off
                 its zip directory or header and capped (limits.py: a compressed zip is
                 refused before it is inflated), then opened safely: pickles only through
                 torch.load(weights_only=True), never unpickling code. Our config.json is
                 read when it sits beside our own .safetensors weights.
      2. CLEAN   clean(raw, name) -> StateDict
                 A file holding several networks (a whole CycleGAN) is unpacked: nested dicts
                 ({"G_AB": state, "D_A": state, "optimizer": ...}, {"state_dict": ...}) and
                 flat dicts with a prefix per network (`G_AB.`, `netG_A.`) become named
                 networks; the one named, or the only generator, is picked. Its keys lose
                 wrapper prefixes (`module.`, `_orig_mod.`) and the InstanceNorm buffers of
                 pre-0.4 CycleGAN files. No renaming beyond that: our modules use the
                 original key layouts (junyanz, HugGAN), each family one registry entry.
      3. DETECT  detect(state, raw) -> Detected
                 Our config.json when READ found one, else the config read off the tensors by
                 the one architecture whose matcher accepts them (matchers are exclusive). An
                 unrecognised layout is told its key patterns, every family tried, near misses.
      4. BUILD   build(detected, state, source) -> nn.Module
                 The registry builds the generator; missing, unexpected or mis-shaped tensors
                 are listed, and NaN / Inf weights named (they give a black image), then
                 load_state_dict(strict=True); eval mode, on the CPU.

Every failure is a CheckpointError naming the file (from BUILD on, also the architecture
assumed). `read_state_dict` is steps 1-2 without the key hygiene (keys as saved): downloads
use it to prove that a new file parses. Writing our release format is release.py.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..models.registry import ARCHITECTURES, build_generator
from .limits import DEFAULT_MAX_BYTES, check_size
from .release import CONFIG_NAME, WEIGHTS_NAME

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class RawCheckpoint:
    """READ's output: what one checkpoint file holds, nothing interpreted yet."""

    file: Path  # the weights file (a folder's, found by find_checkpoint_file)
    contents: Any  # what safetensors / torch.load(weights_only=True) returned
    config: dict[str, Any] | None  # our config.json, only beside our own .safetensors


@dataclass(frozen=True)
class Detected:
    """DETECT's output: the generator to build."""

    config: dict[str, Any]  # constructor arguments, as in config.json
    origin: str  # "config.json" or "tensors": where the config came from

    @property
    def family(self) -> str:
        return self.config["architecture"]  # a registry name (checked by BUILD)


# --- 1. READ: a path -> the file's contents, opened safely -----------------------------------

# Preference order when a directory holds several checkpoint files.
_PATTERNS = (WEIGHTS_NAME, "*.safetensors", "pytorch_model.bin", "*.pth", "*.pt", "*.bin")
_ZIP_MAGIC = b"PK\x03\x04"


def find_checkpoint_file(directory: Path) -> Path:
    """The checkpoint file a directory holds (our model.safetensors first)."""
    for pattern in _PATTERNS:
        found = sorted(p for p in directory.glob(pattern) if p.is_file())
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise CheckpointError(f"{directory} holds several checkpoints ({names}); pass one")
    raise CheckpointError(
        f"no checkpoint in {directory}: expected {WEIGHTS_NAME}, *.safetensors, *.pth or *.bin"
    )


def _is_pickle(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: a little-endian u64 header length, then the JSON header. Its first byte is
    # 0x80 for one header length in 256, so that alone must not make a file a pickle.
    header_len = int.from_bytes(head[:8], "little")
    if head[8:9] == b"{" and 8 + header_len <= path.stat().st_size:
        return False
    # torch.save zip archives, or legacy pickles (protocol 2+ opcode 0x80).
    return head[:4] == _ZIP_MAGIC or head[:1] == b"\x80"


_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}  # fmt: skip


def _safetensors_shapes(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors as meta tensors (name, shape, dtype): its header only."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        if 8 + size > path.stat().st_size:
            raise ValueError("its header length runs past the end of the file")
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    return {
        k: torch.empty(v["shape"], dtype=_SAFETENSORS_DTYPES.get(v["dtype"], torch.float32),
                       device="meta")
        for k, v in header.items()
    }  # fmt: skip


def _open(path: Path, max_bytes: int = DEFAULT_MAX_BYTES, lazy: bool = False) -> Any:
    """The object a checkpoint file holds: safetensors, or a weights-only pickle; refused
    before it is read when it would take more than `max_bytes` in memory. `lazy`: only what
    describes the tensors is read (a safetensors header as meta tensors; a torch zip
    memory-mapped), for a check of what the file is, not for computing with it."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint file is empty: {path}")
    check_size(path, max_bytes)
    if _is_pickle(path):
        with open(path, "rb") as f:
            mmap = lazy and f.read(4) == _ZIP_MAGIC  # legacy pickles cannot be mapped
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as e:
            raise CheckpointError(
                f"refused to load {path}: it is not a plain tensor checkpoint and arbitrary "
                f"pickles are never executed (weights_only=True). Details: {e}"
            ) from e
        except (RuntimeError, EOFError, OSError, ValueError) as e:
            raise CheckpointError(f"cannot read {path} (truncated or corrupt?): {e}") from e
    try:
        return _safetensors_shapes(path) if lazy else load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(
            f"cannot read {path}: neither a safetensors file nor a torch checkpoint ({e})"
        ) from e


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from e
    if not isinstance(config, dict) or "architecture" not in config:
        raise CheckpointError(f"{path} has no 'architecture' field")
    return {k: v for k, v in config.items() if not k.startswith("_")}


def read(
    path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES, lazy: bool = False
) -> RawCheckpoint:
    """Step 1: the checkpoint file at `path` (a file, or a folder holding one), opened if it
    takes at most `max_bytes` in memory (limits.check_size); `lazy`: see `_open`."""
    path = Path(path)
    if path.is_dir():
        file = find_checkpoint_file(path)
    elif path.is_file():
        file = path
    else:
        raise CheckpointError(f"checkpoint not found: {path}")
    contents = _open(file, max_bytes, lazy)
    # A config.json is ours only beside our weights file; classic files describe themselves.
    config_path = file.parent / CONFIG_NAME
    ours = config_path.is_file() and file.suffix == ".safetensors"
    return RawCheckpoint(file, contents, _read_config(config_path) if ours else None)


# --- 2. CLEAN: the file's contents -> one network's state dict, keys as our modules name them

_STAT_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_MAX_DEPTH = 3  # {"checkpoint": {"nets": {"G_AB": state}}} is as deep as saved files go


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


def clean_state_dict(state: StateDict) -> StateDict:
    """Key hygiene common to every family: wrapper prefixes and legacy stats removed."""
    return drop_legacy_instance_norm_stats(strip_prefixes(state))


def find_family(state: StateDict) -> str | None:
    """The registry name of the architecture whose key layout (cleaned) `state` has, or None."""
    for arch in ARCHITECTURES.values():  # matchers are exclusive: at most one accepts
        if arch.matches(state):
            return arch.name
    return None


def _family_of(state: StateDict) -> str | None:
    """The family of a network whose keys are as saved (None: not a generator we know)."""
    return find_family(clean_state_dict(state))


def _split_prefixed(state: StateDict) -> dict[str, StateDict]:
    """A flat dict as {"": itself} if it is one generator, else by its first key component
    when at least one of those groups is a generator (`G_AB.`, `netG_A.`, ...)."""
    if _family_of(state) is not None:
        return {"": state}
    groups: dict[str, StateDict] = {}
    for key, value in state.items():
        head, dot, rest = key.partition(".")
        if dot:  # a dotless tensor (a step counter, ...) belongs to no network
            groups.setdefault(head, {})[rest] = value
    if any(_family_of(g) is not None for g in groups.values()):
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


def networks(contents: Any) -> dict[str, StateDict]:
    """Every network in a file's contents: name (nested keys joined by ".", "" for a file that
    is one generator by itself) -> its state dict, keys as saved. Optimizer states, epoch
    numbers and other entries that hold no tensors are no networks."""
    out: dict[str, StateDict] = {}
    if isinstance(contents, Mapping):
        _collect(contents, "", 0, out)
    return out


def _generators(nets: dict[str, StateDict]) -> dict[str, str]:
    """Name -> architecture of every network that a registry architecture recognises."""
    found = {name: _family_of(state) for name, state in nets.items()}
    return {name: family for name, family in found.items() if family is not None}


def _names(nets: dict[str, StateDict], gens: dict[str, str] | None = None) -> str:
    gens = _generators(nets) if gens is None else gens
    return ", ".join(
        f"{n or '(unnamed)'} ({gens[n]})" if n in gens else (n or "(unnamed)") for n in nets
    )


def select(nets: dict[str, StateDict], name: str | None, source: str) -> StateDict:
    """The network called `name` (`G_AB` also finds `state_dict.G_AB`); without a name, the
    file's only generator (or only network).

    Raises CheckpointError listing the names when the file holds several generators and none
    is named, when the name is not there, or when the file holds no tensors at all.
    """
    if not nets:
        raise CheckpointError(f"{source} does not hold a state dict of tensors")
    if name is not None:
        # Users know the network, not the wrapper keys around it.
        found = [name] if name in nets else [n for n in nets if n.endswith(f".{name}")]
        if len(found) == 1:
            return nets[found[0]]
        raise CheckpointError(f"{source} holds no network named {name!r}; it holds: {_names(nets)}")
    if len(nets) == 1:
        return next(iter(nets.values()))
    gens = _generators(nets)
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


def read_state_dict(
    path: str | os.PathLike, name: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> StateDict:
    """Tensors of one network in a checkpoint file, keys as saved: the one called `name`, or
    the file's only generator (CheckpointError listing the names when it holds several)."""
    return select(networks(_open(Path(path), max_bytes)), name, str(path))


def clean(raw: RawCheckpoint, name: str | None = None) -> StateDict:
    """Step 2: the network `name` (see `select`) of a read file, its keys cleaned."""
    return clean_state_dict(select(networks(raw.contents), name, str(raw.file)))


# --- 3. DETECT: a cleaned state dict -> the architecture config -------------------------------


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


def infer_config(state: StateDict) -> dict[str, Any]:
    """Architecture config (as in config.json) of a cleaned generator state dict, any family."""
    name = detect_family(state)
    try:
        return ARCHITECTURES[name].config_from_state(state)
    except (KeyError, IndexError) as e:
        raise CheckpointError(
            f"checkpoint looks like a {name} generator but lacks a tensor needed to read it: {e}"
        ) from e


def detect(state: StateDict, raw: RawCheckpoint) -> Detected:
    """Step 3: our config.json if READ found one, else the config the tensors describe."""
    if raw.config is not None:
        return Detected(raw.config, "config.json")
    try:
        return Detected(infer_config(state), "tensors")
    except CheckpointError as e:
        raise CheckpointError(f"{raw.file}: {e}") from e


# --- 4. BUILD: config + state dict -> the module, loaded strictly ------------------------------


def describe_mismatch(module: nn.Module, state: StateDict) -> list[str]:
    """Human-readable differences between a module's state dict and `state`."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            more = f" (+{len(items) - 8} more)" if len(items) > 8 else ""
            problems.append(f"{label} keys: {', '.join(items[:8])}{more}")
    return problems


def check_finite(state: StateDict, source: str = "") -> None:
    """CheckpointError naming the floating-point tensors that hold NaN or Inf: such weights
    load, then turn every image black. Integer tensors (num_batches_tracked) are not checked."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        more = f" (+{len(bad) - 4} more)" if len(bad) > 4 else ""
        raise CheckpointError(
            f"{source} holds NaN or Inf weights in {len(bad)} of its {len(state)} tensors: "
            f"{', '.join(bad[:4])}{more}; they would give a black image. What you can do: "
            "use a checkpoint saved before the training diverged"
        )


def build(detected: Detected, state: StateDict, source: str = "") -> nn.Module:
    """Step 4: the generator `detected` describes, `state` loaded into it strictly (eval)."""
    config = detected.config
    try:
        module = build_generator(config)
    except ConfigError as e:
        raise CheckpointError(f"invalid generator config in {source}: {e}") from e
    problems = describe_mismatch(module, state)
    if problems:
        raise CheckpointError(
            f"{source} does not match the assumed architecture "
            f"{json.dumps(config, sort_keys=True)}: " + "; ".join(problems)
        )
    check_finite(state, source)
    module.load_state_dict(state, strict=True)
    return module.eval()


# --- the walk ----------------------------------------------------------------------------------


def load_generator(
    path: str | os.PathLike, name: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> nn.Module:
    """Load a generator from a checkpoint file or directory in any supported family.

    `name` picks one network of a file that holds several (a whole CycleGAN: `G_AB`,
    `netG_B`, ...); without it such a file must hold exactly one generator. A file that
    would take more than `max_bytes` in memory (decompressed) is refused unread.
    Returns the module in eval mode on the CPU, with `.config` (its constructor arguments).
    Raises CheckpointError when the file is missing, unreadable, unsafe, too large, does not
    match or holds NaN / Inf weights, or holds several generators and none is named (the
    message lists their names).
    """
    raw = read(path, max_bytes)
    state = clean(raw, name)
    detected = detect(state, raw)
    return build(detected, state, source=str(raw.file))
