"""Training runs interrupted and misused for real: SIGTERM mid-run, Ctrl-C to the process group
with loader workers, a second signal, SIGKILL between the checkpoint and the export, a full
disk (a real small tmpfs) during the export, a second train.py on the same --out, and a
dataset that shrank before --resume.

Every run trains the same tiny pix2pix (U-Net of 5 levels, 32 x 32 crops, 6 training
images) for 40 steps, logging every 3 steps and saving every 20, in a subprocess started
as a user starts it. An interrupted run, once resumed, must end with the uninterrupted
run's weights byte for byte, its whole training state, and its train records in
metrics.jsonl (the checkpoint at step 20 falls inside a 3-step logging window).
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
import torch
from helpers.datasets import aligned_files, write_files
from helpers.train_proc import (
    children,
    finish,
    grow,
    one_line_error,
    open_files,
    run,
    same_training_state,
    small_tmpfs,
    start,
    train_cmd,
    train_records,
    user_env,
    wait_until,
)
from safetensors.torch import load_file

from img2img.training import checkpoint as ckpt
from img2img.training import runlock
from img2img.training.progress import Progress, fit_position
from img2img.training.sampler import EpochSampler

pytestmark = pytest.mark.slow

STEPS = 40
TINY = ["--seed", "0", "--ngf", "8", "--ndf", "8", "--num-downs", "5", "--load-size", "36"]
TINY += ["--crop-size", "32", "--workers", "0", "--log-every", "3", "--save-every", "20"]
WEIGHTS = "weights/G/model.safetensors"


def train(data: Path, out: Path, *extra: str) -> list[str]:
    """train.py on `data` into `out`, tiny; later flags in `extra` override TINY's."""
    return train_cmd("pix2pix", "--data", str(data), "--out", str(out), *TINY, *extra)


def resume(out: Path, *extra: str) -> list[str]:
    return train_cmd("pix2pix", "--out", str(out), "--resume", *extra)


def saved_step(out: Path) -> int:
    return ckpt.load_checkpoint(ckpt.checkpoint_path(out))["progress"]["step"]


def logged(out: Path, step: int) -> bool:
    """Whether the train record of `step` is in metrics.jsonl."""
    return any(r["step"] >= step for r in train_records(out))


def same_run(a: Path, b: Path, val: bool = True) -> None:
    """Byte-identical exports, identical training state, identical train records (and
    validation records: a stop skips validation, so they are the scheduled ones)."""
    assert (a / WEIGHTS).read_bytes() == (b / WEIGHTS).read_bytes()
    same_training_state(a, b)
    assert train_records(a) == train_records(b)
    if val:
        assert train_records(a, "val") == train_records(b, "val")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_files(tmp_path_factory.mktemp("data"), aligned_files("set", n_train=6)) / "set"


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory) -> Path:
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("straight") / "run"
    rc, _, err = run(train(data, out, "--steps", str(STEPS)), user_env())
    assert rc == 0, err[-3000:]
    assert [r["step"] for r in train_records(out)] == list(range(3, STEPS + 1, 3))
    assert [r["step"] for r in train_records(out, "val")] == [20, 40]
    return out


# --- SIGTERM / SIGINT: finish the step, save, exit 0; a second signal aborts ----------------


def test_sigterm_mid_run_saves_and_the_resumed_run_is_the_uninterrupted_one(
    data, straight, tmp_path
):
    out = tmp_path / "run"
    proc = start(train(data, out, "--steps", str(STEPS)), user_env())
    wait_until(lambda: logged(out, 3), proc, "a train record")
    proc.send_signal(signal.SIGTERM)
    rc, stdout, err = finish(proc)
    assert rc == 0, err[-3000:]
    step = saved_step(out)
    assert 3 <= step < STEPS
    assert stdout.strip().splitlines()[-1] == (
        f"stopped by SIGTERM at step {step} of {STEPS}: checkpoint and generators saved in "
        f"{out}; continue with: python train.py pix2pix --out {out} --resume"
    )
    assert "SIGTERM: stopping after this step (checkpoint and export)" in err
    assert "Traceback" not in err
    state = ckpt.load_checkpoint(ckpt.checkpoint_path(out))["nets"]["G"]
    exported = load_file(out / WEIGHTS)
    assert all(torch.equal(exported[k], v) for k, v in state.items())  # the export is current
    rc, stdout, err = run(resume(out), user_env())
    assert rc == 0, err[-3000:]
    assert f"step {step} -> {STEPS}" in stdout and "exporting it again" not in stdout
    same_run(out, straight)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_to_the_process_group_with_loader_workers_stops_cleanly(
    data, straight, tmp_path, sig
):
    """A terminal's Ctrl-C sends SIGINT to every process of the group, SLURM its SIGTERM to
    every process of the job: the workers ignore it (no traceback from them, no failed step),
    the training process saves and exits 0, and the workers end with it."""
    out = tmp_path / "run"
    proc = start(train(data, out, "--steps", str(STEPS), "--workers", "2"), user_env(), 0, True)
    wait_until(lambda: logged(out, 3), proc, "a train record")
    workers = children(proc.pid)
    assert len(workers) == 2
    os.killpg(proc.pid, sig)
    rc, stdout, err = finish(proc)
    assert rc == 0, err[-3000:]
    assert f"{sig.name}: stopping after this step" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert stdout.strip().splitlines()[-1].startswith(f"stopped by {sig.name} at step ")
    wait_until(lambda: not any(Path(f"/proc/{w}").exists() for w in workers), None, "exits")
    rc, _, err = run(resume(out, "--workers", "2"), user_env())
    assert rc == 0, err[-3000:]
    same_run(out, straight)


