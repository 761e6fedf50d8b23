"""One train.py per run folder: an exclusive lock on RUN_DIR, held for the life of the process.

RUN_DIR/train.lock is locked with flock(LOCK_EX | LOCK_NB) before the run reads or writes
anything there, and the holder's pid is written into it, so a second train.py on the same
--out stops at once with a message naming the first. The kernel drops a flock when the
process ends, however it ends (exit, SIGKILL, OOM), so a lock file left behind never blocks
a later run; the file is never deleted (unlinking a lock file races with a process that has
just opened it). Forked children (DataLoader workers) close their inherited descriptor: the
lock lives exactly as long as the training process. Under torchrun rank 0 alone takes it
(the other ranks never write to RUN_DIR).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError

LOCK_NAME = "train.lock"
_held: list[int] = []  # descriptors of the locks this process holds


def _close_in_child() -> None:
    """After fork: the child must not keep the parent's lock alive (flock is per open file)."""
    for fd in _held:
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_close_in_child)


def _holder(fd: int) -> str:
    text = os.pread(fd, 64, 0).decode("ascii", errors="replace").strip()
    return f"pid {text}" if text.isdigit() else "pid unknown"


@contextlib.contextmanager
def hold(run_dir: Path) -> Iterator[Path]:
    """Lock `run_dir` (which must exist) for the duration of the block, or raise ConfigError.

    A filesystem without locks (some network or FUSE mounts) gets a note and no lock.
    """
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise ConfigError(
            f"{run_dir} is in use by another train.py ({holder}); wait for it to end, "
            "or choose another --out"
        ) from None
    except OSError as e:
        os.close(fd)
        print(f"note: cannot lock {path} ({e.strerror}): run one train.py per --out")
        fd = -1
    if fd < 0:
        yield path
        return
    pid = f"{os.getpid()}\n".encode()
    os.pwrite(fd, pid, 0)  # then cut what a longer stale pid left: never an empty file
    os.ftruncate(fd, len(pid))
    _held.append(fd)
    try:
        yield path
    finally:
        _held.remove(fd)
        os.close(fd)  # releases the lock; the file (with a stale pid) stays
