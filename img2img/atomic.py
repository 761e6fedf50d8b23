"""All-or-nothing file writes: a temporary file in the same folder, fsync, rename, fsync.

Used for everything that must never be seen half-written: released weights, training
checkpoints, checksum sidecars, rewritten logs, translated images and clips, the app's
results. A crash or a full disk leaves the previous version of the file (or none) in place,
never a truncated one under the final name.

Temporaries are named `.<name>.<random>.img2img-<pid>.tmp`, beside the file: hidden, and
recognisable as ours with the process that wrote them. An exception or a handled signal
removes its own; SIGKILL cannot, so a command that writes into a folder calls
`remove_stale_temporaries` on it first: a temporary whose process is gone (or that nobody
has written for STALE_AFTER_S: its pid may have been reused) is deleted.
`write_new` never replaces an existing name: a file that one reader streams is never
rewritten by another writer.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

STALE_AFTER_S = 3600  # a temporary not written for this long is stale even if its pid lives
_OURS = re.compile(r"^\..+\.img2img-(\d+)\.tmp$")


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (not possible on every platform: then skipped)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike, mode: str = "wb", encoding: str | None = None
) -> Iterator[IO]:
    """Yield a file to write; on a clean exit it replaces `path` in one rename.

    On any exception the temporary file is deleted, `path` is left as it was, and the
    exception propagates unchanged (callers translate OSError into their own error).
    """
    path = Path(path)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _temporary(path: Path) -> tuple[int, str]:
    suffix = f".img2img-{os.getpid()}.tmp"
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)


def write_new(path: str | os.PathLike, write: Callable[[IO], object]) -> None:
    """Create `path` with what `write(file)` writes, complete, in one step; FileExistsError
    if the name exists (it is never replaced: a reader streaming it is never cut short).

    The temporary is hard-linked to the name (atomic, and refused for an existing name);
    where links are not supported, renamed after a check (a narrow race remains there).
    """
    path = Path(path)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links here (FAT, some network disks)
            if os.path.lexists(path):
                raise FileExistsError(17, "File exists", str(path)) from None
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    fsync_dir(path.parent)


class Folders:
    """The folders a command makes on its way to its outputs, to take back if it fails
    (a failed run leaves no empty folder behind)."""

    def __init__(self) -> None:
        self.made: list[Path] = []

    def make(self, path: Path) -> None:
        """`path` and its missing parents (recorded, outermost first)."""
        missing = [p for p in (path, *path.parents) if not os.path.lexists(p)]
        for p in reversed(missing):
            p.mkdir(exist_ok=True)
            self.made.append(p)

    def remove_empty(self) -> None:
        """Every folder made here that is still empty (innermost first)."""
        for p in reversed(self.made):
            try:
                p.rmdir()
            except OSError:  # something was written into it: kept
                pass


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically replace `path` with `text` (UTF-8)."""
    with atomic_file(path, "w", encoding="utf-8") as f:
        f.write(text)


def remove_temporaries(directory: Path, name: str) -> None:
    """Delete the temporaries a process killed while writing `directory/name` left behind."""
    for tmp in directory.glob(f".{name}.*.tmp"):
        tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # another user's process (or a pid that cannot be asked): kept
    return True


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete our temporaries in `directory` (not below) whose writer is gone; the paths."""
    removed = []
    try:
        candidates = [p for p in Path(directory).iterdir() if _OURS.match(p.name)]
    except OSError:  # missing, or not a folder: nothing of ours there
        return removed
    now = time.time()
    for tmp in candidates:
        try:
            idle = now - tmp.lstat().st_mtime
            if not _alive(int(_OURS.match(tmp.name)[1])) or idle > STALE_AFTER_S:
                tmp.unlink()
                removed.append(tmp)
        except OSError:  # removed meanwhile, or not ours to remove
            pass
    return removed