def test_a_second_signal_aborts_at_once_and_the_last_checkpoint_resumes(data, straight, tmp_path):
    """SIGINT and SIGTERM both pending (the process is stopped while they are sent), so the
    second arrives while the first is being honoured: exit 128 + signal at once, one line,
    nothing written; --resume continues the checkpoint of step 20 exactly."""
    out = tmp_path / "run"
    proc = start(train(data, out, "--steps", str(STEPS)), user_env())
    wait_until(lambda: logged(out, 21), proc, "the record after the checkpoint of step 20")
    os.kill(proc.pid, signal.SIGSTOP)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCONT):
        os.kill(proc.pid, sig)
    rc, stdout, err = finish(proc)
    assert rc in (128 + signal.SIGINT, 128 + signal.SIGTERM), err[-3000:]
    assert err.rstrip().endswith("again: aborted (work since the last checkpoint is lost)")
    assert "Traceback" not in err and "stopped by" not in stdout
    assert saved_step(out) == 20
    rc, stdout, err = run(resume(out), user_env())
    assert rc == 0, err[-3000:]
    assert f"step 20 -> {STEPS}" in stdout
    same_run(out, straight)


def test_train_records_after_a_resume_are_the_uninterrupted_runs(data, straight, tmp_path):
    """Stopped at step 22 (records at 3 ... 21; step 22's losses not logged yet), resumed to
    40: the record of step 24 averages steps 22-24, as the uninterrupted run's does."""
    out = tmp_path / "run"
    rc, _, err = run(train(data, out, "--steps", "22"), user_env())
    assert rc == 0, err[-3000:]
    pending = ckpt.load_checkpoint(ckpt.checkpoint_path(out))["log_pending"]
    assert {k: v.shape for k, v in pending.items()} == dict.fromkeys(
        ("D_real", "D_fake", "G_GAN", "G_L1"), (1,)
    )
    rc, _, err = run(resume(out, "--steps", str(STEPS)), user_env())
    assert rc == 0, err[-3000:]
    same_run(out, straight, val=False)  # the first part ended (and validated) at step 22


# --- a finished run always ends with its model ------------------------------------------------


def test_sigkill_between_checkpoint_and_export_is_completed_by_resume(data, straight, tmp_path):
    """Killed right after its last checkpoint (step 40) is in place: weights/G still holds
    step 20's generator. --resume has no step left to train and exports step 40's."""
    out = tmp_path / "run"
    env = user_env(**{ckpt.KILL_AFTER_SAVE: "2"})
    rc, _, err = run(train(data, out, "--steps", str(STEPS)), env)
    assert rc == -signal.SIGKILL, err[-3000:]
    assert saved_step(out) == STEPS
    assert '"_trained_steps": 20' in (out / "weights/G/config.json").read_text()
    rc, stdout, err = run(resume(out), user_env())
    assert rc == 0, err[-3000:]
    assert "note: weights/G is not the checkpoint's (from step 20): exporting it again" in stdout
    assert stdout.strip().splitlines()[-1] == f"done: step {STEPS}; generators in {out}/weights"
    same_run(out, straight)
    rc, stdout, _ = run(resume(out), user_env())  # now complete: nothing to do
    assert rc == 0 and "exporting it again" not in stdout


