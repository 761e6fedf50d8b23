"""Sharded translate: `--shard K/N` and torchrun with 2 CPU ranks (gloo) on one folder. Every
input translated exactly once, byte-identical to one process, manifests complete; a rank
SIGKILLed mid-way, then the same command again, completes without redoing finished work."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.env import clean_env
from helpers.images import random_image
from helpers.paths import ROOT

from img2img import save_pretrained, shards
from img2img.cli import main
from img2img.models import ResnetGenerator


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ckpt") / "G"
    save_pretrained(ResnetGenerator(ngf=8, n_blocks=2), folder)
    return folder


def photos(folder: Path, n: int, w: int = 48, h: int = 32) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        random_image(w, h, seed=i).save(folder / f"p{i:03d}.png")
    (folder / "broken.png").write_bytes(b"not a png")  # skipped, by exactly one shard
    return folder


def translate(*args: str, torchrun: int = 0, **popen) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "img2img", "translate", *args]
    if torchrun:
        run = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(torchrun)]
        cmd = [sys.executable, *run, "-m", "img2img", "translate", *args]
    env = clean_env(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, **popen)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def pngs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def manifests(out: Path) -> list[Path]:
    return sorted((out / shards.MANIFEST_DIR).glob("*.jsonl"))


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_take_is_strided_by_sorted_path_and_covers_every_input_once():
    paths = [Path(name) for name in ("c.png", "a.png", "d.png", "b.png", "e.png")]
    taken = [shards.Shard(k, 2).take(paths) for k in (0, 1)]
    assert [[paths[i].name for i in t] for t in taken] == [["c.png", "a.png", "e.png"],
                                                           ["d.png", "b.png"]]  # fmt: skip
    assert sorted(taken[0] + taken[1]) == list(range(5))
    assert shards.parse("1/2") == shards.Shard(1, 2)


@pytest.mark.parametrize("value", ["3/2", "2/2", "-1/2", "1/0", "1", "a/b"])
def test_bad_shard_is_refused_with_exit_2(tmp_path, tiny, value, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["translate", str(tmp_path), "-o", str(tmp_path / "out"), "--checkpoint",
              str(tiny), f"--shard={value}"])  # fmt: skip
    assert stop.value.code == 2
    assert "--shard takes K/N with K from 0 to N-1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_shard_flag_splits_the_inputs_exactly_once_as_one_process_names_them(tmp_path, tiny):
    src = photos(tmp_path / "in", 9)
    one = translate(str(src), "-o", str(tmp_path / "one"), "--checkpoint", str(tiny))
    assert finish(one)[0] == 1  # the broken file
    out = tmp_path / "sharded"
    for k in (0, 1):
        code, err = finish(translate(str(src), "-o", str(out), "--checkpoint", str(tiny),
                                     "--shard", f"{k}/2", stderr=subprocess.PIPE))  # fmt: skip
        assert code in (0, 1), err
        assert f"rank-0000{k}-of-00002: " in err
    assert pngs(out) == pngs(tmp_path / "one")  # same names, same bytes
    records = [r for path in manifests(out) for r in lines(path)]
    assert sorted(r["input"] for r in records) == sorted(str(p) for p in src.iterdir())
    assert {r["status"] for r in records if "broken" in r["input"]} == {"skipped"}
    assert all(r["status"] == "written" for r in records if "broken" not in r["input"])


@pytest.mark.slow
def test_torchrun_two_ranks_translate_each_input_once_identical_to_one_process(tmp_path, tiny):
    src = photos(tmp_path / "in", 10)
    assert finish(translate(str(src), "-o", str(tmp_path / "one"), "--checkpoint", str(tiny)))[0]
    out = tmp_path / "ddp"
    code, err = finish(translate(str(src), "-o", str(out), "--checkpoint", str(tiny),
                                 torchrun=2, stderr=subprocess.PIPE))  # fmt: skip
    assert code == 1, err  # the broken file's rank exits 1 only after the other finished
    assert pngs(out) == pngs(tmp_path / "one")
    paths = manifests(out)
    assert [p.name for p in paths] == ["rank-00000-of-00002.jsonl", "rank-00001-of-00002.jsonl"]
    inputs = [r["input"] for p in paths for r in lines(p)]
    assert sorted(inputs) == sorted(str(p) for p in src.iterdir())  # each exactly once
    assert all(set(r) >= {"input", "output", "status", "seconds"} for p in paths for r in lines(p))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_torchrun_nodes_share_one_output_folder(tmp_path, tiny):
    """`torchrun --nnodes 2` as two nodes would run it (one launcher per node, one rank each,
    a c10d rendezvous; here both on 127.0.0.1): global ranks 0 and 1 split the inputs, each
    with LOCAL_RANK 0, into the one shared folder, bytes as one process writes them."""
    src = photos(tmp_path / "in", 7)
    assert finish(translate(str(src), "-o", str(tmp_path / "one"), "--checkpoint", str(tiny)))[0]
    out, port = tmp_path / "shared", _free_port()
    env = clean_env(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    nodes = []
    for node in (0, 1):
        launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
                  "--nproc-per-node", "1", "--node-rank", str(node), "--rdzv-backend", "c10d",
                  "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "img2img-test"]  # fmt: skip
        cmd = [*launch, "-m", "img2img", "translate", str(src), "-o", str(out),
               "--checkpoint", str(tiny)]  # fmt: skip
        nodes.append(subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, stderr=subprocess.PIPE))
    codes = [finish(proc)[0] for proc in nodes]
    assert codes == [1, 1]  # the broken file: every node exits with the job's status, at once
    assert pngs(out) == pngs(tmp_path / "one")
    paths = manifests(out)
    assert [p.name for p in paths] == ["rank-00000-of-00002.jsonl", "rank-00001-of-00002.jsonl"]
    inputs = [r["input"] for p in paths for r in lines(p)]
    assert sorted(inputs) == sorted(str(p) for p in src.iterdir())  # each exactly once


def _rank_pid(parent: int, rank: str) -> int | None:
    """The pid of torchrun's worker with RANK=rank (read from /proc)."""
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != parent:
                continue
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if f"RANK={rank}".encode() in env:
            return int(entry.name)
    return None


