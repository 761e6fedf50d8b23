"""Training samples: images (or halves of A|B images), the classic augmentation, and the paired
and unpaired datasets. Samples are addressed by (epoch, index) keys (training/sampler.py); the
augmentation randomness of sample i in epoch e comes from its own generator seeded with
(seed, e, i), so data never depends on worker processes or on resuming."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import DatasetError, ImageError
from ..media.processing import open_image, to_tensor
from .layout import Layout, list_images

# An image reference: a file and which part of it ("full", or the "left"/"right" half), or
# an object whose load(what) gives the RGB image (a dataset row's cell: hf_train.RowImage).
ImageRef = tuple[Path, str]


def load_rgb(ref: ImageRef | Any, what: str = "training image") -> Image.Image:
    """The referenced image (or half of an A|B image) as RGB; DatasetError if unreadable
    (`what` names it in the message: "training image", "test image", ...)."""
    if not isinstance(ref, tuple):
        return ref.load(what)
    path, part = ref
    try:
        img = open_image(path, exif=False).convert("RGB")  # no EXIF rotation, as classic
    except (ImageError, OSError) as e:
        raise DatasetError(f"cannot read {what} {path}: {e}") from e
    if part == "full":
        return img
    w, h = img.size
    if w < 2:
        raise DatasetError(f"{path} is {w}x{h}: too narrow to hold A and B side by side")
    return img.crop((0, 0, w // 2, h)) if part == "left" else img.crop((w // 2, 0, w, h))


@dataclass(frozen=True)
class Augment:
    """Classic resize_and_crop + flip: resize to load_size^2 (bicubic), random crop, flip."""

    load_size: int
    crop_size: int
    flip: bool

    def params(self, rng: random.Random) -> tuple[int, int, bool]:
        span = max(0, self.load_size - self.crop_size)
        x, y = rng.randint(0, span), rng.randint(0, span)
        return x, y, self.flip and rng.random() > 0.5

    def __call__(self, img: Image.Image, params: tuple[int, int, bool]) -> torch.Tensor:
        """RGB image -> (3, crop_size, crop_size) in [-1, 1]."""
        x, y, flip = params
        img = img.resize((self.load_size, self.load_size), Image.BICUBIC)
        img = img.crop((x, y, x + self.crop_size, y + self.crop_size))
        if flip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_tensor(img)[0]


def sample_rng(seed: int, epoch: int, index: int) -> random.Random:
    """The augmentation generator of one sample: a pure function of (seed, epoch, index)."""
    return random.Random(f"{seed}/{epoch}/{index}")  # str seeds hash with SHA-512: stable


def _key(key: int | tuple[int, int]) -> tuple[int, int]:
    return key if isinstance(key, tuple) else (0, key)


class PairedDataset(Dataset):
    """Aligned pairs; A and B of a pair share one crop and one flip.

    `files[i]` is an A|B image file, or an (A, B) pair of references (hf_train's rows)."""

    def __init__(
        self, files: Sequence[Path | tuple[Any, Any]], augment: Augment, seed: int, swap: bool
    ) -> None:
        self.files, self.augment, self.seed, self.swap = files, augment, seed, swap

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = _key(key)
        item = self.files[index]
        refs = list(item) if isinstance(item, tuple) else [(item, "left"), (item, "right")]
        a, b = (load_rgb(r) for r in (refs[::-1] if self.swap else refs))
        params = self.augment.params(sample_rng(self.seed, epoch, index))
        return {"A": self.augment(a, params), "B": self.augment(b, params)}


class UnpairedDataset(Dataset):
    """Two image lists: A in order, B drawn at random per sample (classic unaligned mode).

    `random_b=False` pairs A[i] with B[i % len(B)] (validation: deterministic, no draw).
    """

    def __init__(
        self, a: Sequence[Any], b: Sequence[Any], augment: Augment, seed: int, random_b: bool
    ) -> None:
        self.a, self.b, self.augment, self.seed, self.random_b = a, b, augment, seed, random_b

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = _key(key)
        rng = sample_rng(self.seed, epoch, index)
        j = rng.randrange(len(self.b)) if self.random_b else index % len(self.b)
        a, b = load_rgb(self.a[index % len(self.a)]), load_rgb(self.b[j])
        return {
            "A": self.augment(a, self.augment.params(rng)),
            "B": self.augment(b, self.augment.params(rng)),
        }


def _make(
    folders: tuple[Path, ...], kind: str, paired: bool, augment: Augment, seed: int,
    swap: bool, limit: int | None,
) -> Dataset:  # fmt: skip
    if paired:
        return PairedDataset(list_images(folders[0])[:limit], augment, seed, swap)
    if kind == "aligned":  # a paired set used unpaired: left halves are A, right halves B
        files = list_images(folders[0])[:limit]
        a, b = [(f, "left") for f in files], [(f, "right") for f in files]
    else:
        a, b = ([(f, "full") for f in list_images(d)[:limit]] for d in folders)
    a, b = (b, a) if swap else (a, b)
    return UnpairedDataset(a, b, augment, seed, random_b=limit is None)


def open_datasets(
    layout: Layout, family: str, direction: str, augment: Augment, seed: int, val_images: int
) -> tuple[Dataset, Dataset | None]:
    """(training set, validation set or None); BtoA swaps A and B.

    Validation uses the first `val_images` held-out images, resized to crop_size without
    crop or flip, as real pairs whenever the data is aligned (so paired metrics apply).
    """
    if family == "pix2pix" and layout.kind != "aligned":
        raise DatasetError(
            f"pix2pix needs paired images (train/ with A|B side by side); {layout.root} "
            "holds unpaired trainA/ and trainB/ folders: train cyclegan on it instead"
        )
    swap, aligned = direction == "BtoA", layout.kind == "aligned"
    train = _make(layout.train, layout.kind, family == "pix2pix", augment, seed, swap, None)
    if not (layout.val and val_images):
        return train, None
    evaluate = Augment(augment.crop_size, augment.crop_size, flip=False)
    return train, _make(layout.val, layout.kind, aligned, evaluate, seed, swap, val_images)