def test_full_disk_during_export_fails_and_the_same_resume_completes_it(data, straight, tmp_path):
    """weights/ on a real 512 kB tmpfs (the export is ~1 MB): the checkpoint at step 40 is
    written, the export is not (exit 2, one line); --resume retries it while the disk is
    still full (exit 2 again, not "done"), and once there is room completes the run."""
    out = tmp_path / "run"
    with small_tmpfs(out / "weights", "512k") as disk:
        args = train(data, out, "--steps", str(STEPS), "--save-every", str(STEPS))
        rc, _, err = run(args, user_env())
        target = out / "weights/G/model.safetensors"
        message = (
            f"error: cannot write {target}: No space left on device; "
            "any previous version is unchanged"
        )
        assert one_line_error(rc, err) == message and rc == 2
        assert saved_step(out) == STEPS
        assert not list((out / "weights/G").iterdir())  # no partial file, no temporary
        rc, stdout, err = run(resume(out), user_env())
        assert one_line_error(rc, err) == message and rc == 2
        assert "done" not in stdout
        grow(disk, "64m")  # space was freed
        rc, stdout, err = run(resume(out), user_env())
        assert rc == 0, err[-3000:]
        assert "note: weights/G is not the checkpoint's (incomplete" in stdout
        assert (out / WEIGHTS).read_bytes() == (straight / WEIGHTS).read_bytes()


# --- one train.py per run folder -------------------------------------------------------------


def test_a_second_train_py_on_the_same_out_is_refused_while_the_first_lives(data, tmp_path):
    """The first run (loader workers, no checkpoint for a long while) holds RUN/train.lock
    from its start; a second one, fresh or --resume, exits 2 naming the first's pid and
    writes nothing. The workers do not hold the lock; once the first dies, a run starts."""
    out = tmp_path / "run"
    args = train(data, out, "--steps", "100000", "--save-every", "100000", "--workers", "1")
    first = start(args, user_env())
    lock = out / runlock.LOCK_NAME
    wait_until(lambda: logged(out, 3), first, "a train record")
    assert lock.read_text() == f"{first.pid}\n"
    assert str(lock) in open_files(first.pid)
    [worker] = children(first.pid)
    assert str(lock) not in open_files(worker)
    config = (out / "config.json").read_text()
    refused = (
        f"error: {out} is in use by another train.py (pid {first.pid}); wait for it to end, "
        "or choose another --out"
    )
    seconds = [
        start(train(data, out, "--steps", "2", *extra), user_env()) for extra in ([], ["--resume"])
    ]
    for rc, _, err in map(finish, seconds):  # fresh and --resume, side by side
        assert one_line_error(rc, err) == refused and rc == 2
    assert (out / "config.json").read_text() == config
    assert not ckpt.checkpoint_path(out).exists()
    first.kill()  # SIGKILL: the kernel releases the lock; the file stays, with a stale pid
    finish(first)
    rc, stdout, err = run(train(data, out, "--steps", "2"), user_env())
    assert rc == 0, err[-3000:]
    assert stdout.strip().splitlines()[-1].startswith("done: step 2")


# --- a dataset that shrank before --resume -----------------------------------------------------


def test_resume_after_the_dataset_shrank_starts_the_next_epoch_instead_of_spinning(data, tmp_path):
    """Saved at batch 5 of epoch 0 (6 images); 4 images deleted: epoch 0 counts as complete,
    epoch 1 starts, with a note. The old loop waited for batches that never came, at 100 %
    CPU, forever."""
    folder = shutil.copytree(data, tmp_path / "set")
    out = tmp_path / "run"
    rc, _, err = run(train(folder, out, "--steps", "5"), user_env())
    assert rc == 0, err[-3000:]
    assert ckpt.load_checkpoint(ckpt.checkpoint_path(out))["progress"]["batch"] == 5
    for path in sorted((folder / "train").iterdir())[2:]:
        path.unlink()
    rc, stdout, err = run(resume(out, "--steps", "8"), user_env())
    assert rc == 0, err[-3000:]
    assert (
        "note: the training set has 2 samples (6 when saved): the saved position, batch 5 of "
        "epoch 0, is past the end of its 2 steps per epoch; epoch 0 counts as complete and "
        "epoch 1 starts"
    ) in stdout
    progress = ckpt.load_checkpoint(ckpt.checkpoint_path(out))["progress"]
    assert progress == {"step": 8, "epoch": 2, "batch": 1, "samples": 2}


def test_position_fitting_and_the_sampler_refuse_a_position_past_the_epoch():
    p = Progress(step=9, epoch=1, batch=3, samples=6)
    assert fit_position(p, 6, 6) == "" and (p.epoch, p.batch) == (1, 3)
    assert "continues at batch 3, in the order of the new set" in fit_position(p, 8, 8)
    assert (p.epoch, p.batch, p.samples) == (1, 3, 8)
    assert "epoch 1 counts as complete" in fit_position(p, 3, 3)
    assert (p.step, p.epoch, p.batch, p.samples) == (9, 2, 0, 3)
    sampler = EpochSampler(4, seed=0)
    with pytest.raises(ValueError, match="start 4 is outside an epoch of 4 samples"):
        sampler.set_epoch(0, start=4)
