"""DDP on two CPU processes (gloo) through torchrun: ranks stay in sync, rank 0 alone saves,
SIGTERM stops every rank after the same step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from helpers.datasets import aligned_files, unaligned_files, write_files
from helpers.paths import ROOT
from helpers.train_proc import finish, start, train_records, user_env, wait_until

from img2img import load_generator
from img2img.training import checkpoint as ckpt

pytestmark = pytest.mark.slow

CASES = {
    "pix2pix": (aligned_files, ["--steps", "3"]),  # BatchNorm U-Net, D called three times
    "cyclegan": (unaligned_files, ["--steps", "3", "--load-size", "36", "--crop-size", "32"]),
}


def records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("family", sorted(CASES))
def test_two_processes_stay_in_sync_and_save_once(tmp_path, family):
    make, extra = CASES[family]
    root = write_files(tmp_path, make("set"))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += [str(ROOT / "train.py"), family, "--data", str(root / "set"), "--out", str(out)]
    cmd += ["--seed", "0", "--ngf", "8", "--ndf", "8", "--workers", "0", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        cmd + extra, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sync,) = [r for r in records(out) if r["kind"] == "ddp"]
    assert sync["ranks"] == 2 and sync["in_sync"] and len(set(sync["hashes"])) == 1
    assert len([r for r in records(out) if r["kind"] == "val"]) == 1  # rank 0 alone validates
    state = ckpt.load_checkpoint(ckpt.checkpoint_path(out))
    assert state["progress"]["step"] == 3 and len(state["ranks"]) == 2  # both ranks' RNG
    assert state["ranks"][0]["rng"]["torch"].ne(state["ranks"][1]["rng"]["torch"]).any()
    assert list(out.glob("checkpoints/*")) == [ckpt.checkpoint_path(out)]
    assert proc.stdout.count("done: step 3") == 1  # one process reports and exports
    for folder in ("G",) if family == "pix2pix" else ("A2B", "B2A"):
        assert load_generator(out / "weights" / folder).config["ngf"] == 8


def test_sigterm_to_torchrun_stops_every_rank_at_one_step_and_resumes_exactly(tmp_path):
    """torchrun forwards SIGTERM to each rank; the ranks agree on the step to stop after (a
    rank stopping alone would leave the others waiting in a collective), rank 0 saves both
    ranks' state, and the resumed run ends with the uninterrupted run's weights."""
    root = write_files(tmp_path, aligned_files("set", n_train=6))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += [str(ROOT / "train.py"), "pix2pix", "--seed", "0", "--ngf", "8", "--ndf", "8"]
    cmd += ["--num-downs", "5", "--load-size", "36", "--crop-size", "32", "--workers", "0"]
    cmd += ["--device", "cpu", "--log-every", "3", "--steps", "24"]
    env = user_env()
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    procs = [
        start([*cmd, "--data", str(root / "set"), "--out", str(o)], env)
        for o in (straight, stopped)
    ]
    wait_until(lambda: bool(train_records(stopped)), procs[1], "a train record")
    procs[1].send_signal(signal.SIGTERM)  # to torchrun, which forwards it to both ranks
    (rc, _, err), (_, out, err_stopped) = map(finish, procs)
    assert rc == 0, err[-3000:]
    step = ckpt.load_checkpoint(ckpt.checkpoint_path(stopped))["progress"]["step"]
    assert 3 <= step < 24 and f"stopped by SIGTERM at step {step} of 24" in out, err_stopped
    assert out.count("stopped by SIGTERM") == 1  # rank 0 reports
    (sync,) = [r for r in records(stopped) if r["kind"] == "ddp"]
    assert sync["step"] == step and sync["in_sync"]
    rc, _, err = finish(start([*cmd, "--out", str(stopped), "--resume"], env))
    assert rc == 0, err[-3000:]
    weights = "weights/G/model.safetensors"
    assert (stopped / weights).read_bytes() == (straight / weights).read_bytes()
