"""Release the trained generators: RUN_DIR/weights/<name>/ in our format, optionally pushed.

Each recipe names its exports (pix2pix weights/G/; CycleGAN weights/A2B/ (G_A) and
weights/B2A/ (G_B)); `--export A2B|B2A` selects one of a pair. Each folder is config.json +
model.safetensors + a model card, which `python -m img2img translate --checkpoint
RUN_DIR/weights/G` and the app load directly.

An export is current when it holds the checkpoint's generator: config.json records the step
(`_trained_steps`) and the model card's sha256 (`_card_sha256`), model.safetensors holds
exactly the generator's tensors, and README.md is the card written with them. A run killed
between its checkpoint and its export, or whose export hit a full disk, leaves weights/
missing or a save behind; `stale_exports` finds it and --resume exports again.

`--keep-best` adds weights/<folder>-best/ beside each (training/keep.py): the generators of
the best validation, `suffix` "-best", their card and config.json naming the metric, value
and step (`notes`, `extra`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..atomic import remove_temporaries
from ..checkpoints import publish
from ..checkpoints.release import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, model_card, save_pretrained
from ..errors import PushError
from .config import TrainConfig
from .recipes import recipe


def export_names(c: TrainConfig) -> dict[str, str]:
    """{folder: network} that this run exports: the recipe's, or the one `c.export` names."""
    names = recipe(c).exports
    if c.export in names:
        return {c.export: names[c.export]}
    return dict(names)


def _title(c: TrainConfig, folder: str) -> str:
    data = c.dataset or f"{Path(c.data).name} (local folder)"
    if c.teacher:
        return f"distilled student of {c.teacher}, on {data}"
    a, b = ("B", "A") if c.direction == "BtoA" else ("A", "B")
    if folder == "B2A":
        a, b = b, a
    return f"{c.family} {data} {a} -> {b}"


def export_generators(
    nets: dict[str, nn.Module],
    c: TrainConfig,
    run_dir: Path,
    command: str,
    step: int,
    folders: list[str] | None = None,
    suffix: str = "",
    notes: tuple[str, ...] = (),
    extra: dict | None = None,
    metrics: dict[str, float] | None = None,
) -> list[Path]:
    """Write the exported generators (or those in `folders`) to weights/<folder><suffix>/,
    `notes` in their cards and `extra` in their config.json; returns their folders.
    `metrics`: the save's validation, for the recipe's card notes (distill's quality)."""
    card = recipe(c).card_notes
    notes = tuple(notes) + (card(c, metrics or {}) if card else ())
    paths = []
    for folder, name in export_names(c).items():
        if folders is not None and folder not in folders:
            continue
        net = nets[name]
        card = model_card(
            net.config,
            title=_title(c, folder),
            family=c.family,
            dataset=c.dataset,  # "" for a local folder: the card then says "unknown"
            train=command,
            notes=notes,
        )
        meta = {
            "trained_steps": step,
            "direction": c.direction,
            "preset": c.preset,
            **(extra or {}),
            "card_sha256": hashlib.sha256(card.encode()).hexdigest(),
        }
        target = run_dir / "weights" / f"{folder}{suffix}"
        paths.append(save_pretrained(net, target, card=card, metadata=meta))
    return paths


def _why_stale(net: nn.Module, folder: Path, step: int) -> str:
    """'' if `folder` holds `net` as exported at `step`, else what is wrong with it."""
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
        state = load_file(folder / WEIGHTS_NAME)
        card = (folder / CARD_NAME).read_bytes()
    except (OSError, ValueError, SafetensorError) as e:  # missing, cut short, not JSON
        return f"incomplete ({type(e).__name__})"
    if not isinstance(config, dict):
        return f"incomplete ({CONFIG_NAME} is not an object)"
    if config.get("_trained_steps") != step:
        return f"from step {config.get('_trained_steps')}"
    if config.get("_card_sha256") != hashlib.sha256(card).hexdigest():
        return "its model card is not the one written with it"
    mine = net.state_dict()
    same = state.keys() == mine.keys() and all(
        torch.equal(state[k], v.detach().cpu()) for k, v in mine.items()
    )
    return "" if same else "other weights"


def stale_exports(
    nets: dict[str, nn.Module], c: TrainConfig, run_dir: Path, step: int, suffix: str = ""
) -> dict[str, str]:
    """{folder: why} of the exports (weights/<folder><suffix>/) that do not hold `nets`."""
    stale = {}
    for folder, name in export_names(c).items():
        why = _why_stale(nets[name], run_dir / "weights" / f"{folder}{suffix}", step)
        if why:
            stale[folder] = why
    return stale


def remove_stale_temporaries(c: TrainConfig, run_dir: Path) -> None:
    """Delete the temporaries an export killed mid-write left in weights/<folder>/."""
    for folder in [f"{f}{s}" for f in export_names(c) for s in ("", "-best")]:
        directory = run_dir / "weights" / folder
        if directory.is_dir():
            for name in (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME):
                remove_temporaries(directory, name)


def push_exports(paths: list[Path], repo_id: str) -> list[str]:
    """Upload each exported folder: to `repo_id`, or `repo_id`-A2B / -B2A for a pair."""
    urls = []
    for path in paths:
        target = repo_id if len(paths) == 1 else f"{repo_id}-{path.name}"
        try:
            urls.append(publish.push(path, target, message=f"img2img train.py: {path.name}"))
        except Exception as e:  # noqa: BLE001 - HTTP, network or local: the run is done anyway
            reason = " ".join(f"{type(e).__name__}: {e}".split())[:500]
            raise PushError(
                f"pushing {path} to {target} failed ({reason}); the generators are saved: "
                f"publish them later with `python -m img2img push {path} --repo-id {target}`"
            ) from e
    return urls
