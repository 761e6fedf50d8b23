"""`train.py --dataset hf:NAME`: a Hugging Face dataset as training and validation sets.

NAME is anything hf.find_source reads (a Hub id on HF_ENDPOINT, a save_to_disk folder,
parquet files, an image folder). Two layouts, as HugGAN publishes them:

    columns  one split, two Image columns: A and B (HugGAN's `imageA` / `imageB`, or
             `--hf-columns A,B`). pix2pix pairs the two cells of a row; CycleGAN draws them
             independently (a row with an empty cell gives no image on that side).
    splits   CycleGAN only: splits `trainA` and `trainB`, each with one Image column
             (validation: `testA` / `testB` or `valA` / `valB`).

Training reads the `train` split (columns) and validates on `validation`, `val` or `test`,
whichever exists. The sets are map-style (memory-mapped Arrow, never streamed): a sample is
a pure function of its (epoch, index) key, so the epoch sampler, DDP sharding and exact
resume work as they do on image folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from ..errors import DatasetError, ImageError
from ..media.processing import open_image
from .hf import (
    Source,
    features_of,
    find_source,
    image_bytes,
    image_columns,
    load_split,
    split_names,
    undecoded,
)
from .samples import PAIRED_FAMILIES, Augment, PairedDataset, UnpairedDataset

PREFIX = "hf:"
HUGGAN_COLUMNS = ("imageA", "imageB")
VAL_SPLITS = ("validation", "val", "test")
VAL_UNPAIRED = (("testA", "testB"), ("valA", "valB"))


@dataclass(frozen=True)
class RowImage:
    """One image cell of a dataset row; load() decodes it (what samples.load_rgb calls)."""

    images: ColumnImages
    index: int

    def load(self, what: str = "training image") -> Image.Image:
        return self.images.load(self.index, what)


class ColumnImages(Sequence):
    """The non-empty cells of one Image column, in row order, as RowImage references."""

    def __init__(self, ds: Any, column: str, name: str, limit: int | None = None) -> None:
        self.ds, self.column, self.name = ds.select_columns([column]), column, name
        nulls = ds.data.column(column).null_count
        rows = range(len(ds)) if not nulls else _valid_rows(ds, column)
        self.rows = rows[:limit]
        if not len(self.rows):
            raise DatasetError(f"{name} has no images in column {column!r}")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> RowImage:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return RowImage(self, i % len(self))

    def load(self, i: int, what: str) -> Image.Image:
        row = self.rows[i]
        where = f"{what} {self.name} row {row} column {self.column!r}"
        try:  # no EXIF rotation, as the classic pipeline (samples.load_rgb)
            return open_image(image_bytes(self.ds[row][self.column], where), exif=False).convert(
                "RGB"
            )
        except ImageError as e:
            raise DatasetError(f"cannot read {where}: {e}") from e


def _valid_rows(ds: Any, column: str) -> list[int]:
    valid = ds.data.column(column).is_valid().to_pylist()
    return [i for i, ok in enumerate(valid) if ok]


class RowPairs(Sequence):
    """(A, B) references of the rows whose two cells both hold images."""

    def __init__(self, a: ColumnImages, b: ColumnImages) -> None:
        if list(a.rows) != list(b.rows):  # keep the rows complete on both sides
            both = sorted(set(a.rows) & set(b.rows))
            a.rows, b.rows = both, both
        self.a, self.b = a, b

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int) -> tuple[RowImage, RowImage]:  # type: ignore[override]
        return self.a[i], self.b[i]


def _split(source: Source, split: str) -> tuple[Any, Any]:
    """(the split with Image columns undecoded, its features)."""
    ds = load_split(source, split, streaming=False)
    features = features_of(ds)
    return undecoded(ds, features), features


def _columns(source: Source, split: str, columns: tuple[str, str] | None, limit: int | None):
    ds, features = _split(source, split)
    wanted = columns or HUGGAN_COLUMNS
    missing = [c for c in wanted if c not in image_columns(features)]
    if missing:
        listed = ", ".join(f"{k} ({type(v).__name__})" for k, v in features.items())
        raise DatasetError(
            f"{source.ref} split {split!r} has no image column {missing[0]!r} (columns: "
            f"{listed}); name the A and B image columns with --hf-columns A,B"
        )
    name = f"{source.ref} {split}"
    return tuple(ColumnImages(ds, c, name, limit) for c in wanted)


def _one_column(source: Source, split: str, limit: int | None) -> ColumnImages:
    ds, features = _split(source, split)
    images = image_columns(features)
    if len(images) != 1:
        raise DatasetError(f"{source.ref} split {split!r} needs one image column, has {images}")
    return ColumnImages(ds, images[0], f"{source.ref} {split}", limit)


def parse_columns(text: str) -> tuple[str, str] | None:
    """`--hf-columns A,B` -> ("A", "B"); "" -> None. DatasetError if not two names."""
    if not text:
        return None
    names = tuple(n.strip() for n in text.split(","))
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        raise DatasetError(f"--hf-columns takes two different column names A,B, got {text!r}")
    return names  # type: ignore[return-value]


def open_hf_datasets(
    name: str, family: str, direction: str, augment: Augment, seed: int, val_images: int,
    columns: str = "",
) -> tuple[Dataset, Dataset | None, bool]:  # fmt: skip
    """(training set, validation set or None, whether validation pairs are real pairs) from
    the Hugging Face dataset `name` (module docstring); BtoA swaps A and B."""
    source = find_source(name.removeprefix(PREFIX))
    splits, wanted = split_names(source), parse_columns(columns)
    swap, evaluate = direction == "BtoA", Augment(augment.crop_size, augment.crop_size, False)
    if family == "cyclegan" and wanted is None and {"trainA", "trainB"} <= set(splits):
        a, b = (_one_column(source, s, None) for s in ("trainA", "trainB"))
        a, b = (b, a) if swap else (a, b)
        train = UnpairedDataset(a, b, augment, seed, random_b=True)
        held = next((v for v in VAL_UNPAIRED if set(v) <= set(splits)), None)
        if held is None or not val_images:
            return train, None, False
        va, vb = (_one_column(source, s, val_images) for s in held)
        va, vb = (vb, va) if swap else (va, vb)
        return train, UnpairedDataset(va, vb, evaluate, seed, random_b=False), False
    if "train" not in splits:
        raise DatasetError(
            f"{source.ref} has no train split (splits: {splits}); expected a train split with "
            "A and B image columns, or (cyclegan) trainA and trainB splits"
        )
    paired = family in PAIRED_FAMILIES
    held = next((v for v in VAL_SPLITS if v in splits), None)
    sets = []
    for split, limit, aug in (("train", None, augment), (held, val_images, evaluate)):
        if split is None or limit == 0:
            sets.append(None)
            continue
        a, b = _columns(source, split, wanted, limit)
        a, b = (b, a) if swap else (a, b)
        if paired:
            sets.append(PairedDataset(RowPairs(a, b), aug, seed, swap=False))
        else:
            sets.append(UnpairedDataset(a, b, aug, seed, random_b=limit is None))
    return sets[0], sets[1], paired
