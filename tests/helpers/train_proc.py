"""The project's commands run as a user runs them: subprocesses in the repo, with a clean
environment, optional injected full disk (RLIMIT_FSIZE) and a timeout that fails the test."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

import pytest

from helpers.paths import ROOT

TIMEOUT = 120  # seconds, for every subprocess


def user_env(**extra: str) -> dict[str, str]:
    """The caller's environment minus HF_* / IMG2IMG_*, one thread per process, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "IMG2IMG_"))}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_DISABLE_TELEMETRY="1")
    env.update(extra)
    return env


def start(args: list[str], env: dict[str, str], max_file_bytes: int = 0) -> subprocess.Popen:
    """Popen in the repo; max_file_bytes > 0: writes beyond it fail with EFBIG (a full disk)."""

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
