"""What a checkpoint file will hold in memory once loaded, read before anything is unpickled
or inflated, and the cap on it.

A file's size does not bound what loading it costs: torch.load inflates the members of a zip
checkpoint to the sizes its directory declares, so 1.5 MB of DEFLATE-compressed zeros became
1.6 GB of memory before the loader could look at the tensors. READ (weights.py) calls
`check_size` first. It reads only the zip's central directory, the safetensors header or the
file's size, by format:

    torch zip    the members' uncompressed sizes, summed from the central directory (nothing
                 is extracted). torch.save only ever stores members, so a compressed member
                 (DEFLATE, BZIP2, LZMA) is refused whatever its size or ratio: the file was
                 re-packed by another tool. A stored member cannot inflate (its two sizes
                 must agree), so the file's size bounds the rest. A member that is itself an
                 archive (zip or tar) is refused too, not opened: torch never opens one and
                 torch.save never writes one, so it can only be there to carry something else.
    safetensors  the tensors' bytes its header declares; a header declaring more than the
                 file holds is refused (safetensors checks that the tensors tile the file).
    legacy       the file's size (pre-1.6 torch pickles read their storages from the file).

The library's cap, DEFAULT_MAX_BYTES, sits well above every honest checkpoint: the largest
published generator (pix2pix unet_256, ngf 64, 54M parameters) is 218 MB in fp32, and a
full pix2pix training checkpoint (generator, discriminator and their Adam states) is 686 MB.
A deployer sets a lower one (the app: IMG2IMG_MAX_CHECKPOINT_MB for visitors' models).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from ..errors import CheckpointError

DEFAULT_MAX_BYTES = 2 * 10**9  # ~9x the largest published generator, ~3x a training file
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")  # member, empty, spanned
_TAR_MAGIC_AT = 257  # a tar header holds "ustar" at this offset
_MAX_HEADER = 100 * 10**6  # safetensors' own limit on its JSON header
_RESAVE = "What you can do: re-save it with torch.save, or as model.safetensors (save_pretrained)"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 10**5 else f"{n / 1e3:,.1f} kB"


def _too_large(
    file: Path, size: int, max_bytes: int, limit: str, members: list[zipfile.ZipInfo] = ()
) -> CheckpointError:
    sizes = f"{_mb(file.stat().st_size)} on disk"
    if members:
        packed = _mb(sum(m.compress_size for m in members))
        sizes = f" once its {len(members)} members are decompressed ({packed} compressed, {sizes})"
    else:
        sizes = f" ({sizes})"
    return CheckpointError(
        f"{file} would take {_mb(size)} in memory{sizes}, over the limit of {_mb(max_bytes)} "
        f"({limit}); refused before anything was read. What you can do: load a smaller "
        f"checkpoint; or raise the limit ({limit}) if you trust this file"
    )


def _check_compression(members: list[zipfile.ZipInfo], file: Path) -> None:
    packed = [m for m in members if m.compress_type != zipfile.ZIP_STORED]
    if packed:
        largest = max(packed, key=lambda m: m.file_size)
        raise CheckpointError(
            f"refused to load {file}: {len(packed)} of its {len(members)} members are "
            f"compressed ({_mb(sum(m.compress_size for m in packed))} that would inflate to "
            f"{_mb(sum(m.file_size for m in packed))}; largest: {largest.filename}), which "
            f"torch.save never does, so another tool re-packed the file. {_RESAVE}"
        )


def _check_member(archive: zipfile.ZipFile, m: zipfile.ZipInfo, file: Path) -> None:
    """A stored member as torch.save writes it: sizes that agree, not an archive."""
    if m.file_size != m.compress_size:
        raise CheckpointError(
            f"refused to load {file}: its member {m.filename} declares {m.file_size} bytes "
            f"but stores {m.compress_size} (a corrupt or forged zip directory)"
        )
    with archive.open(m) as member:
        head = member.read(_TAR_MAGIC_AT + 5)
    if head[:4] in _ZIP_MAGICS or head[_TAR_MAGIC_AT:] == b"ustar":
        raise CheckpointError(
            f"refused to load {file}: its member {m.filename} is itself an archive, which no "
            f"checkpoint holds (torch never opens one). {_RESAVE}"
        )


def _zip_size(file: Path, max_bytes: int, limit: str) -> int:
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
            total = sum(m.file_size for m in members)
            if total > max_bytes:
                raise _too_large(file, total, max_bytes, limit, members)
            _check_compression(members, file)
            for m in members:
                _check_member(archive, m, file)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as e:
        # RuntimeError: an encrypted member; ValueError: a directory zipfile cannot parse
        raise CheckpointError(f"cannot read {file} (truncated or corrupt?): {e}") from e
    return total


def _safetensors_size(file: Path) -> int:
    """The tensor bytes the header of `file` declares; the file's size when it has no such
    header (a legacy pickle; a broken safetensors file, which safetensors then describes)."""
    size = file.stat().st_size
    with open(file, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        if not 0 < header_len <= min(_MAX_HEADER, size - 8):
            return size
        try:
            header = json.loads(f.read(header_len))
            ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
            declared = int(max(ends, default=0))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return size
    if declared > size - 8 - header_len:
        raise CheckpointError(
            f"cannot read {file}: its header declares {declared:,} bytes of tensors but the "
            f"file holds {size - 8 - header_len:,} after it (truncated?)"
        )
    return declared


def check_size(
    file: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, limit: str = "max_bytes"
) -> int:
    """The bytes loading checkpoint `file` will hold in memory (see the module docstring).

    Raises CheckpointError naming the file, its sizes and the limit (`limit` says who set it:
    an argument, a setting) when that is over `max_bytes`; or when a zip is packed in a way
    no checkpoint is (compressed or archive members), or cannot be read.
    """
    file = Path(file)
    with open(file, "rb") as f:
        is_zip = f.read(4) == _ZIP_MAGICS[0]
    if is_zip:
        return _zip_size(file, max_bytes, limit)
    size = _safetensors_size(file)
    if size > max_bytes:
        raise _too_large(file, size, max_bytes, limit)
    return size
