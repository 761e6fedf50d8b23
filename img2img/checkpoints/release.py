"""Our release format, written: a folder of `config.json` + `model.safetensors` + README.md.

`config.json` holds the generator's constructor arguments (its `.config`), so the weights
describe their own architecture; metadata rides along under keys prefixed with "_", which
loading ignores. `save_pretrained` writes the unwrapped, uncompiled module atomically;
`model_card` writes the README.md the Hub shows. Reading any checkpoint, ours included, is
weights.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from safetensors.torch import save
from torch import nn

from ..atomic import atomic_file
from ..errors import CheckpointError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
FORMAT_VERSION = 1
LIBRARY_NAME = "img2img-gan"  # our distribution's name (`img2img` on PyPI is another project)
LICENSE_ID = "bsd-3-clause"  # the licence of this project, and of what train.py exports


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
