"""Train pix2pix or CycleGAN, resume exactly, export generators in the img2img format.

    python train.py pix2pix --dataset facades --direction BtoA --out runs/facades
    python train.py cyclegan --dataset horse2zebra --out runs/horse2zebra
    python train.py pix2pix --data DIR --out RUN --steps 20000     # later: ... --resume
    torchrun --nproc_per_node 4 train.py cyclegan --dataset maps --out runs/maps

config -> data -> nets -> loop(step functions) -> checkpoints -> export / push.
RUN_DIR gets config.json, checkpoints/last.pt (the whole training state), weights/ (each
generator: config.json + model.safetensors + README.md), metrics.jsonl and tb/ (TensorBoard).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import random
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from img2img import data
from img2img.errors import Img2ImgError
from img2img.training import checkpoint as ckpt
from img2img.training import distributed
from img2img.training.config import ConfigError, TrainConfig, add_config_flags, resolve
from img2img.training.distributed import World
from img2img.training.export import export_generators, export_names, push_exports
from img2img.training.metrics import validate
from img2img.training.monitor import Monitor
from img2img.training.nets import (
    build_networks,
    build_optimizers,
    build_schedulers,
    restore_schedulers,
)
from img2img.training.pool import ImagePool
from img2img.training.precision import Precision, choose_precision
from img2img.training.sampler import EpochSampler
from img2img.training.steps import cyclegan_step, pix2pix_step

# ----------------------------------------------------------------------------- config


def parse_args(argv: list[str]) -> tuple[str, dict[str, Any], bool]:
    """(family, the config flags that were given, --resume)."""
    parser = argparse.ArgumentParser(
        prog="train.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "family", choices=("pix2pix", "cyclegan"), help="what to train (its preset's defaults)"
    )
    add_config_flags(parser, skip=("family",))
    parser.add_argument(
        "--epochs", type=int, default=argparse.SUPPRESS, metavar="N",
        help="total epochs: sets --n-epochs N - N//2 and --n-epochs-decay N//2",
    )  # fmt: skip
    parser.add_argument(
        "--resume", action="store_true", help="continue RUN_DIR/checkpoints/last.pt"
    )
    args = vars(parser.parse_args(argv))
    family, resume = args.pop("family"), args.pop("resume")
    if "epochs" in args:
        total = args.pop("epochs")
        if total < 1 or {"n_epochs", "n_epochs_decay"} & args.keys():
            parser.error("--epochs takes N >= 1 and replaces --n-epochs / --n-epochs-decay")
        args.update(n_epochs=total - total // 2, n_epochs_decay=total // 2)
    return family, args, resume


@dataclass
class Progress:
    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch, 0-based
    batch: int = 0  # batches of the current epoch done (by this process)

    def advance(self, steps_per_epoch: int) -> None:
        self.step += 1
        self.batch += 1
        if self.batch == steps_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0


# ----------------------------------------------------------------------------- data


def load_data(c: TrainConfig, world: World):
    """(training set, validation set or None, whether validation pairs are real pairs)."""
    if c.dataset:
        if world.main:  # one download; the other ranks wait and then find it cached
            data.fetch_dataset(c.dataset, c.family, c.data_root, c.dataset_url_base)
        distributed.barrier(world)
        root = data.fetch_dataset(c.dataset, c.family, c.data_root, c.dataset_url_base)
    else:
        root = Path(c.data)
    layout = data.detect_layout(root, prefer="aligned" if c.family == "pix2pix" else "unaligned")
    augment = data.Augment(c.load_size, c.crop_size, c.flip)
    train_set, val_set = data.open_datasets(
        layout, c.family, c.direction, augment, c.seed, c.val_images
    )
    return train_set, val_set, layout.kind == "aligned"


def make_loader(dataset, sampler, c: TrainConfig, device: torch.device) -> DataLoader:
    # Samples are pure functions of their (epoch, index) keys, so workers can persist across
    # epochs; a private generator keeps iterator creation off the global RNG.
    return DataLoader(
        dataset,
        batch_size=c.batch_size,
        sampler=sampler,
        num_workers=c.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=c.workers > 0,
        generator=torch.Generator(),
    )


# ----------------------------------------------------------------------------- state


@dataclass
class Trainer:
    """Everything a step, a checkpoint or an export needs (no hidden per-step state)."""

    c: TrainConfig
    world: World
    device: torch.device
    run_dir: Path
    nets: dict[str, torch.nn.Module]  # plain modules: saved and exported
    runners: dict[str, torch.nn.Module]  # the same, compiled / DDP-wrapped: trained
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR]
    precision: Precision
    pools: dict[str, ImagePool]
    progress: Progress


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_trainer(c: TrainConfig, world: World, device: torch.device, run_dir: Path) -> Trainer:
    seed_everything(c.seed + world.rank)  # noise differs per rank; DDP copies rank 0's init
    nets = {k: v.to(device) for k, v in build_networks(c).items()}
    if c.channels_last:
        nets = {k: v.to(memory_format=torch.channels_last) for k, v in nets.items()}
    optimizers = build_optimizers(c, nets)
    progress = Progress()
    schedulers = build_schedulers(c, optimizers, lambda: progress.epoch)
    pools = {}
    if c.family == "cyclegan":  # each process its own pools, seeded apart
        pools = {
            d: ImagePool(c.pool_size, c.seed + 7919 * (2 * world.rank + i))
            for i, d in enumerate("AB")
        }
    precision = choose_precision(device, c.amp)
    return Trainer(
        c, world, device, run_dir, nets, {}, optimizers, schedulers, precision, pools, progress
    )


def wrap_runners(t: Trainer) -> None:
    """compile, then DDP (frozen discriminators are then called through DDP's .module)."""
    for name, net in t.nets.items():
        runner = torch.compile(net) if t.c.compile else net
        t.runners[name] = distributed.wrap(runner, t.world, t.device)


def rank_state(t: Trainer) -> dict[str, Any]:
    return {"rng": ckpt.rng_state(), "pools": {k: p.state_dict() for k, p in t.pools.items()}}


def restore(t: Trainer, saved: dict[str, Any]) -> None:
    for name, net in t.nets.items():
        net.load_state_dict(saved["nets"][name])
    for name, optimizer in t.optimizers.items():
        optimizer.load_state_dict(saved["optimizers"][name])
    if saved["scaler"]:
        t.precision.scaler.load_state_dict(saved["scaler"])
    t.progress.__dict__.update(saved["progress"])
    restore_schedulers(t.schedulers, saved["schedulers"], t.progress.epoch)
    ranks = saved["ranks"]
    if len(ranks) != t.world.size:  # another sharding: restart the epoch, fresh noise
        print(f"note: resuming a {len(ranks)}-process run on {t.world.size}: epoch restarts")
        t.progress.batch = 0
        return
    ckpt.set_rng_state(ranks[t.world.rank]["rng"])
    for name, pool in t.pools.items():
        pool.load_state_dict(ranks[t.world.rank]["pools"][name], t.device)


def save(t: Trainer, val_set, paired: bool, monitor: Monitor | None, command: str) -> None:
    """Checkpoint (all ranks' RNG and pools, rank 0 writes), validate, export."""
    ranks = distributed.all_gather(rank_state(t), t.world)
    if not t.world.main:
        return
    metrics: dict[str, float] = {}
    if val_set is not None:
        metrics, grid = validate(t.nets, val_set, paired, t.device)
        monitor.validation(t.progress.step, metrics, grid)
    state = {
        "config": asdict(t.c),
        "progress": asdict(t.progress),
        "nets": {k: v.state_dict() for k, v in t.nets.items()},
        "optimizers": {k: v.state_dict() for k, v in t.optimizers.items()},
        "schedulers": {k: v.state_dict() for k, v in t.schedulers.items()},
        "scaler": t.precision.scaler.state_dict(),
        "ranks": ranks,
        "val": metrics,
        "command": command,
    }
    ckpt.save_checkpoint(state, ckpt.checkpoint_path(t.run_dir))
    export_generators(t.nets, t.c, t.run_dir, command, t.progress.step)


# ----------------------------------------------------------------------------- loop


def train_loop(
    t: Trainer, loader, sampler, steps_per_epoch: int, total: int, monitor, on_save
) -> None:
    """Steps until `total`, resuming inside an epoch; on_save() every save_every and at the end."""
    c, progress = t.c, t.progress
    fmt = torch.channels_last if c.channels_last else torch.contiguous_format
    while progress.step < total:
        sampler.set_epoch(progress.epoch, start=progress.batch * c.batch_size)
        for batch in loader:
            A, B = (batch[k].to(t.device, non_blocking=True, memory_format=fmt) for k in "AB")
            if c.family == "pix2pix":
                losses = pix2pix_step(t.runners, t.optimizers, A, B, c, t.precision)
            else:
                losses = cyclegan_step(t.runners, t.optimizers, t.pools, A, B, c, t.precision)
            progress.advance(steps_per_epoch)
            for scheduler in t.schedulers.values():
                scheduler.step()
            if monitor is not None:
                lr = t.optimizers["G"].param_groups[0]["lr"]
                monitor.step(progress.step, progress.epoch, losses, lr)
            if progress.step % c.save_every == 0 or progress.step == total:
                on_save()
            if progress.step >= total:
                break


def weights_hash(nets: dict[str, torch.nn.Module]) -> str:
    digest = hashlib.sha256()
    for name in sorted(nets):
        for key, p in nets[name].named_parameters():
            digest.update(key.encode() + p.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def check_in_sync(t: Trainer, monitor: Monitor | None) -> None:
    """Under torchrun: every rank must end with identical weights (recorded in metrics.jsonl)."""
    if not t.world.distributed:
        return
    hashes = distributed.all_gather(weights_hash(t.nets), t.world)
    if monitor is not None:
        monitor.write(
            {
                "step": t.progress.step,
                "ranks": len(hashes),
                "in_sync": len(set(hashes)) == 1,
                "hashes": hashes,
            },
            "ddp",
        )
    if len(set(hashes)) != 1:
        raise RuntimeError(f"ranks ended with different weights: {hashes}")


# ----------------------------------------------------------------------------- main


def run(family: str, given: dict[str, Any], resume: bool, command: str) -> int:
    run_dir = Path(given.get("out", "") or ".")
    path = ckpt.checkpoint_path(run_dir)
    if not resume and path.exists():
        raise ConfigError(f"{run_dir} already holds a run: pass --resume, or choose another --out")
    saved = ckpt.load_checkpoint(path) if resume else None
    c = resolve(family, given, saved["config"] if saved else None)
    if saved:  # the model card shows how the run began and how it was continued
        command = f"{saved.get('command', '')}\n{command}".strip()
    world = distributed.setup(c.device)
    try:
        return _run(c, world, run_dir, saved, command)
    finally:
        distributed.teardown(world)


def _run(c: TrainConfig, world: World, run_dir: Path, saved, command: str) -> int:
    device = distributed.choose_device(c.device, world)
    train_set, val_set, paired = load_data(c, world)
    sampler = EpochSampler(len(train_set), c.seed, world.rank, world.size)
    loader = make_loader(train_set, sampler, c, device)
    steps_per_epoch = math.ceil(sampler.per_rank / c.batch_size)
    epochs_total = (c.n_epochs + c.n_epochs_decay) * steps_per_epoch
    total = min(c.steps, epochs_total) if c.steps else epochs_total
    t = build_trainer(c, world, device, run_dir)
    if saved is not None:
        restore(t, saved)
    wrap_runners(t)
    monitor = None
    if world.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(asdict(c), indent=2) + "\n")
        ckpt.remove_stale_temporaries(run_dir / "checkpoints")
        monitor = Monitor(run_dir, total, t.progress.step, c.log_every)
        print(
            f"{c.family} ({c.preset}) on {device}, {t.precision.name}, {world.size} process(es),"
            f" {len(train_set)} samples, {steps_per_epoch} steps/epoch:"
            f" step {t.progress.step} -> {total}"
        )
        if t.precision.note:
            print(f"note: {t.precision.note}")

    def on_save() -> None:
        save(t, val_set, paired, monitor, command)

    try:
        if t.progress.step < total:
            train_loop(t, loader, sampler, steps_per_epoch, total, monitor, on_save)
        check_in_sync(t, monitor)
    except BaseException:  # flush the logs, end the bar's line; the first error is the one
        if monitor is not None:
            with contextlib.suppress(OSError):
                monitor.close()
        raise
    if world.main:
        monitor.close()
        if c.push_to_hub:
            paths = [run_dir / "weights" / folder for folder in export_names(c)]
            for url in push_exports(paths, c.push_to_hub):
                print(f"pushed: {url}")
        print(f"done: step {t.progress.step}; generators in {run_dir / 'weights'}")
    return 0


def error_message(e: BaseException) -> str:
    """Our message; a DataLoader worker re-raises ours with its traceback in front of it."""
    text = str(e)
    if "Original Traceback" in text:
        text = text.strip().splitlines()[-1].split(": ", 1)[-1]
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    family, given, resume = parse_args(argv)
    try:
        return run(family, given, resume, "python train.py " + shlex.join(argv))
    except Img2ImgError as e:
        print(f"error: {error_message(e)}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full while logging, unreadable folder, ...: no traceback
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
