"""Stopping a run on SIGTERM / SIGINT without losing it: finish the step, save, exit 0.

Schedulers (SLURM, Kubernetes, Spaces) send SIGTERM some seconds before they kill; Ctrl-C
sends SIGINT to the whole foreground process group, DataLoader workers included. While the
loop runs (`stop_on_signals`), the first SIGTERM or SIGINT only asks to stop: the loop reads
`StopRequest.signum` after each step (all ranks agree under torchrun), writes a checkpoint and
the exports, and train.py exits 0 with one line. A second signal aborts at once: exit status
128 + signal (143 / 130, as a shell reports a process the signal killed), one line, no
traceback; the checkpoint and exports written before it are intact (atomic writes), and the
temporaries it may leave are removed by the next --resume.

Signals are counted by a thread reading Python's signal wakeup fd, not by the main thread's
handler: that one runs only between bytecodes, so during a long C call (a CPU backward takes
seconds) two signals would merge into one and the second could not abort. Forked children
(DataLoader workers) drop the wakeup fd and ignore SIGINT; `worker_signals` then makes a
worker obey only its parent's SIGTERM: the main process decides.
Under torchrun repeated signals are one request: torchrun forwards every signal it receives
to each rank and escalates to SIGKILL itself (after 30 s).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Iterator

from .. import sigstack

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_active: list[StopRequest] = []  # the request being watched in this process, if any


def worker_signals() -> None:
    """In a DataLoader worker: ignore SIGINT; obey SIGTERM from the parent process only.

    The parent's SIGTERM is how DataLoader and multiprocessing end a worker at exit (and
    they then wait for it: ignoring it would hang the exit). A SIGTERM sent to the whole
    process group or job (`kill -TERM -PGID`, SLURM) must not kill a worker under a
    training process that is finishing its step: it is blocked and read by a thread that
    knows the sender. Where sigwaitinfo is missing (macOS), torch's own handling stays.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not hasattr(signal, "sigwaitinfo"):
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # threads made later inherit it
    threading.Thread(target=_obey_parent_sigterm, name="worker-sigterm", daemon=True).start()


def _obey_parent_sigterm() -> None:
    while True:
        info = signal.sigwaitinfo({signal.SIGTERM})
        if info.si_pid == os.getppid():
            os._exit(0)


def _after_fork_in_child() -> None:
    if not _active:
        return
    with contextlib.suppress(ValueError, OSError):  # ValueError: not the main thread
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent ends its children with it
    for request in _active:
        request.forget()
    _active.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _write_line(text: str) -> None:
    """One line to stderr from any thread (unbuffered: never a reentrant write on sys.stderr)."""
    with contextlib.suppress(OSError):
        os.write(2, f"\n{text}\n".encode())


class StopRequest:
    """`signum`: the first stop signal received (0: none). See the module docstring."""

    def __init__(self, announce: bool, repeat_aborts: bool) -> None:
        self.signum = 0
        self.announce, self.repeat_aborts = announce, repeat_aborts
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)  # signal.set_wakeup_fd requires it
        self._thread = threading.Thread(target=self._watch, name="stop-signals", daemon=True)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def _watch(self) -> None:
        while True:
            try:
                data = self._reader.recv(64)
            except OSError:
                return
            if not data:  # closed by uninstall
                return
            for number in data:  # one byte per delivered signal, SIGCHLD and others too
                if number in SIGNALS:
                    self._received(signal.Signals(number))

    def _received(self, sig: signal.Signals) -> None:
        if not self.signum:
            self.signum = sig
            if self.announce:
                again = f"; {sig.name} again aborts at once" if self.repeat_aborts else ""
                _write_line(f"{sig.name}: stopping after this step (checkpoint and export){again}")
        elif self.repeat_aborts:
            if self.announce:
                _write_line(f"{sig.name} again: aborted (work since the last checkpoint is lost)")
            os._exit(128 + sig)

    def forget(self) -> None:
        """In a forked child: close the parent's sockets (the watcher thread is not copied)."""
        for s in (self._reader, self._writer):
            with contextlib.suppress(OSError):
                s.close()


def _no_op(signum, frame) -> None:
    """The main thread's handler: the watcher thread does the work (see _watch)."""


@contextlib.contextmanager
def stop_on_signals(announce: bool, repeat_aborts: bool) -> Iterator[StopRequest]:
    """Watch SIGINT / SIGTERM for the duration of the block (outside the main thread: not)."""
    request = StopRequest(announce, repeat_aborts)
    if threading.current_thread() is not threading.main_thread():
        request.forget()
        yield request
        return
    request._thread.start()
    previous = {s: sigstack.install(s, _no_op) for s in SIGNALS}
    old_fd = signal.set_wakeup_fd(request._writer.fileno(), warn_on_full_buffer=False)
    _active.append(request)
    try:
        yield request
    finally:
        _active.remove(request)
        signal.set_wakeup_fd(old_fd)
        for s, handler in previous.items():
            sigstack.install(s, handler)
        request._writer.close()  # the watcher reads EOF and ends
        request._thread.join(timeout=5)
        request._reader.close()
