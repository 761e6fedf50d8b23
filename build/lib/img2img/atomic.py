"""All-or-nothing file writes: a temporary file in the same folder, fsync, rename, fsync.

Used for everything that must never be seen half-written: released weights, training
checkpoints, checksum sidecars, rewritten logs. A crash or a full disk leaves the previous
version of the file (or none) in place, never a truncated one under the final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically replace `path` with `text` (UTF-8)."""
    with atomic_file(path, "w", encoding="utf-8") as f:
        f.write(text)


def remove_temporaries(directory: Path, name: str) -> None:
    """Delete the temporaries a process killed while writing `directory/name` left behind."""
    for tmp in directory.glob(f".{name}.*.tmp"):
        tmp.unlink(missing_ok=True)
