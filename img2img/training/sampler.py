"""The order of training samples: seeded per epoch, sharded per process, resumable.

Keys are (epoch, index) pairs, which img2img.data datasets accept, so a sample (and its
augmentation) is a pure function of its key wherever it is loaded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler):
    """Yields (epoch, index) keys: a seeded permutation per epoch, this rank's share of it.

    The order is a pure function of (seed, epoch) (like DistributedSampler: padded to a
    multiple of the world size, rank r takes every world-th index from r). `set_epoch(e,
    start)` skips the first `start` samples of this rank, to resume in the middle of an epoch;
    a `start` at or past the end of the epoch is a ValueError, never an empty epoch (a loop
    waiting for the next batch would spin forever: the trainer moves such a position to the
    next epoch first, see progress.fit_position).
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True):
        self.n, self.seed, self.rank, self.world, self.shuffle = n, seed, rank, world, shuffle
        self.per_rank = math.ceil(n / world)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        if not 0 <= start < self.per_rank:
            raise ValueError(f"start {start} is outside an epoch of {self.per_rank} samples")
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        total = self.per_rank * self.world  # padded by repeating the start of the order
        order = (order * math.ceil(total / self.n))[:total]
        for index in order[self.rank :: self.world][self.start :]:
            yield self.epoch, index
