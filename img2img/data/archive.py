"""Safe extraction of dataset archives: plain files and folders only, no absolute or `..`
paths, no links or devices, bounded size and member count (a hostile archive is refused)."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from ..checkpoints.download import DISK_FULL
from ..errors import DatasetError

MAX_ARCHIVE_BYTES = 64 << 30  # the largest public set (edges2handbags) is ~9 GB
MAX_ARCHIVE_MEMBERS = 1_000_000


def _member_path(dest: Path, name: str) -> Path:
    parts = PurePosixPath(name.replace("\\", "/")).parts  # "." or "./" (tar -C DIR .): dest
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise DatasetError(f"refusing archive member with an unsafe path: {name!r}")
    return dest.joinpath(*(p for p in parts if p != "."))


class _Budget:
    """Counts members and bytes written; raises once the archive exceeds the limits."""

    def __init__(self, max_bytes: int, max_members: int) -> None:
        self.bytes_left, self.members_left = max_bytes, max_members

    def member(self, name: str, size: int) -> None:
        self.members_left -= 1
        self.bytes_left -= size
        if self.members_left < 0 or self.bytes_left < 0:
            raise DatasetError(f"archive exceeds the size or member limits at {name!r}")


def _write(fileobj, target: Path) -> None:
    """Copy one member; its size was charged to the budget from the archive's header."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:  # "x": a repeated member name is an error, not a rewrite
        shutil.copyfileobj(fileobj, out, 1 << 20)


def extract_archive(
    archive: Path,
    dest: Path,
    max_bytes: int = MAX_ARCHIVE_BYTES,
    max_members: int = MAX_ARCHIVE_MEMBERS,
) -> None:
    """Unpack a .tar(.gz) or .zip into `dest`, plain files and folders only."""
    budget = _Budget(max_bytes, max_members)
    try:
        if archive.suffix.lower() == ".zip" or zipfile.is_zipfile(archive):
            _extract_zip(archive, dest, budget)
        else:
            _extract_tar(archive, dest, budget)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        if getattr(e, "errno", None) in DISK_FULL:
            raise DatasetError(f"cannot unpack {archive} into {dest}: {e.strerror}") from e
        raise DatasetError(f"cannot unpack {archive} (corrupt archive?): {e}") from e


def _extract_tar(archive: Path, dest: Path, budget: _Budget) -> None:
    with tarfile.open(archive, "r:*") as tf:
        for m in tf:  # streamed: one pass over a compressed archive
            target = _member_path(dest, m.name)
            budget.member(m.name, max(m.size, 0))
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif m.isfile():
                _write(tf.extractfile(m), target)
            else:
                kind = "a link" if m.issym() or m.islnk() else "a device or special file"
                raise DatasetError(f"refusing archive member {m.name!r}: it is {kind}")


def _extract_zip(archive: Path, dest: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # check everything before writing anything
            _member_path(dest, info.filename)
            budget.member(info.filename, info.file_size)
            mode = info.external_attr >> 16
            if mode & 0o170000 not in (0o100000, 0o040000, 0):  # regular file, folder, unset
                kind = "a link" if mode & 0o170000 == 0o120000 else "a special file"
                raise DatasetError(f"refusing archive member {info.filename!r}: it is {kind}")
        for info in infos:
            target = _member_path(dest, info.filename)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                with zf.open(info) as src:  # reads at most the declared size, checks CRC
                    _write(src, target)
