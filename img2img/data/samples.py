"""Training samples: images (or halves of A|B images), the classic augmentation, and the paired
and unpaired datasets. Samples are addressed by (epoch, index) keys (training/sampler.py); the
augmentation randomness of sample i in epoch e comes from its own generator seeded with
(seed, e, i), so data never depends on worker processes or on resuming.

Preprocessing modes (`--preprocess`, the classic ones; the resize is bicubic, then a random
crop_size x crop_size crop where the mode crops, then the flip):
    resize_and_crop       squash to load_size x load_size, crop (the default: aspect lost)
    crop                  crop from the image at its own size
    scale_width           width to load_size, height by the aspect (at least crop_size)
    scale_width_and_crop  scale_width, then crop
    none                  the image as it is
Every result is then padded (reflect, right and bottom, A and B alike) up to the generator's
size multiple, so a 640x480 frame under `none` reaches a U-Net-256 as 768x512; a crop larger
than the image takes the whole side (then padded). Channels: images are read in the mode of
the network side they feed (media/channels.py: grey, RGB, RGBA; 16-bit grey at full
precision)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import DatasetError, ImageError
from ..media import channels as chans
from ..media.processing import open_image, pad_to_multiple
from .layout import Layout, list_images

PAIRED_FAMILIES = ("pix2pix", "pix2pixhd")  # the train.py families that learn from A|B pairs

PREPROCESS = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
Channels = tuple[int, int]  # (network input A, network output B): 1, 3 or 4 each

# An image reference: a file and which part of it ("full", or the "left"/"right" half), or
# an object whose load(what) gives the RGB image (a dataset row's cell: hf_train.RowImage).
ImageRef = tuple[Path, str]


def load_rgb(ref: ImageRef | Any, what: str = "training image") -> Image.Image:
    """The referenced image (or half of an A|B image) as RGB; DatasetError if unreadable
    (`what` names it in the message: "training image", "test image", ...)."""
    return load_image(ref, what)


def load_image(ref: ImageRef | Any, what: str = "training image", channels: int = 3) -> Image.Image:
    """load_rgb in the mode a `channels`-channel network reads (channels.convert: L or F,
    RGB, RGBA). A dataset row's cell (hf_train) is decoded as RGB first."""
    if not isinstance(ref, tuple):
        img = ref.load(what)
        return img if channels == 3 else chans.convert(img, channels)
    path, part = ref
    try:  # no EXIF rotation, as classic
        img = open_image(path, exif=False)
        img = img.convert("RGB") if channels == 3 else chans.convert(img, channels)
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
    """One preprocessing mode (PREPROCESS) + flip, then padding to `multiple`.

    The default, resize_and_crop: resize to load_size^2 (bicubic), random crop, flip (the
    classic augmentation, bit for bit). `center`: the crop is centred, not drawn (validation).
    """

    load_size: int
    crop_size: int
    flip: bool
    preprocess: str = "resize_and_crop"
    multiple: int = 1  # outputs padded (reflect) up to multiples of this (the generator's)
    center: bool = False

    def resized(self, size: tuple[int, int]) -> tuple[int, int]:
        """(w, h) of an image of `size` after the mode's resize (before the crop)."""
        w, h = size
        if self.preprocess == "resize_and_crop":
            return self.load_size, self.load_size
        if self.preprocess.startswith("scale_width"):  # classic: at least crop_size high
            return self.load_size, int(max(self.load_size * h / w, self.crop_size))
        return w, h

    def crops(self) -> bool:
        return self.preprocess in ("resize_and_crop", "crop", "scale_width_and_crop")

    def params(
        self, rng: random.Random, size: tuple[int, int] | None = None
    ) -> tuple[int, int, bool]:
        """(x, y, flip) for an image of `size` (w, h); drawn in the classic order."""
        w, h = self.resized(size or (self.load_size, self.load_size))
        if self.center:
            x, y = max(0, w - self.crop_size) // 2, max(0, h - self.crop_size) // 2
            return x, y, False
        x = rng.randint(0, max(0, w - self.crop_size))
        y = rng.randint(0, max(0, h - self.crop_size))
        return x, y, self.flip and rng.random() > 0.5

    def __call__(self, img: Image.Image, params: tuple[int, int, bool]) -> torch.Tensor:
        """Image (a channels.convert mode) -> (C, H, W) in [-1, 1]."""
        x, y, flip = params
        size = self.resized(img.size)
        if size != img.size:
            img = img.resize(size, Image.BICUBIC)
        if self.crops():
            w, h = min(self.crop_size, size[0]), min(self.crop_size, size[1])
            img = img.crop((x, y, x + w, y + h))
        if flip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return pad_to_multiple(chans.to_tensor(img), self.multiple)[0]

    def evaluation(self) -> Augment:
        """The validation transform: no flip, nothing drawn. resize_and_crop: resize to
        crop_size^2 (the official test protocol at crop 256); the other modes: the same
        resize, the crop centred."""
        if self.preprocess == "resize_and_crop":
            return Augment(self.crop_size, self.crop_size, False, multiple=self.multiple)
        return dataclasses.replace(self, flip=False, center=True)


