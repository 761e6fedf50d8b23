"""HTTP downloads of weight files: streamed, resumable, retried, atomic, checksummed.

A file is fetched into `<dest>.part` (appending with a Range request after an interruption),
moved into place only when complete, and its sha256 is written beside it (`<dest>.sha256`):
given by the catalog, or recorded on first download. Every later use re-hashes the file and
compares, so a corrupted cache is detected and fetched again. A full disk is not retried: it
is an error naming the partial file, which a later call continues.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from ..atomic import write_text
from ..errors import DownloadError

# Where the original pix2pix / CycleGAN weights and datasets are served.
BERKELEY_HOST = "http://efrosgans.eecs.berkeley.edu"
CHUNK = 1 << 20
# Local write failures: retrying the download cannot help.
DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}
USER_AGENT = "img2img/0.1 (+https://github.com/img2img)"


def cache_dir() -> Path:
    """Where URL downloads live: IMG2IMG_CACHE, else $HF_HOME/img2img."""
    if os.environ.get("IMG2IMG_CACHE"):
        return Path(os.environ["IMG2IMG_CACHE"])
    from huggingface_hub import constants  # late: it reads HF_* when imported

    return Path(constants.HF_HOME) / "img2img"


def is_offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it: no network access at all."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def verify_cached(dest: Path, expected: str | None = None) -> bool:
    """True when `dest` exists and matches its recorded (and any expected) sha256."""
    side = _sidecar(dest)
    if not dest.is_file() or not side.is_file():
        return False
    recorded = (side.read_text().split() or [""])[0]
    actual = sha256_of(dest)
    return actual == recorded and (expected is None or actual == expected.lower())


def adopt(dest: Path, expected: str) -> bool:
    """Record the sidecar of a file put at `dest` by hand, if it hashes to `expected`.

    For machines that cannot download: a copy fetched elsewhere is used once it verifies
    (otherwise `download` would treat the unrecorded file as corrupt and fetch it again).
    """
    dest = Path(dest)
    if not dest.is_file() or _sidecar(dest).is_file() or sha256_of(dest) != expected.lower():
        return False
    write_text(_sidecar(dest), f"{expected.lower()}  {dest.name}\n")
    return True


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    """One attempt: continue `part` from its current size up to the end of the resource."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # our partial file is not a prefix any more: restart
            part.unlink()
            response = _open(url, 0, timeout)
            offset = 0
        else:
            raise
    with response:
        if offset and response.status != 206:  # server ignored the Range: start over
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with (
            open(part, "ab" if offset else "wb") as f,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=Path(url).name,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while block := response.read(CHUNK):
                f.write(block)
                bar.update(len(block))
            f.flush()
            os.fsync(f.fileno())
    if total is not None and part.stat().st_size != total:
        raise http.client.IncompleteRead(b"", total - part.stat().st_size)


class _BadContent(Exception):
    """A complete-looking download that fails its content check."""


def _check(part: Path, check: Callable[[Path], None] | None) -> None:
    if check is None:
        return
    try:
        check(part)
    except Exception as e:  # noqa: BLE001 - any failure means the bytes are not usable
        part.unlink(missing_ok=True)  # start from zero next time: a prefix of garbage
        raise _BadContent(str(e).splitlines()[0] if str(e) else type(e).__name__) from e


def quarantine(dest: Path) -> Path:
    """Move a cached file that turned out unusable aside (`<name>.bad`), with its sidecar
    removed, so the next `download` fetches it again; returns the quarantined path."""
    bad = dest.with_name(dest.name + ".bad")
    os.replace(dest, bad)
    _sidecar(dest).unlink(missing_ok=True)
    return bad


def download(
    url: str,
    dest: Path,
    sha256: str | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
    progress: bool = True,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Download `url` to `dest` unless a verified copy is there already; return `dest`.

    `check(path)` proves a new download is what it should be (e.g. that it parses as a
    checkpoint) before its checksum is recorded: a server that sends no Content-Length and
    cuts the file short must not get a truncated file trusted forever. A failed check
    deletes the partial file and counts as a failed attempt (retried).
    """
    dest = Path(dest)
    if verify_cached(dest, sha256):
        return dest
    if dest.exists():  # present but unverified: corrupted or tampered with; fetch again
        dest.unlink()
    if is_offline():
        raise DownloadError(f"HF_HUB_OFFLINE is set and {dest.name} is not in the cache")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, timeout, progress)
            _check(part, check)
            break
        except _BadContent as e:
            if attempt == retries:
                raise DownloadError(
                    f"{url}: the downloaded file is not usable after {retries + 1} attempts "
                    f"(cut short by the server?): {e}"
                ) from e
        except urllib.error.HTTPError as e:
            if e.code < 500 or attempt == retries:  # 404/403 will not get better
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            if getattr(e, "errno", None) in DISK_FULL:
                kept = part.stat().st_size if part.exists() else 0
                raise DownloadError(
                    f"cannot write {part}: {e.strerror} ({kept} bytes kept to resume)"
                ) from e
            if attempt == retries:
                raise DownloadError(
                    f"{url}: failed after {retries + 1} attempts "
                    f"({part.stat().st_size if part.exists() else 0} bytes kept to resume): {e}"
                ) from e
        time.sleep(backoff * 2**attempt)
    actual = sha256_of(part)
    if sha256 is not None and actual != sha256.lower():
        part.unlink()
        raise DownloadError(f"{url}: sha256 {actual} does not match the expected {sha256}")
    os.replace(part, dest)
    write_text(_sidecar(dest), f"{actual}  {dest.name}\n")
    return dest
