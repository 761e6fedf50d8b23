"""Release the trained generators: RUN_DIR/weights/<name>/ in our format, optionally pushed.

Each recipe names its exports (pix2pix weights/G/; CycleGAN weights/A2B/ (G_A) and
weights/B2A/ (G_B)); `--export A2B|B2A` selects one of a pair. Each folder is config.json +
model.safetensors + a model card, which `python -m img2img translate --checkpoint
RUN_DIR/weights/G` and the app load directly.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .. import publish
from ..errors import PushError
from ..weights import model_card, save_pretrained
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
    a, b = ("B", "A") if c.direction == "BtoA" else ("A", "B")
    if folder == "B2A":
        a, b = b, a
    return f"{c.family} {data} {a} -> {b}"


def export_generators(
    nets: dict[str, nn.Module], c: TrainConfig, run_dir: Path, command: str, step: int
) -> list[Path]:
    """Write every exported generator; returns their folders."""
    paths = []
    for folder, name in export_names(c).items():
        net = nets[name]
        card = model_card(
            net.config,
            title=_title(c, folder),
            family=c.family,
            dataset=c.dataset,  # "" for a local folder: the card then says "unknown"
            train=command,
        )
        meta = {"trained_steps": step, "direction": c.direction, "preset": c.preset}
        paths.append(save_pretrained(net, run_dir / "weights" / folder, card=card, metadata=meta))
    return paths


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
