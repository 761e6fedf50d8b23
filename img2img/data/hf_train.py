"""`train.py --dataset hf:NAME`: a Hugging Face dataset as training and validation sets.

NAME is anything hf.find_source reads (a Hub id on HF_ENDPOINT, a save_to_disk folder,
parquet files, an image folder). Two layouts, as HugGAN publishes them:

    columns  one split, two Image columns: A and B (HugGAN's `imageA` / `imageB`, or
             `--hf-columns A,B`). pix2pix pairs the two cells of a row; CycleGAN draws them
             independently (a row with an empty cell gives no image on that side).
    splits   CycleGAN / CUT: splits `trainA` and `trainB`, each with one Image column
             (validation: `testA` / `testB` or `valA` / `valB`).
    labels   CycleGAN / CUT: one Image column and one ClassLabel column, what `datasets` makes
             of an image folder (`train/horse/*.jpg`, `train/zebra/*.jpg`: labels horse and
             zebra; a Berkeley folder read this way has labels trainA, trainB, testA, testB).
             A and B are two of the labels: `--hf-labels A,B`, else trainA / trainB (then
             testA / testB of the same split validate), else the only two.

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
    require_datasets,
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

    def __init__(
        self, ds: Any, column: str, name: str, limit: int | None = None,
        only: Sequence[int] | None = None,
    ) -> None:  # fmt: skip
        """`only`: the rows to take (a label's rows), in order; default every row."""
        self.ds, self.column, self.name = ds.select_columns([column]), column, name
        nulls = ds.data.column(column).null_count
        rows = range(len(ds)) if not nulls else _valid_rows(ds, column)
        if only is not None:
            keep = rows if isinstance(rows, range) else set(rows)  # range: O(1) `in` already
            rows = [i for i in only if i in keep]
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


def _columns(
    source: Source, split: str, columns: tuple[str, str] | None, limit: int | None,
    loaded: tuple[Any, Any] | None = None,
):  # fmt: skip
    """`loaded`: the split as `_split` returned it, where the caller has it already."""
    ds, features = loaded or _split(source, split)
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


def parse_columns(
    text: str, flag: str = "--hf-columns", what: str = "column"
) -> tuple[str, str] | None:
    """`--hf-columns A,B` -> ("A", "B"); "" -> None. DatasetError if not two names."""
    if not text:
        return None
    names = tuple(n.strip() for n in text.split(","))
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        raise DatasetError(f"{flag} takes two different {what} names A,B, got {text!r}")
    return names  # type: ignore[return-value]


def label_column(features: Any) -> str | None:
    """The one ClassLabel column beside one Image column (the labels layout), else None."""
    ClassLabel = require_datasets().ClassLabel
    labels = [name for name, f in features.items() if isinstance(f, ClassLabel)]
    return labels[0] if len(labels) == 1 and len(image_columns(features)) == 1 else None


def choose_labels(source: Source, names: Sequence[str], wanted: tuple[str, str] | None):
    """((A label, B label), validation labels or None) of a labels-layout split."""
    if wanted is not None:  # _labelled refuses a label the split lacks
        return wanted, None
    if {"trainA", "trainB"} <= set(names):  # a Berkeley folder read as an image folder
        return ("trainA", "trainB"), next((v for v in VAL_UNPAIRED if set(v) <= set(names)), None)
    if len(names) == 2:
        return (names[0], names[1]), None
    raise DatasetError(
        f"{source.ref} has {len(names)} labels {list(names)}: choose domain A and domain B "
        "with --hf-labels A,B"
    )


def _labelled(
    source: Source, split: str, labels: tuple[str, str], limit: int | None,
    loaded: tuple[Any, Any] | None = None,
) -> tuple[ColumnImages, ColumnImages]:  # fmt: skip
    """Domain A and domain B of a labels-layout split: the rows of each of two labels.
    `loaded`: the split as `_split` returned it, where the caller has it already."""
    ds, features = loaded or _split(source, split)
    column = label_column(features)
    if column is None:
        raise DatasetError(
            f"{source.ref} split {split!r} is not one Image column with one ClassLabel column "
            f"(columns: {list(features)})"
        )
    names = features[column].names
    ids = ds.data.column(column).to_pylist()
    image = image_columns(features)[0]
    sides = []
    for label in labels:
        if label not in names:
            raise DatasetError(f"{source.ref} split {split!r} has no label {label!r}: {names}")
        k = names.index(label)
        rows = [i for i, v in enumerate(ids) if v == k]
        sides.append(ColumnImages(ds, image, f"{source.ref} {split} label {label!r}", limit, rows))
    return sides[0], sides[1]


def _labels_sets(
    source: Source, splits: Sequence[str], labels: tuple[str, str],
    held: tuple[str, str] | None, augment: Augment, evaluate: Augment, swap: bool, seed: int,
    val_images: int, train_split: tuple[Any, Any],
) -> tuple[Dataset, Dataset | None, bool]:  # fmt: skip
    """The unpaired training and validation sets of a labels-layout source: `labels` of the
    train split (`train_split`, loaded); validation: `held` labels of the train split, else
    `labels` of a held-out split that has them."""
    a, b = _labelled(source, "train", labels, None, train_split)
    a, b = (b, a) if swap else (a, b)
    train = UnpairedDataset(a, b, augment, seed, random_b=True)
    split = "train" if held else next((v for v in VAL_SPLITS if v in splits), None)
    if split is None or not val_images:
        return train, None, False
    try:
        loaded = train_split if split == "train" else None
        va, vb = _labelled(source, split, held or labels, val_images, loaded)
    except DatasetError:  # a held-out split without these labels: no validation
        return train, None, False
    va, vb = (vb, va) if swap else (va, vb)
    return train, UnpairedDataset(va, vb, evaluate, seed, random_b=False), False


def open_hf_datasets(
    name: str, family: str, direction: str, augment: Augment, seed: int, val_images: int,
    columns: str = "", labels: str = "",
) -> tuple[Dataset, Dataset | None, bool]:  # fmt: skip
    """(training set, validation set or None, whether validation pairs are real pairs) from
    the Hugging Face dataset `name` (module docstring); BtoA swaps A and B."""
    source = find_source(name.removeprefix(PREFIX))
    splits, wanted = split_names(source), parse_columns(columns)
    chosen = parse_columns(labels, "--hf-labels", "label")
    swap, evaluate = direction == "BtoA", Augment(augment.crop_size, augment.crop_size, False)
    paired = family in PAIRED_FAMILIES
    if not paired and wanted is None and {"trainA", "trainB"} <= set(splits):
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
    train_split = _split(source, "train")  # loaded once, for every use below
    train_features = train_split[1]
    label = label_column(train_features) if wanted is None else None
    labelled = label is not None
    if chosen is not None and not labelled:
        raise DatasetError(
            f"--hf-labels needs a train split of one Image column and one ClassLabel column; "
            f"{source.ref} has {list(train_features)}"
        )
    if labelled and paired:
        raise DatasetError(
            f"{source.ref} is labelled images (one Image column and its labels), which hold no "
            f"pairs: {family} needs a train split with A and B image columns (--hf-columns A,B); "
            "the unpaired families train on labelled images"
        )
    if labelled:
        labels, held = choose_labels(source, train_features[label].names, chosen)
        return _labels_sets(
            source, splits, labels, held, augment, evaluate, swap, seed, val_images, train_split
        )
    held = next((v for v in VAL_SPLITS if v in splits), None)
    sets = []
    for split, limit, aug in (("train", None, augment), (held, val_images, evaluate)):
        if split is None or limit == 0:
            sets.append(None)
            continue
        a, b = _columns(source, split, wanted, limit, train_split if split == "train" else None)
        a, b = (b, a) if swap else (a, b)
        if paired:
            sets.append(PairedDataset(RowPairs(a, b), aug, seed, swap=False))
        else:
            sets.append(UnpairedDataset(a, b, aug, seed, random_b=limit is None))
    return sets[0], sets[1], paired
