"""Resume checkpoints: the whole training state in one file, written atomically.

RUN_DIR/checkpoints/last.pt holds networks, optimizers, schedulers, grad scaler, step /
epoch / position in the epoch, the config (a plain dict) and, per process, the RNG states
and image pools. It is written to a temporary file in the same folder, fsynced, then
renamed over the previous one: a run killed while saving leaves the previous checkpoint
intact; a write that fails (disk full) is a CheckpointError naming the file, and the previous
checkpoint is left as it was. It is read back with `torch.load(weights_only=True)` only, so
every value in it is a tensor or a plain Python container/number/string.

Test hooks (tests/test_faults.py, tests/test_train_interrupts.py): IMG2IMG_TEST_KILL_IN_SAVE=N
makes the process SIGKILL itself halfway through writing its N-th checkpoint;
IMG2IMG_TEST_KILL_AFTER_SAVE=N right after its N-th checkpoint is in place, before the
generators are exported. Unset, each costs one environment lookup per checkpoint.
"""

from __future__ import annotations

import os
import pickle
import random
import signal
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_file, remove_temporaries
from ..errors import CheckpointError

FORMAT = "img2img-train"
VERSION = 1
LAST = "last.pt"
KILL_IN_SAVE = "IMG2IMG_TEST_KILL_IN_SAVE"
KILL_AFTER_SAVE = "IMG2IMG_TEST_KILL_AFTER_SAVE"
_saves = 0  # checkpoints this process has started to write (for the test hooks)


def checkpoint_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints" / LAST


def rng_state() -> dict[str, Any]:
    """torch (CPU and every CUDA device), numpy and python RNG states, as plain values."""
    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))


class _Writer:
    """File writes that keep the OSError: torch.save turns it into a bare RuntimeError."""

    def __init__(self, f) -> None:
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


def _test_kill_hook(f) -> None:
    """IMG2IMG_TEST_KILL_IN_SAVE=N: leave half of the N-th checkpoint on disk and die."""
    if os.environ.get(KILL_IN_SAVE) == str(_saves):
        f.flush()
        f.truncate(f.tell() // 2)
        os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """torch.save through atomic.atomic_file (temporary + fsync + rename): all or nothing."""
    global _saves
    _saves += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    try:
        with atomic_file(path) as f:
            writer = _Writer(f)
            torch.save({"format": FORMAT, "version": VERSION, **state}, writer)
            _test_kill_hook(f)
    except BaseException as e:
        cause = (writer and writer.error) or (e if isinstance(e, OSError) else None)
        if cause is not None:  # disk full, file too large, I/O error: say so, and where
            raise CheckpointError(
                f"cannot write the training checkpoint {path}: {cause.strerror or cause}; "
                "the previous checkpoint is unchanged"
            ) from e
        raise
    if os.environ.get(KILL_AFTER_SAVE) == str(_saves):  # test hook: die before the export
        os.kill(os.getpid(), signal.SIGKILL)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by save_checkpoint (tensors and plain values only)."""
    if not path.is_file():
        raise CheckpointError(f"no checkpoint to resume from: {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read the training checkpoint {path}: {e}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an img2img training checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {state.get('version')}, not {VERSION}"
        )
    return state


def remove_stale_temporaries(directory: Path) -> None:
    """Delete half-written temporaries left by a run killed while saving."""
    remove_temporaries(directory, LAST)
