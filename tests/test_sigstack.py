"""img2img/sigstack.py: a handler installed by `install` is delivered even when the thread's
alternate signal stack points at freed memory (what OpenVINO's CPU plugin leaves behind once
a model it compiled is freed), where `signal.signal`'s handler kills the process with SIGSEGV.
Each case runs in a subprocess: the crash is the point."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
from helpers.paths import ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sigaction")

DANGLING = textwrap.dedent(
    """
    import ctypes, mmap, os, signal, sys
    from img2img import sigstack

    class Stack(ctypes.Structure):
        _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = 65536
    memory = libc.mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE,
                       mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    assert libc.sigaltstack(ctypes.byref(Stack(memory, 0, size)), None) == 0
    assert libc.munmap(memory, size) == 0  # the alternate stack now points at nothing

    def handler(signum, frame):
        os.write(1, b"handled")
        os._exit(143)

    if sys.argv[1] == "install":
        sigstack.install(signal.SIGTERM, handler)
        assert sigstack.on_altstack(signal.SIGTERM) is False
    else:
        signal.signal(signal.SIGTERM, handler)
        assert sigstack.on_altstack(signal.SIGTERM) is True  # Python's own flags
    os.kill(os.getpid(), signal.SIGTERM)
    """
)


def _run(how: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", DANGLING, how], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_a_dangling_alternate_stack_crashes_signal_signal_and_not_install():
    plain = _run("signal")
    assert plain.returncode == -signal.SIGSEGV, (plain.returncode, plain.stderr)  # the bug
    fixed = _run("install")
    assert (fixed.returncode, fixed.stdout) == (143, "handled"), fixed.stderr


def test_install_returns_the_previous_handler_and_restores_it_off_the_stack():
    from img2img import sigstack

    def mine(signum, frame):  # never called
        pass

    previous = sigstack.install(signal.SIGUSR1, mine)
    try:
        assert signal.getsignal(signal.SIGUSR1) is mine
        assert sigstack.on_altstack(signal.SIGUSR1) is False
    finally:
        assert sigstack.install(signal.SIGUSR1, previous) is mine
    assert signal.getsignal(signal.SIGUSR1) == previous


@pytest.mark.slow
def test_after_openvino_freed_a_model_sigterm_reaches_the_cli_handler(tmp_path):
    """The case itself: a model compiled by OpenVINO in the main thread, then freed; the
    CLI's stop handler (cli_stop, through sigstack.install) still runs."""
    pytest.importorskip("openvino")
    code = textwrap.dedent(
        """
        import gc, os, signal, torch
        from img2img import Translator
        from img2img.cli_stop import Stopped, stop_on_signals
        from img2img.models.resnet import ResnetGenerator

        t = Translator(device="cpu", plan="openvino", throughput=True)
        t.forward(ResnetGenerator(ngf=8, n_blocks=1).eval(), torch.zeros(2, 3, 64, 64))
        del t
        gc.collect()
        try:
            with stop_on_signals():
                os.kill(os.getpid(), signal.SIGTERM)
                signal.pause()
        except Stopped as stop:
            os._exit(stop.exit_code)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 143, (done.returncode, done.stderr[-2000:])
