"""Seeing progress: a tqdm bar (losses, it/s, ETA), TensorBoard, and RUN_DIR/metrics.jsonl.

Only rank 0 monitors. Losses arrive as device tensors every step and are read back to the
host only every `log_every` steps (one sync), averaged over the steps since the previous
multiple of `log_every`: a record at step S averages steps S - log_every + 1 ... S. The
losses of the steps since the last record go into every checkpoint (`pending_state`), so a
run resumed from step N averages exactly the steps an uninterrupted run averages and writes
the same train records. A resumed run repeats the steps after N: their records from the
interrupted run are dropped from metrics.jsonl and purged from TensorBoard, so each step is
logged once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..atomic import write_text


class Monitor:
    def __init__(
        self,
        run_dir: Path,
        total: int,
        initial: int,
        log_every: int,
        pending: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """`pending`: a checkpoint's pending_state(): losses not yet logged at step `initial`."""
        self.run_dir, self.log_every = run_dir, log_every
        self.bar = tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)
        drop_records_after(run_dir / "metrics.jsonl", initial)
        self.jsonl = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self.writer = _summary_writer(run_dir / "tb", purge_step=initial + 1)
        self.pending = {k: list(v.unbind()) for k, v in (pending or {}).items()}
        self.started = time.perf_counter()

    def step(self, step: int, epoch: int, losses: dict[str, torch.Tensor], lr: float) -> None:
        """Record one step; every `log_every` steps write the averaged losses."""
        for name, value in losses.items():
            self.pending.setdefault(name, []).append(value)
        self.bar.update(1)
        if step % self.log_every:
            return
        # Restored values are on the CPU; each series is stacked where its newest value is.
        means = {
            k: torch.stack([x.to(v[-1].device) for x in v]).float().mean().item()
            for k, v in self.pending.items()
        }
        self.pending.clear()
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()}, refresh=False)
        self.write({"step": step, "epoch": epoch, "lr": lr, **means}, "train")

    def pending_state(self) -> dict[str, torch.Tensor]:
        """{loss: (n,) CPU tensor} of the steps since the last record, for the checkpoint."""
        return {k: torch.stack([x.detach().cpu() for x in v]) for k, v in self.pending.items()}

    def validation(self, step: int, metrics: dict[str, float], grid: torch.Tensor | None) -> None:
        self.write({"step": step, **metrics}, "val")
        if grid is not None and self.writer is not None:
            self.writer.add_image("val/samples", grid, step)
        if metrics:
            text = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            tqdm.write(f"validation at step {step}: {text}")

    def write(self, record: dict[str, Any], kind: str) -> None:
        record = {"kind": kind, "time": round(time.perf_counter() - self.started, 3), **record}
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()
        if self.writer is not None:
            for key, value in record.items():
                if key not in ("kind", "step", "time") and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{kind}/{key}", value, record["step"])

    def close(self) -> None:
        self.bar.close()
        self.jsonl.close()
        if self.writer is not None:
            self.writer.close()


def drop_records_after(path: Path, step: int) -> None:
    """Keep the records of steps <= `step` (and drop a line cut short by a kill)."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)

    def kept(line: str) -> bool:
        try:
            return json.loads(line)["step"] <= step
        except (ValueError, KeyError, TypeError):
            return False

    keep = [line.rstrip("\n") + "\n" for line in lines if kept(line)]
    if keep != lines:
        write_text(path, "".join(keep))


def _summary_writer(path: Path, purge_step: int):
    """A TensorBoard writer, or None (with a note) when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        tqdm.write("tensorboard is not installed: scalars go to metrics.jsonl only")
        return None
    return SummaryWriter(str(path), purge_step=purge_step)
