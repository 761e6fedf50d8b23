"""Hostile checkpoint files made from honest ones: torch zips re-packed with compressed or
extra members, and generators whose weights hold NaN."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import torch

from .models import tiny_generators


def repacked(
    src: Path, dst: Path, compression: int = zipfile.ZIP_DEFLATED, extra: dict | None = None
) -> Path:
    """The torch.save zip `src` written again to `dst` with `compression` (torch.save only
    ever stores), plus the `extra` members (name inside the archive's folder -> bytes),
    each stored as it is."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        folder = zin.namelist()[0].split("/", 1)[0]
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info), compress_type=compression)
        for name, data in (extra or {}).items():
            zout.writestr(f"{folder}/{name}", data, compress_type=zipfile.ZIP_STORED)
    return dst


def zero_bomb(dst: Path, mbytes: int) -> Path:
    """A torch zip holding `mbytes` MB of float32 zeros, DEFLATE-compressed (~1000 x)."""
    plain = dst.with_suffix(".plain")
    torch.save({"x": torch.zeros(mbytes * 250_000)}, plain)
    repacked(plain, dst)
    plain.unlink()
    return dst


def zip_bomb_bytes(mbytes: int) -> bytes:
    """A plain zip whose one member inflates from ~1 kB per MB to `mbytes` MB of zeros."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("zeros.bin", "w", force_zip64=True) as member:
            for _ in range(mbytes):
                member.write(bytes(10**6))
    return buf.getvalue()


def with_nan(dst: Path, arch: str = "unet", value: float = float("nan")) -> Path:
    """A tiny generator's state dict saved by torch.save, one weight holding `value`."""
    state = tiny_generators()[arch].state_dict()
    key = next(k for k, v in state.items() if k.endswith("weight") and v.is_floating_point())
    state[key].view(-1)[0] = value
    torch.save(state, dst)
    return dst
