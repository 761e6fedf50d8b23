"""Dataset folder layouts: aligned train/ (A|B side by side) or unaligned trainA/ + trainB/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Layout:
    kind: str  # "aligned" (A|B side by side) or "unaligned" (two folders)
    root: Path
    train: tuple[Path, ...]  # aligned: (train,); unaligned: (trainA, trainB)
    val: tuple[Path, ...]  # the held-out split in the same form, () if none


def detect_layout(root: Path, prefer: str = "unaligned") -> Layout:
    """Recognise train/ (aligned) or trainA/ + trainB/ (unaligned) under `root`.

    A folder with both (the classic Cityscapes preparation writes both) gives `prefer`.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    has = {p.name for p in root.iterdir() if p.is_dir()}
    unaligned = {"trainA", "trainB"} <= has
    if "train" in has and (prefer == "aligned" or not unaligned):
        val = next(((root / v,) for v in ("val", "test") if v in has), ())
        return Layout("aligned", root, (root / "train",), val)
    if unaligned:
        val = next(((root / a, root / b) for a, b in _VAL_UNALIGNED if {a, b} <= has), ())
        return Layout("unaligned", root, (root / "trainA", root / "trainB"), val)
    if "trainA" in has or "trainB" in has:
        missing = "trainB" if "trainA" in has else "trainA"
        raise DatasetError(f"{root} has an unpaired layout but no {missing}/ folder")
    found = sorted(p.name for p in root.iterdir())[:12]
    raise DatasetError(
        f"{root} is not a dataset folder: expected train/ (A|B image pairs side by side) "
        f"or trainA/ and trainB/ (unpaired); found {found or 'nothing'}"
    )


_VAL_UNALIGNED = (("valA", "valB"), ("testA", "testB"))


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder` (recursive, sorted); DatasetError when there are none."""
    files = sorted(
        p
        for p in Path(folder).rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")
    )
    if not files:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise DatasetError(f"no images in {folder} (looked for {exts})")
    return files
