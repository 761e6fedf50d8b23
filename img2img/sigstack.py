"""Signal handlers that never run on a thread's alternate signal stack.

Why. Python installs its handlers with SA_ONSTACK: the kernel then builds the handler's frame
on the thread's alternate signal stack (sigaltstack) when it has one. OpenVINO's CPU plugin
gives the thread that compiles or runs a model an alternate stack of its own (11568 bytes)
and frees the memory with the model, leaving the thread's sigaltstack pointing at freed
memory: the next signal with a handler, SIGTERM from torchrun or a scheduler, Ctrl-C,
cannot be delivered and the kernel kills the process with SIGSEGV instead (seen when a
torchrun rank waited for the others after its translations: exit -11 instead of 143).
`install` sets a handler as `signal.signal` does, then clears SA_ONSTACK on it, so the frame
goes on the thread's own stack whatever another library did to the alternate one
(tests/test_sigstack.py reproduces the crash and the fix).

Linux only (glibc's `struct sigaction` read and written through ctypes); elsewhere, or if libc
cannot be reached, `install` is `signal.signal`.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

SA_ONSTACK = 0x08000000  # <asm-generic/signal-defs.h>, the same on every Linux architecture


class _Sigaction(ctypes.Structure):
    """glibc's struct sigaction (x86_64 and aarch64): handler, 1024-bit mask, flags,
    restorer (ctypes pads the int to the pointer's alignment, as the C compiler does)."""

    _fields_ = [
        ("handler", ctypes.c_void_p),
        ("mask", ctypes.c_ulong * (1024 // (8 * ctypes.sizeof(ctypes.c_ulong)))),
        ("flags", ctypes.c_int),
        ("restorer", ctypes.c_void_p),
    ]


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.sigaction  # noqa: B018 (present in glibc and musl)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def off_altstack(signum: int) -> bool:
    """Clear SA_ONSTACK on `signum`'s current handler; True if it was set and is now clear."""
    if _LIBC is None:
        return False
    current = _Sigaction()
    if _LIBC.sigaction(int(signum), None, ctypes.byref(current)) != 0:
        return False
    if current.handler in (None, 0, 1) or not current.flags & SA_ONSTACK:  # SIG_DFL, SIG_IGN
        return False
    current.flags &= ~SA_ONSTACK
    return _LIBC.sigaction(int(signum), ctypes.byref(current), None) == 0


def on_altstack(signum: int) -> bool | None:
    """Whether `signum`'s handler runs on the alternate stack (None where it cannot be read)."""
    if _LIBC is None:
        return None
    current = _Sigaction()
    if _LIBC.sigaction(int(signum), None, ctypes.byref(current)) != 0:
        return None
    return bool(current.flags & SA_ONSTACK)


@contextlib.contextmanager
def handling(signums: Iterable[int], handler: Any) -> Iterator[None]:
    """Within the block, `handler` (installed by `install`) for each of `signums`; the previous
    handlers come back after it. Outside the main thread, where Python cannot set handlers,
    nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: install(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, old in previous.items():
            install(s, old)


def install(signum: int, handler: Any) -> Any:
    """`signal.signal(signum, handler)`, the handler kept off the alternate stack; returns
    the previous handler (so `install(s, previous)` restores it, also kept off)."""
    previous = signal.signal(signum, handler)
    off_altstack(signum)
    return previous
