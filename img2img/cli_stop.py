"""SIGTERM and Ctrl-C (SIGINT) during `img2img translate` / `evaluate`: a clean stop.

A translation cannot be resumed half-way through an item (a clip, a chunk of photos), so the
first signal aborts the item at once: `Stopped` is raised in the main thread, unwinds through
atomic.atomic_file (which deletes the item's temporary), and the command exits 128 + signal
(143 / 130, as a shell reports a process the signal killed, and as train.py's abort) with one
line saying what was written. Items written before it are complete, and a re-run skips them.
A second signal while the first unwinds exits at once; a temporary it leaves, as one left by
SIGKILL, is removed by the next run into the same folder (atomic.remove_stale_temporaries).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

from . import sigstack

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """The first stop signal, raised where the main thread is (a BaseException: no
    `except Exception` on the way swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _again(signum, frame) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"\n{signal.Signals(signum).name} again: aborted at once\n".encode())
    os._exit(128 + signum)


def _first(signum, frame) -> None:
    for s in SIGNALS:
        sigstack.install(s, _again)
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM / SIGINT raise Stopped (outside the main thread: unchanged)."""
    with sigstack.handling(SIGNALS, _first):
        yield
