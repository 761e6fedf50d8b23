"""A run's data: the training and validation sets (downloaded once under torchrun), the loader.

Samples are keyed by (epoch, index) (training/sampler.py), so a sample and its augmentation
are a pure function of the key, in whichever worker process it is loaded.

A batch stacks samples of one size: preprocess modes that keep each image's size or aspect
(`none`, `scale_width`, `crop` of a small image) need --batch-size 1 unless every image
comes out the same size; a batch that mixes sizes is a DatasetError saying so.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from .. import data
from ..data import hf_train
from ..errors import DatasetError
from . import distributed
from .config import ConfigError, TrainConfig, size_multiple
from .distributed import World
from .interrupt import worker_signals
from .recipes import recipe


def load_data(c: TrainConfig, world: World) -> tuple[Dataset, Dataset | None, bool]:
    """(training set, validation set or None, whether validation pairs are real pairs)."""
    if c.dataset.startswith(hf_train.PREFIX):
        return _hf_data(c, world)
    if c.dataset:
        if world.main:  # one download; the other ranks wait and then find it cached
            data.fetch_dataset(c.dataset, c.family, c.data_root, c.dataset_url_base)
        distributed.barrier(world)
        root = data.fetch_dataset(c.dataset, c.family, c.data_root, c.dataset_url_base)
    else:
        root = Path(c.data)
    layout = data.detect_layout(root, prefer=recipe(c).layout)
    train_set, val_set = data.open_datasets(
        layout, c.family, c.direction, augment(c), c.seed, c.val_images, (c.input_nc, c.output_nc)
    )
    return train_set, val_set, layout.kind == "aligned"


def augment(c: TrainConfig) -> data.Augment:
    """The training transform of `c`: its preprocess mode, padded to the generator's multiple."""
    return data.Augment(c.load_size, c.crop_size, c.flip, c.preprocess, size_multiple(c))


def _hf_data(c: TrainConfig, world: World) -> tuple[Dataset, Dataset | None, bool]:
    """`--dataset hf:NAME` (data/hf_train.py): rank 0 downloads into the HF cache first."""
    if (c.input_nc, c.output_nc) != (3, 3):  # hf_train reads every cell as RGB
        raise ConfigError(
            "--input-nc and --output-nc other than 3 need a local folder or a named dataset "
            "(hf: datasets are read as RGB)"
        )
    args = (c.dataset, c.family, c.direction, augment(c), c.seed, c.val_images, c.hf_columns,
            c.hf_labels)  # fmt: skip
    sets = hf_train.open_hf_datasets(*args) if world.main else None
    distributed.barrier(world)
    return sets or hf_train.open_hf_datasets(*args)


def make_loader(
    dataset: Dataset, sampler: Sampler, c: TrainConfig, device: torch.device
) -> DataLoader:
    # Samples are pure functions of their (epoch, index) keys, so workers can persist across
    # epochs; a private generator keeps iterator creation off the global RNG. Workers ignore
    # SIGINT and any SIGTERM but their parent's (training/interrupt.py): a worker killed by a
    # terminal's Ctrl-C would fail the step the training process is finishing before it saves.
    return DataLoader(
        dataset,
        batch_size=c.batch_size,
        sampler=sampler,
        num_workers=c.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=c.workers > 0,
        generator=torch.Generator(),
        worker_init_fn=_worker_init,
        collate_fn=collate,
    )


def collate(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """default_collate, with a DatasetError naming the sizes when they differ."""
    sizes = {tuple(s[k].shape) for s in samples for k in ("A", "B")}
    if len({(s["A"].shape, s["B"].shape) for s in samples}) > 1:
        raise DatasetError(
            f"one batch holds samples of different sizes {sorted(sizes)}: with this "
            "--preprocess mode use --batch-size 1, or a mode that crops (resize_and_crop, "
            "crop, scale_width_and_crop)"
        )
    return default_collate(samples)


def _worker_init(worker_id: int) -> None:
    worker_signals()  # after torch's own handlers, which let any SIGTERM kill a worker