def sample_rng(seed: int, epoch: int, index: int) -> random.Random:
    """The augmentation generator of one sample: a pure function of (seed, epoch, index)."""
    return random.Random(f"{seed}/{epoch}/{index}")  # str seeds hash with SHA-512: stable


def _key(key: int | tuple[int, int]) -> tuple[int, int]:
    return key if isinstance(key, tuple) else (0, key)


class PairedDataset(Dataset):
    """Aligned pairs; A and B of a pair share one crop and one flip.

    `files[i]` is an A|B image file, or an (A, B) pair of references (hf_train's rows).
    `channels`: what the network reads (A, after any swap) and makes (B)."""

    def __init__(
        self, files: Sequence[Path | tuple[Any, Any]], augment: Augment, seed: int, swap: bool,
        channels: Channels = (3, 3),
    ) -> None:  # fmt: skip
        self.files, self.augment, self.seed, self.swap = files, augment, seed, swap
        self.channels = channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = _key(key)
        item = self.files[index]
        refs = list(item) if isinstance(item, tuple) else [(item, "left"), (item, "right")]
        refs = refs[::-1] if self.swap else refs
        a, b = (load_image(r, channels=n) for r, n in zip(refs, self.channels, strict=True))
        params = self.augment.params(sample_rng(self.seed, epoch, index), a.size)
        return {"A": self.augment(a, params), "B": self.augment(b, params)}


class UnpairedDataset(Dataset):
    """Two image lists: A in order, B drawn at random per sample (classic unaligned mode).

    `random_b=False` pairs A[i] with B[i % len(B)] (validation: deterministic, no draw).
    """

    def __init__(
        self, a: Sequence[Any], b: Sequence[Any], augment: Augment, seed: int, random_b: bool,
        channels: Channels = (3, 3),
    ) -> None:  # fmt: skip
        self.a, self.b, self.augment, self.seed, self.random_b = a, b, augment, seed, random_b
        self.channels = channels

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = _key(key)
        rng = sample_rng(self.seed, epoch, index)
        j = rng.randrange(len(self.b)) if self.random_b else index % len(self.b)
        a = load_image(self.a[index % len(self.a)], channels=self.channels[0])
        b = load_image(self.b[j], channels=self.channels[1])
        return {
            "A": self.augment(a, self.augment.params(rng, a.size)),
            "B": self.augment(b, self.augment.params(rng, b.size)),
        }


def _make(
    folders: tuple[Path, ...], kind: str, paired: bool, augment: Augment, seed: int,
    swap: bool, limit: int | None, channels: Channels = (3, 3),
) -> Dataset:  # fmt: skip
    if paired:
        return PairedDataset(list_images(folders[0])[:limit], augment, seed, swap, channels)
    if kind == "aligned":  # a paired set used unpaired: left halves are A, right halves B
        files = list_images(folders[0])[:limit]
        a, b = [(f, "left") for f in files], [(f, "right") for f in files]
    else:
        a, b = ([(f, "full") for f in list_images(d)[:limit]] for d in folders)
    a, b = (b, a) if swap else (a, b)
    return UnpairedDataset(a, b, augment, seed, limit is None, channels)


def open_datasets(
    layout: Layout, family: str, direction: str, augment: Augment, seed: int, val_images: int,
    channels: Channels = (3, 3),
) -> tuple[Dataset, Dataset | None]:  # fmt: skip
    """(training set, validation set or None); BtoA swaps A and B (`channels` are the
    network's: input, output, after the swap).

    Validation uses the first `val_images` held-out images through `augment.evaluation()`
    (resize_and_crop: resized to crop_size without crop or flip), as real pairs whenever the
    data is aligned (so paired metrics apply).
    """
    if family in PAIRED_FAMILIES and layout.kind != "aligned":
        raise DatasetError(
            f"{family} needs paired images (train/ with A|B side by side); {layout.root} "
            "holds unpaired trainA/ and trainB/ folders: train cyclegan on it instead"
        )
    swap, aligned = direction == "BtoA", layout.kind == "aligned"
    paired = family in PAIRED_FAMILIES
    train = _make(layout.train, layout.kind, paired, augment, seed, swap, None, channels)
    if not (layout.val and val_images):
        return train, None
    evaluate = augment.evaluation()
    return train, _make(
        layout.val, layout.kind, aligned, evaluate, seed, swap, val_images, channels
    )
