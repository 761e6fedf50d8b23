"""The project's commands run as a user runs them: subprocesses in the repo, with a clean
environment, optional injected full disk (RLIMIT_FSIZE, or a real small tmpfs when root), a
session of their own (for a terminal's Ctrl-C to the whole process group), waits on what a
running process writes, and a timeout that fails the test."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from helpers.env import clean_env
from helpers.paths import ROOT
from img2img.training import checkpoint as ckpt

TIMEOUT = 120  # seconds, for every subprocess


def user_env(**extra: str) -> dict[str, str]:
    """helpers.env.clean_env (the caller's environment minus HF_* / IMG2IMG_*, but with
    IMG2IMG_BF16 / IMG2IMG_PLAN), one thread per process, plus extra."""
    env = clean_env(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_DISABLE_TELEMETRY="1")
    env.update(extra)
    return env


def start(
    args: list[str], env: dict[str, str], max_file_bytes: int = 0, new_session: bool = False
) -> subprocess.Popen:
    """Popen in the repo; max_file_bytes > 0: writes beyond it fail with EFBIG (a full disk);
    new_session: its own session and process group (os.killpg(proc.pid, sig) reaches the
    process and its children, as a terminal's Ctrl-C does)."""

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an OSError, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, resource.RLIM_INFINITY))

    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit_file_size if max_file_bytes else None,
        start_new_session=new_session,
    )


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    """(returncode, stdout, stderr); a process running past TIMEOUT is killed and fails."""
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{proc.args} ran past {TIMEOUT} s:\n{err[-3000:]}")
    return proc.returncode, out, err


def run(args: list[str], env: dict[str, str], max_file_bytes: int = 0) -> tuple[int, str, str]:
    return finish(start(args, env, max_file_bytes))


def train_cmd(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *args]


def one_line_error(rc: int, err: str) -> str:
    """train.py's failure: non-zero, no traceback, the message on the last line of stderr."""
    assert rc not in (0, -signal.SIGKILL), err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: "), err[-3000:]
    return last


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen | None, what: str) -> None:
    """Poll `condition` every 10 ms; fail if `proc` (if any) ends first or TIMEOUT passes."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if proc is not None and proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"{proc.args} ended (rc {proc.returncode}) before {what}:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            if proc is not None:
                proc.kill()
            pytest.fail(f"no {what} within {TIMEOUT} s")
        time.sleep(0.01)


def train_records(run_dir: Path, kind: str = "train") -> list[dict]:
    """The `kind` records of RUN_DIR/metrics.jsonl (complete lines only), without "time"."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines(keepends=True):
        if line.endswith("\n") and json.loads(line)["kind"] == kind:
            records.append({k: v for k, v in json.loads(line).items() if k != "time"})
    return records


def children(pid: int) -> list[int]:
    """The pids of a process's children (Linux /proc)."""
    with contextlib.suppress(OSError):
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for t in tasks for c in (t / "children").read_text().split()]
    return []


def open_files(pid: int) -> list[str]:
    """What a process's file descriptors point to (Linux /proc)."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            found.append(os.readlink(fd))
    return found


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A real, nearly full disk: a tmpfs of `size` ("512k") mounted at `path` (created).

    Needs root (and a kernel that lets it mount); skips the test otherwise. Unmounted at the
    end. `grow(path, size)` gives it more room while it stays mounted ("space was freed").
    """
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs root to mount a small tmpfs")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:  # lazily if a process that outlived its test still has a file open there
        if subprocess.run(["umount", str(path)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(path)], check=True)


def grow(path: Path, size: str) -> None:
    """Resize the tmpfs at `path` (mounted by small_tmpfs), keeping its files."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


def same_training_state(a: Path, b: Path) -> None:
    """Two runs ended in the same training state: progress, networks, optimizers."""
    sa, sb = (ckpt.load_checkpoint(ckpt.checkpoint_path(r)) for r in (a, b))
    assert sa["progress"] == sb["progress"]
    for group in ("nets", "optimizers"):
        flat_a, flat_b = (torch.utils._pytree.tree_flatten(s[group])[0] for s in (sa, sb))
        for x, y in zip(flat_a, flat_b, strict=True):
            assert torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