@pytest.mark.slow
def test_a_rank_killed_mid_way_then_rerun_completes_without_redoing_work(tmp_path, tiny):
    src = photos(tmp_path / "in", 80, 160, 120)
    ref = tmp_path / "one"
    assert finish(translate(str(src), "-o", str(ref), "--checkpoint", str(tiny),
                            "--size", "native"))[0] == 1  # fmt: skip
    out = tmp_path / "ddp"
    args = (str(src), "-o", str(out), "--checkpoint", str(tiny), "--size", "native")
    run = translate(*args, torchrun=2, stderr=subprocess.DEVNULL)
    manifest = out / shards.MANIFEST_DIR / "rank-00001-of-00002.jsonl"
    deadline = time.monotonic() + 240
    while not (manifest.exists() and manifest.read_text().count('"status": "written"') >= 6):
        assert run.poll() is None and time.monotonic() < deadline, "rank 1 made no progress"
        time.sleep(0.05)
    os.kill(_rank_pid(run.pid, "1"), signal.SIGKILL)
    assert finish(run)[0] != 0  # torchrun reports the killed rank and stops the other
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert 6 <= len(first) < 80
    code, err = finish(translate(*args, torchrun=2, stderr=subprocess.PIPE))
    assert code == 1, err  # the broken file
    assert pngs(out) == pngs(ref)  # everything, whole, exactly as one process writes it
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png") if p.name in first} == first
    assert not list(out.glob(".*.tmp"))  # the killed rank's temporary (if any) was removed
    latest = shards.latest(manifests(out))
    assert sorted(latest) == sorted(str(p) for p in src.iterdir())
    records = [r for p in manifests(out) for r in lines(p)]
    writes = [r["output"] for r in records if r["status"] == "written"]
    assert len(writes) == len(set(writes))  # nothing written twice
    unrecorded = {str(out / name) for name in pngs(ref)} - set(writes)
    assert unrecorded <= {str(out / name) for name in first}  # at most the killed rank's
    assert len(unrecorded) <= 2  # SIGKILL between a rename and its line: one per writer thread
    assert all(latest[str(src / name)]["status"] in ("written", "skipped") for name in pngs(ref))
