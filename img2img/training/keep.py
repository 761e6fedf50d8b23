"""What a run keeps besides its last state: the best generators by validation, the last N
checkpoints.

`--keep-best METRIC` (training/metrics.py BEST_METRICS: l1, psnr, ssim; fid, kid where
validation computes them). After each validation whose value under `metrics.best_key`
(PSNR; CycleGAN: A2B_PSNR) beats the best so far in the metric table's direction, the
generators of that step become the best: their weights go into every later checkpoint
(`"best"`: metric, key, step, value, generator state dicts), so a resumed run continues the
record and can always rewrite the export; metrics.jsonl gets a `"kind": "best"` record, and
weights/<folder>-best/ (beside weights/<folder>/; CycleGAN: both generators of that step)
gets them with a card and config.json naming the metric, value and step. The order of a save
is: validate, checkpoint (recording the best), last exports, best exports; a kill in between
is completed by --resume (`complete`), as for the last exports. A stop by a signal saves
without validation, so it never changes the best. Ties keep the earlier step.

`--keep-last N`: after each checkpoint, checkpoints/step-<8 digits>.pt is a hard link to
last.pt (a copy where links are not possible), and all but the newest N such files are
removed; last.pt itself is never removed. To continue from an older one, copy it over
last.pt and pass --resume.
"""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import export
from .config import TrainConfig
from .metrics import best_key, improves

SUFFIX = "-best"  # weights/<folder>-best/


@dataclass
class Best:
    """The best validation so far, and the generators that made it (CPU state dicts)."""

    metric: str  # the --keep-best word (psnr)
    key: str  # the validation record's key (PSNR, A2B_PSNR)
    step: int | None = None
    value: float | None = None
    nets: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        """The checkpoint's "best" entry (plain values and tensors)."""
        return {
            "metric": self.metric,
            "key": self.key,
            "step": self.step,
            "value": self.value,
            "nets": self.nets,
        }


def start(c: TrainConfig, saved: dict[str, Any] | None) -> Best | None:
    """The run's Best: None without --keep-best; the checkpoint's record on resume."""
    if not c.keep_best:
        return None
    best = Best(c.keep_best, best_key(c.family, c.keep_best))
    record = (saved or {}).get("best")
    if record and record.get("metric") == best.metric:
        best.step, best.value, best.nets = record["step"], record["value"], record["nets"]
    return best


def consider(
    best: Best, step: int, metrics: dict[str, float], nets: dict[str, nn.Module], c: TrainConfig
) -> bool:
    """Take `step` as the best if its `metrics` beat the record; whether it did."""
    if best.key not in metrics or not improves(best.metric, metrics[best.key], best.value):
        return False
    best.step, best.value = step, float(metrics[best.key])
    best.nets = {
        name: {k: v.detach().cpu().clone() for k, v in nets[name].state_dict().items()}
        for name in export.export_names(c).values()
    }
    return True


def missing_key_note(best: Best, metrics: dict[str, float]) -> str:
    """A note when a validation did not compute the metric --keep-best reads ("" if it did)."""
    if not metrics or best.key in metrics:
        return ""
    return (
        f"note: --keep-best {best.metric}: this validation has no {best.key} "
        f"(it has {', '.join(sorted(metrics))}); the best is unchanged"
    )


def best_nets(best: Best, nets: dict[str, nn.Module]) -> dict[str, nn.Module]:
    """Copies of the exported generators holding the best step's weights."""
    out = {}
    for name, state in best.nets.items():
        net = copy.deepcopy(nets[name]).cpu()
        net.load_state_dict(state)
        out[name] = net
    return out


def _card(best: Best) -> tuple[tuple[str, ...], dict[str, Any]]:
    note = (
        f"checkpoint choice: the best validation {best.key} ({best.metric}, "
        f"--keep-best) so far, {best.value:.6g} at step {best.step}"
    )
    extra = {"best_metric": best.metric, "best_key": best.key, "best_value": best.value}
    return (note,), extra


def write(
    best: Best, nets: dict[str, nn.Module], c: TrainConfig, run_dir: Path, command: str,
    folders: list[str] | None = None,
) -> list[Path]:  # fmt: skip
    """Export the best generators to weights/<folder>-best/ (nothing before a first best)."""
    if best.step is None:
        return []
    notes, extra = _card(best)
    chosen = best_nets(best, nets)
    return export.export_generators(
        chosen, c, run_dir, command, best.step, folders, SUFFIX, notes, extra
    )


def complete(best: Best | None, nets, c: TrainConfig, run_dir: Path, command: str) -> None:
    """Write again the best exports that do not hold the checkpoint's best (rank 0)."""
    if best is None or best.step is None:
        return
    stale = export.stale_exports(best_nets(best, nets), c, run_dir, best.step, SUFFIX)
    for folder, why in stale.items():
        print(f"note: weights/{folder}{SUFFIX} is not the checkpoint's best ({why}): exporting")
    if stale:
        write(best, nets, c, run_dir, command, list(stale))


# ----------------------------------------------------------------------------- --keep-last


def step_path(checkpoints: Path, step: int) -> Path:
    return checkpoints / f"step-{step:08d}.pt"


def keep_last(last: Path, step: int, n: int) -> None:
    """checkpoints/step-<step>.pt as a link to (or copy of) `last`, then the newest `n`
    step files kept (n 0: none are made)."""
    if n <= 0:
        return
    target = step_path(last.parent, step)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(last, temporary)
    except OSError:  # no hard links here (some network file systems): a copy
        shutil.copyfile(last, temporary)
    os.replace(temporary, target)
    for old in sorted(last.parent.glob("step-*.pt"))[:-n]:
        old.unlink(missing_ok=True)


def remove_stale_temporaries(checkpoints: Path) -> None:
    """Delete step-file temporaries a killed run left behind."""
    for path in checkpoints.glob(".step-*.pt.tmp"):
        path.unlink(missing_ok=True)
