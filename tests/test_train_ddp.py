"""DDP on two CPU processes (gloo) through torchrun: ranks stay in sync, rank 0 alone saves."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers.datasets import aligned_files, unaligned_files, write_files
from helpers.paths import ROOT

from img2img import load_generator
from img2img.training import checkpoint as ckpt

CASES = {
    "pix2pix": (aligned_files, ["--steps", "3"]),  # BatchNorm U-Net, D called three times
    "cyclegan": (unaligned_files, ["--steps", "3", "--load-size", "36", "--crop-size", "32"]),
}


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
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    (sync,) = [r for r in records if r["kind"] == "ddp"]
    assert sync["ranks"] == 2 and sync["in_sync"] and len(set(sync["hashes"])) == 1
    assert len([r for r in records if r["kind"] == "val"]) == 1  # rank 0 alone validates
    state = ckpt.load_checkpoint(ckpt.checkpoint_path(out))
    assert state["progress"]["step"] == 3 and len(state["ranks"]) == 2  # both ranks' RNG
    assert state["ranks"][0]["rng"]["torch"].ne(state["ranks"][1]["rng"]["torch"]).any()
    assert list(out.glob("checkpoints/*")) == [ckpt.checkpoint_path(out)]
    assert proc.stdout.count("done: step 3") == 1  # one process reports and exports
    for folder in ("G",) if family == "pix2pix" else ("A2B", "B2A"):
        assert load_generator(out / "weights" / folder).config["ngf"] == 8
