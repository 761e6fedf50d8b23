"""Distillation data: photos of the teacher's input domain, no targets (the teacher makes them).

`--data DIR`: DIR/train/ (+ DIR/val/ or DIR/test/ held out) when it has them, else every image
under DIR, with each tenth file (sorted, the 10th, 20th, ...) held out for validation.
`--dataset NAME`: a public unpaired set's input side (trainA/ + testA/; trainB/ + testB/ with
--direction BtoA). Training samples: the photo with its short side resized to a random size
from crop_size to load_size (aspect kept), a random crop_size square, a random flip, drawn from
the sample's own (seed, epoch, index) generator. Validation: the centre square of each held-out
photo at crop_size (the first val_images of them). Each sample is {"A": x, "B": x}: the loop's
batches are pairs, and the teacher supplies the second image itself.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from .. import data
from ..data.layout import list_images
from ..data.samples import load_rgb, sample_rng
from ..errors import DatasetError
from ..media.processing import to_tensor
from . import distributed
from .config import TrainConfig
from .distributed import World

HOLD_OUT_EVERY = 10  # a flat folder: files 10, 20, ... (1-based, sorted) are held out


class PhotoDataset(Dataset):
    """Photo crops; `train=False`: the deterministic centre square (validation)."""

    def __init__(self, files: list[Path], c: TrainConfig, train: bool) -> None:
        self.files, self.c, self.train = files, c, train

    def __len__(self) -> int:
        return len(self.files)

    def _view(self, img: Image.Image, rng: random.Random | None) -> Image.Image:
        crop = self.c.crop_size
        short = rng.randint(crop, max(crop, self.c.load_size)) if rng else crop
        w, h = img.size
        scale = short / min(w, h)
        w, h = max(crop, round(w * scale)), max(crop, round(h * scale))
        img = img.resize((w, h), Image.BICUBIC)
        x = rng.randint(0, w - crop) if rng else (w - crop) // 2
        y = rng.randint(0, h - crop) if rng else (h - crop) // 2
        img = img.crop((x, y, x + crop, y + crop))
        if rng and self.c.flip and rng.random() > 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return img

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        rng = sample_rng(self.c.seed, epoch, index) if self.train else None
        x = to_tensor(self._view(load_rgb((self.files[index], "full"), "photo"), rng))[0]
        return {"A": x, "B": x}


def _split(root: Path, c: TrainConfig) -> tuple[list[Path], list[Path]]:
    """(training photos, held-out photos) of a local folder (see the module docstring)."""
    if (root / "train").is_dir():
        held = next((root / v for v in ("val", "test") if (root / v).is_dir()), None)
        return list_images(root / "train"), list_images(held) if held else []
    files = list_images(root)
    held = files[HOLD_OUT_EVERY - 1 :: HOLD_OUT_EVERY] if c.val_images else []
    return [f for f in files if f not in held], held


def _public(c: TrainConfig, world: World) -> tuple[list[Path], list[Path]]:
    """The input side of a public unpaired dataset, downloaded once under torchrun."""
    if world.main:
        data.fetch_dataset(c.dataset, "cyclegan", c.data_root, c.dataset_url_base)
    distributed.barrier(world)
    root = data.fetch_dataset(c.dataset, "cyclegan", c.data_root, c.dataset_url_base)
    side = "B" if c.direction == "BtoA" else "A"
    if not (root / f"train{side}").is_dir():
        raise DatasetError(f"{c.dataset} has no train{side}/ folder of photos to distil on")
    test = root / f"test{side}"
    return list_images(root / f"train{side}"), list_images(test) if test.is_dir() else []


def load_photos(c: TrainConfig, world: World) -> tuple[Dataset, Dataset | None, bool]:
    """(training photos, held-out photos or None, False: validation pairs are not real)."""
    if c.dataset.startswith("hf:"):
        raise DatasetError("distill reads a folder of photos (--data DIR) or a public dataset")
    train, held = _public(c, world) if c.dataset else _split(Path(c.data), c)
    held = held[: c.val_images]
    val = PhotoDataset(held, c, train=False) if held else None
    return PhotoDataset(train, c, train=True), val, False
