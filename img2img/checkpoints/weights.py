"""Load generators from local checkpoints in any supported family; save ours.

Our release format is a directory with `config.json` (the constructor arguments) and
`model.safetensors` (+ an optional README.md model card). Foreign files (classic `.pth`,
HugGAN `pytorch_model.bin`, a bare `.safetensors`) load too: the architecture is read off
their tensors. Pickled files are only ever opened with `torch.load(weights_only=True)`.
Loading is strict: a missing, unexpected or mis-shaped tensor is a CheckpointError naming
the keys and the family that was assumed.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from ..atomic import atomic_file
from ..errors import CheckpointError, ConfigError
from ..models import build_generator
from . import bundle
from .convert import StateDict, clean_state_dict, infer_config

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
FORMAT_VERSION = 1
LIBRARY_NAME = "img2img-gan"  # our distribution's name (`img2img` on PyPI is another project)
LICENSE_ID = "bsd-3-clause"  # the licence of this project, and of what train.py exports
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


def read_checkpoint(path: str | os.PathLike) -> dict[str, StateDict]:
    """Every network in a checkpoint file, by name (see bundle.py): safetensors, or a pickle
    read through torch.load(weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint file is empty: {path}")
    if _is_pickle(path):
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise CheckpointError(
                f"refused to load {path}: it is not a plain tensor checkpoint and arbitrary "
                f"pickles are never executed (weights_only=True). Details: {e}"
            ) from e
        except (RuntimeError, EOFError, OSError, ValueError) as e:
            raise CheckpointError(f"cannot read {path} (truncated or corrupt?): {e}") from e
        return bundle.networks(obj)
    try:
        return bundle.networks(load_file(path, device="cpu"))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"cannot read {path}: neither a safetensors file nor a torch checkpoint ({e})"
        ) from e


def read_state_dict(path: str | os.PathLike, name: str | None = None) -> StateDict:
    """Tensors of one network in a checkpoint file: the one called `name`, or the file's only
    generator (CheckpointError listing the names when it holds several)."""
    return bundle.select(read_checkpoint(path), name, str(path))


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from e
    if not isinstance(config, dict) or "architecture" not in config:
        raise CheckpointError(f"{path} has no 'architecture' field")
    return {k: v for k, v in config.items() if not k.startswith("_")}


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


def build_and_load(config: dict[str, Any], state: StateDict, source: str = "") -> nn.Module:
    """Build the generator `config` describes and load `state` into it strictly."""
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
    module.load_state_dict(state, strict=True)
    return module.eval()


def load_generator(path: str | os.PathLike, name: str | None = None) -> nn.Module:
    """Load a generator from a checkpoint file or directory in any supported family.

    `name` picks one network of a file that holds several (a whole CycleGAN: `G_AB`,
    `netG_B`, ...); without it such a file must hold exactly one generator.
    Returns the module in eval mode on the CPU, with `.config` (its constructor arguments).
    Raises CheckpointError when the file is missing, unreadable, unsafe or does not match,
    or holds several generators and none is named (the message lists their names).
    """
    path = Path(path)
    if path.is_dir():
        weights = find_checkpoint_file(path)
        config_path = path / CONFIG_NAME
    elif path.is_file():
        weights, config_path = path, path.parent / CONFIG_NAME
    else:
        raise CheckpointError(f"checkpoint not found: {path}")
    state = clean_state_dict(read_state_dict(weights, name))
    # A config.json is ours only beside our weights file; classic files describe themselves.
    if config_path.is_file() and weights.suffix == ".safetensors":
        config = _read_config(config_path)
    else:
        try:
            config = infer_config(state)
        except CheckpointError as e:
            raise CheckpointError(f"{weights}: {e}") from e
    return build_and_load(config, state, source=str(weights))


def unwrap_module(module: nn.Module) -> nn.Module:
    """The plain module under DDP/DataParallel and torch.compile wrappers."""
    while True:
        if hasattr(module, "_orig_mod"):
            module = module._orig_mod
        elif isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            module = module.module
        else:
            return module


def _write(path: Path, data: bytes | str) -> None:
    """Atomic write; a failure (disk full, ...) is a CheckpointError, `path` left as it was."""
    try:
        with atomic_file(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
    except OSError as e:
        raise CheckpointError(
            f"cannot write {path}: {e.strerror or e}; any previous version is unchanged"
        ) from e


def model_card(
    config: dict[str, Any],
    *,
    title: str,
    family: str,
    license_id: str = LICENSE_ID,
    license_text: str = "",
    dataset: str = "",
    hub_datasets: tuple[str, ...] = (),
    base_model: str | None = None,
    train: str = "",
    notes: tuple[str, ...] = (),
) -> str:
    """README.md of a release folder: Hub metadata (ModelCardData) + what it is + how to use.

    `hub_datasets` are Hub dataset ids only (the metadata links them); `dataset` is free
    text for the body. `base_model` is the Hub repo a mirror or fine-tune derives from.
    """
    from huggingface_hub import ModelCard, ModelCardData  # late: it reads HF_* at import

    data = ModelCardData(
        library_name=LIBRARY_NAME,
        pipeline_tag="image-to-image",
        license=license_id,
        tags=["image-to-image", family, "gan", "pytorch"],
        datasets=list(hub_datasets) or None,
        base_model=base_model,
    )
    body = [
        f"# {title}",
        "",
        f"A {family} generator in the img2img format: `config.json` (the architecture) + "
        "`model.safetensors` (the weights).",
        "",
        f"- architecture: `{json.dumps(config, sort_keys=True)}`",
        f"- dataset: {dataset or 'unknown'}",
        f"- license: {license_text or license_id}",
        *(f"- {note}" for note in notes),
    ]
    if train:
        body += ["", "## Reproduce", "", f"```\n{train}\n```"]
    body += [
        "",
        "## Use",
        "",
        "```\nimg2img translate photo.jpg -o out/ --checkpoint <this repo's folder>\n```",
        "",
    ]
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body)))


def save_pretrained(
    module: nn.Module,
    directory: str | os.PathLike,
    card: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write `module` as config.json + model.safetensors (+ README.md) into `directory`.

    `metadata` is stored in config.json under keys prefixed with "_" (ignored by loading).
    """
    module = unwrap_module(module)
    if not hasattr(module, "config"):
        raise TypeError(f"{type(module).__name__} has no .config; build it from img2img.models")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    config = {"_format": "img2img", "_format_version": FORMAT_VERSION, **module.config}
    config.update({f"_{k}": v for k, v in (metadata or {}).items()})
    _write(directory / WEIGHTS_NAME, save(state))
    _write(directory / CONFIG_NAME, json.dumps(config, indent=2, sort_keys=False) + "\n")
    if card is not None:
        _write(directory / CARD_NAME, card)
    return directory
