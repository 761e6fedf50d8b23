"""`img2img translate` stopped mid-clip: SIGTERM / SIGINT abort the clip, remove its
temporary file and exit 128 + signal with one line (as train.py's abort); SIGKILL leaves the
temporary, and the next run into the same -o removes it and writes the clip whole."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest
import torch
from helpers.train_proc import finish, start, user_env, wait_until
from helpers.videos import decode, make_clip

from img2img import atomic, save_pretrained
from img2img.models import ResnetGenerator

FRAMES = 120


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("signals")
    torch.manual_seed(0)
    save_pretrained(ResnetGenerator(ngf=8, n_blocks=1), root / "G")
    (root / "in").mkdir()
    make_clip(root / "in" / "clip.mp4", frames=FRAMES, fps=24, size=(96, 64), audio=False)
    return root


def _translate(work, out):
    args = [sys.executable, "-m", "img2img", "translate", str(work / "in" / "clip.mp4")]
    return start([*args, "-o", str(out), "--checkpoint", str(work / "G"), "--device", "cpu"],
                 user_env())  # fmt: skip


def _hidden(out) -> list[str]:
    return sorted(p.name for p in out.rglob(".*")) if out.exists() else []


def _started_writing(out, proc) -> None:
    """Until the clip's temporary exists and holds its first frames (mid-clip)."""

    def writing() -> bool:
        return any(p.stat().st_size > 0 for p in out.glob(".clip.mp4.*"))

    wait_until(writing, proc, "the clip's temporary file")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_mid_clip_removes_the_temporary_and_exits_128_plus_n(work, tmp_path, sig):
    out = tmp_path / "out"
    proc = _translate(work, out)
    _started_writing(out, proc)
    proc.send_signal(sig)
    code, _, err = finish(proc)
    assert code == 128 + sig, err[-2000:]
    assert "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"{sig.name}: stopped") and "0 of 1" in last, last
    assert _hidden(out) == [] and not (out / "clip.mp4").exists()


def test_a_killed_run_s_temporary_is_removed_by_the_next_run(work, tmp_path):
    out = tmp_path / "out"
    proc = _translate(work, out)
    _started_writing(out, proc)
    proc.kill()
    finish(proc)
    [left] = _hidden(out)  # what the kill left behind: a temporary, never clip.mp4
    assert not (out / "clip.mp4").exists()
    code, _, err = finish(_translate(work, out))
    assert code == 0, err[-3000:]
    assert f"removed {out / left}" in err, err[-2000:]
    assert _hidden(out) == [] and decode(out / "clip.mp4")["frames"] == FRAMES


def test_only_stale_temporaries_are_removed(tmp_path):
    """A temporary of a live process (ours, or any other) is kept, unless it has not been
    written for an hour (its pid may have been reused); one of a dead process goes."""
    dead = _dead_pid()
    mine = tmp_path / f".a.png.x1.img2img-{os.getpid()}.tmp"
    gone = tmp_path / f".b.png.x2.img2img-{dead}.tmp"
    old = tmp_path / f".c.png.x3.img2img-{os.getppid()}.tmp"
    foreign = tmp_path / ".d.png.x4.tmp"  # not ours: never touched
    for p in (mine, gone, old, foreign):
        p.write_bytes(b"half")
    hour_ago = time.time() - atomic.STALE_AFTER_S - 5
    os.utime(old, (hour_ago, hour_ago))
    assert sorted(atomic.remove_stale_temporaries(tmp_path)) == sorted([gone, old])
    assert mine.exists() and foreign.exists() and not gone.exists() and not old.exists()


def _dead_pid() -> int:
    proc = start([sys.executable, "-c", "pass"], user_env())
    finish(proc)
    return proc.pid
