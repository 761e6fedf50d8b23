"""The training run: state, restore, the loop around the recipe's step, checkpoints, export.

run() -> lock RUN_DIR -> config (fresh, or the checkpoint's on --resume) -> data -> Trainer
(nets, optimizers, schedulers, pools from the family's recipe) -> exports brought up to the
checkpoint -> train_loop -> save() every save_every steps, at the end and on SIGTERM / SIGINT
(checkpoint, validation, export) -> push. Everything a step needs is in the Trainer; nothing
is carried between steps outside it. RUN_DIR gets train.lock, config.json,
checkpoints/last.pt, weights/<folder>/, metrics.jsonl and tb/ (and, with --keep-best /
--keep-last, weights/<folder>-best/ and checkpoints/step-N.pt: training/keep.py).

A run is done when its exports hold its last checkpoint's generators: every save writes the
checkpoint, then the exports; a resumed run first exports again whatever is missing or
behind (a process killed in between, a full disk), so `--resume` of a finished run
completes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import checkpoint as ckpt
from . import distributed, export, keep, runlock
from .config import ConfigError, TrainConfig, resolve
from .distributed import World
from .export import export_generators, export_names, push_exports
from .interrupt import StopRequest, stop_on_signals
from .loader import load_data, make_loader
from .metrics import distribution_wanted, validate
from .monitor import Monitor
from .nets import build_schedulers, restore_schedulers
from .pool import ImagePool
from .precision import Precision, choose_precision
from .progress import Progress, fit_position
from .recipes import Recipe, recipe
from .sampler import EpochSampler

# ----------------------------------------------------------------------------- state


@dataclass
class Trainer:
    """Everything a step, a checkpoint or an export needs (no hidden per-step state)."""

    c: TrainConfig
    recipe: Recipe  # the family's networks, optimizers, pools, step, metrics, exports
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
    best: keep.Best | None = None  # --keep-best's record (training/keep.py)
    fixed: dict[str, torch.nn.Module] = field(default_factory=dict)  # used, never trained (T)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_trainer(c: TrainConfig, world: World, device: torch.device, run_dir: Path) -> Trainer:
    """Fresh state for `c.family` from its recipe, seeded; `runners` are filled by wrap_runners."""
    r = recipe(c)
    seed_everything(c.seed + world.rank)  # noise differs per rank; DDP copies rank 0's init
    nets = {k: v.to(device) for k, v in r.networks(c).items()}
    if c.channels_last:
        nets = {k: v.to(memory_format=torch.channels_last) for k, v in nets.items()}
    optimizers = r.optimizers(c, nets)
    progress = Progress()
    schedulers = build_schedulers(c, optimizers, lambda: progress.epoch)
    n = len(r.pools)  # each process its own pools, seeded apart
    pools = {
        side: ImagePool(c.pool_size, c.seed + 7919 * (n * world.rank + i))
        for i, side in enumerate(r.pools)
    }
    precision = choose_precision(device, c.amp)
    fixed = r.fixed_networks(c, device)
    return Trainer(
        c, r, world, device, run_dir, nets, {}, optimizers, schedulers, precision, pools, progress,
        fixed=fixed,
    )  # fmt: skip


def wrap_runners(t: Trainer) -> None:
    """compile, then DDP (frozen discriminators are then called through DDP's .module)."""
    for name, net in t.nets.items():
        runner = torch.compile(net) if t.c.compile else net
        t.runners[name] = distributed.wrap(runner, t.world, t.device)
    t.runners.update(t.fixed)  # no gradients: nothing for DDP to synchronise


def rank_state(t: Trainer) -> dict[str, Any]:
    """What differs per process: its RNG states and image pools."""
    return {"rng": ckpt.rng_state(), "pools": {k: p.state_dict() for k, p in t.pools.items()}}


def training_state(
    t: Trainer, ranks: list[dict[str, Any]], metrics: dict[str, float], command: str
) -> dict[str, Any]:
    """The resume checkpoint's contents (plain values and tensors): `restore` reads it back."""
    return {
        "config": asdict(t.c),
        "progress": asdict(t.progress),
        "nets": {k: v.state_dict() for k, v in t.nets.items()},
        "optimizers": {k: v.state_dict() for k, v in t.optimizers.items()},
        "schedulers": {k: v.state_dict() for k, v in t.schedulers.items()},
        "scaler": t.precision.scaler.state_dict(),
        "ranks": ranks,  # rank_state() of every process, in rank order
        "val": metrics,
        "command": command,
        **({"best": t.best.state()} if t.best is not None else {}),
    }


def restore(t: Trainer, saved: dict[str, Any], samples: int = 0, steps_per_epoch: int = 0) -> None:
    """Load a training_state into a freshly built (not yet wrapped) trainer.

    `samples` / `steps_per_epoch` (the training set found now): fit the position to them.
    """
    for name, net in t.nets.items():
        net.load_state_dict(saved["nets"][name])
    for name, optimizer in t.optimizers.items():
        optimizer.load_state_dict(saved["optimizers"][name])
    if saved["scaler"]:
        t.precision.scaler.load_state_dict(saved["scaler"])
    t.progress.__dict__.update({"samples": 0, **saved["progress"]})  # 0: not recorded
    note = fit_position(t.progress, samples, steps_per_epoch) if steps_per_epoch else ""
    if note and t.world.main:
        print(note)
    restore_schedulers(t.schedulers, saved["schedulers"])  # reads the restored progress.epoch
    ranks = saved["ranks"]
    if len(ranks) != t.world.size:  # another sharding: restart the epoch, fresh noise
        if t.world.main:
            print(f"note: resuming a {len(ranks)}-process run on {t.world.size}: epoch restarts")
        t.progress.batch = 0
        return
    ckpt.set_rng_state(ranks[t.world.rank]["rng"])
    for name, pool in t.pools.items():
        pool.load_state_dict(ranks[t.world.rank]["pools"][name], t.device)


def save(
    t: Trainer, val_set, paired: bool, monitor: Monitor | None, command: str, check: bool = True
) -> None:
    """Checkpoint (all ranks' RNG and pools, rank 0 writes), validate (if `check`), export."""
    ranks = distributed.all_gather(rank_state(t), t.world)
    if not t.world.main:
        return
    metrics: dict[str, float] = {}
    improved = False
    if val_set is not None and check:
        nets = {**t.nets, **t.fixed}
        metrics, grid = validate(nets, val_set, paired, t.device, t.recipe.validate_batch)
        monitor.validation(t.progress.step, metrics, grid)
        if t.best is not None:
            improved = keep.consider(t.best, t.progress.step, metrics, t.nets, t.c)
            note = keep.missing_key_note(t.best, metrics)
            if note:
                print(note)
    state = training_state(t, ranks, metrics, command)
    if monitor is not None:  # the losses that the next record averages
        state["log_pending"] = monitor.pending_state()
    path = ckpt.checkpoint_path(t.run_dir)
    ckpt.save_checkpoint(state, path)
    keep.keep_last(path, t.progress.step, t.c.keep_last)
    export_generators(t.nets, t.c, t.run_dir, command, t.progress.step, metrics=metrics)
    if improved:
        keep.write(t.best, t.nets, t.c, t.run_dir, command)
        record = {"step": t.progress.step, "metric": t.best.metric, "key": t.best.key}
        monitor.write({**record, "value": t.best.value}, "best")


def complete_exports(t: Trainer, command: str, metrics: dict[str, float]) -> None:
    """Export again what does not hold the restored checkpoint's generators (rank 0)."""
    export.remove_stale_temporaries(t.c, t.run_dir)
    stale = export.stale_exports(t.nets, t.c, t.run_dir, t.progress.step)
    for folder, why in stale.items():
        print(f"note: weights/{folder} is not the checkpoint's ({why}): exporting it again")
    if stale:
        export_generators(
            t.nets, t.c, t.run_dir, command, t.progress.step, list(stale), metrics=metrics
        )
    keep.complete(t.best, t.nets, t.c, t.run_dir, command)


# ----------------------------------------------------------------------------- loop


def train_loop(
    t: Trainer,
    loader,
    sampler,
    steps_per_epoch: int,
    total: int,
    monitor,
    on_save,
    stop: StopRequest,
) -> bool:
    """Steps until `total`, resuming inside an epoch; on_save(validate) every save_every, at
    the end, and after the step during which `stop` (a StopRequest) got a signal (then
    without validation). Returns whether it stopped early."""
    c, progress = t.c, t.progress
    fmt = torch.channels_last if c.channels_last else torch.contiguous_format
    while progress.step < total:
        sampler.set_epoch(progress.epoch, start=progress.batch * c.batch_size)
        before = progress.step
        for batch in loader:
            A, B = (batch[k].to(t.device, non_blocking=True, memory_format=fmt) for k in "AB")
            losses = t.recipe.step(t.runners, t.optimizers, t.pools, A, B, c, t.precision)
            progress.advance(steps_per_epoch)
            for scheduler in t.schedulers.values():
                scheduler.step()
            if monitor is not None:
                lr = t.optimizers["G"].param_groups[0]["lr"]
                monitor.step(progress.step, progress.epoch, losses, lr)
            stopping = distributed.any_rank(bool(stop.signum), t.world)
            early = stopping and progress.step < total
            if progress.step % c.save_every == 0 or progress.step == total or early:
                on_save(not early)  # a stop skips validation: the scheduler's clock runs
            if early:
                return True
            if progress.step >= total:
                break
        if progress.step == before:  # never spin on an empty epoch
            raise RuntimeError(f"epoch {progress.epoch} from batch {progress.batch} is empty")
    return False


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


# ----------------------------------------------------------------------------- run


def run(family: str, given: dict[str, Any], resume: bool, command: str) -> int:
    """Train `family` with the `given` flags (a new run, or continue RUN_DIR on `resume`).

    `command` is recorded in the checkpoint and the model cards. Returns the exit status;
    raises Img2ImgError subclasses for what the user can fix.
    """
    if not given.get("out"):
        raise ConfigError("--out RUN_DIR is required")
    run_dir = Path(given["out"])
    path = ckpt.checkpoint_path(run_dir)
    if not resume:  # a flag that cannot work creates nothing
        resolve(family, given, None)
        run_dir.mkdir(parents=True, exist_ok=True)
    # Locked before anything in RUN_DIR is read or written (rank 0 alone writes there); a
    # --resume of a folder that does not exist fails below with "no checkpoint".
    locked = distributed.launched_rank() == 0 and run_dir.is_dir()
    with runlock.hold(run_dir) if locked else contextlib.nullcontext():
        if not resume and path.exists():
            raise ConfigError(
                f"{run_dir} already holds a run: pass --resume, or choose another --out"
            )
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
    train_set, val_set, paired = (recipe(c).data or load_data)(c, world)
    sampler = EpochSampler(len(train_set), c.seed, world.rank, world.size)
    loader = make_loader(train_set, sampler, c, device)
    steps_per_epoch = math.ceil(sampler.per_rank / c.batch_size)
    epochs_total = (c.n_epochs + c.n_epochs_decay) * steps_per_epoch
    total = min(c.steps, epochs_total) if c.steps else epochs_total
    t = build_trainer(c, world, device, run_dir)
    t.best = keep.start(c, saved)
    _check_keep_best(c, val_set, paired, device)
    t.progress.samples = len(train_set)
    if saved is not None:  # fits the saved position to the set found now
        restore(t, saved, len(train_set), steps_per_epoch)
    wrap_runners(t)
    monitor = None
    stopped = False
    # Signals are watched from before the bar is drawn: a SIGTERM as soon as the run shows
    # it started still ends with a step done, saved, and exit 0 (not a kill).
    with contextlib.ExitStack() as watch:
        stop = watch.enter_context(
            stop_on_signals(announce=world.main, repeat_aborts=not world.distributed)
        )
        try:
            if world.main:
                (run_dir / "config.json").write_text(json.dumps(asdict(c), indent=2) + "\n")
                ckpt.remove_stale_temporaries(run_dir / "checkpoints")
                keep.remove_stale_temporaries(run_dir / "checkpoints")
                if saved is not None:
                    complete_exports(t, command, saved.get("val", {}))
                pending = saved.get("log_pending") if saved is not None else None
                monitor = Monitor(run_dir, total, t.progress.step, c.log_every, pending)
                print(
                    f"{c.family} ({c.preset}) on {device}, {t.precision.name}, "
                    f"{world.size} process(es), {len(train_set)} samples, "
                    f"{steps_per_epoch} steps/epoch: step {t.progress.step} -> {total}"
                )
                if t.precision.note:
                    print(f"note: {t.precision.note}")

            def on_save(check: bool) -> None:
                save(t, val_set, paired, monitor, command, check)

            if t.progress.step < total:
                stopped = train_loop(
                    t, loader, sampler, steps_per_epoch, total, monitor, on_save, stop
                )
            check_in_sync(t, monitor)
            if world.main:
                monitor.close()
        except BaseException:  # flush the logs, end the bar's line; the first error is the one
            if monitor is not None:
                with contextlib.suppress(OSError):
                    monitor.close()
            raise
    if world.main:
        _report(t, stop, stopped, total)
    return 0


def _check_keep_best(c: TrainConfig, val_set, paired: bool, device: torch.device) -> None:
    """ConfigError when validation will not compute what --keep-best reads."""
    if not c.keep_best:
        return
    if val_set is None:
        raise ConfigError(
            f"--keep-best {c.keep_best} needs held-out images: a val/ (or test/) folder beside "
            "train/ (valA/ + valB/ or testA/ + testB/ for unpaired data)"
        )
    if c.keep_best in ("fid", "kid"):
        if c.family != "cyclegan" or not distribution_wanted(device):
            raise ConfigError(
                f"--keep-best {c.keep_best}: validation computes FID / KID for CycleGAN on a "
                "GPU with the Inception weights cached only; choose l1, psnr or ssim"
            )
    elif not paired:
        raise ConfigError(
            f"--keep-best {c.keep_best} compares outputs with targets: the held-out images "
            "must be pairs (an aligned val/ folder)"
        )


def _report(t: Trainer, stop: StopRequest, stopped: bool, total: int) -> None:
    """The last line (rank 0); push to the Hub when the run is complete."""
    c, run_dir, step = t.c, t.run_dir, t.progress.step
    if stopped:
        again = shlex.join(["python", "train.py", c.family, "--out", str(run_dir), "--resume"])
        print(
            f"stopped by {stop.name} at step {step} of {total}: checkpoint and generators "
            f"saved in {run_dir}; continue with: {again}"
        )
        return
    if c.push_to_hub:
        paths = [run_dir / "weights" / folder for folder in export_names(c)]
        for url in push_exports(paths, c.push_to_hub):
            print(f"pushed: {url}")
    print(f"done: step {step}; generators in {run_dir / 'weights'}")
