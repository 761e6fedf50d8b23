"""Multi-process training under torchrun: process group, device, DDP wrapping, collectives.

`torchrun --nproc_per_node N train.py ...` sets RANK / WORLD_SIZE / LOCAL_RANK; we join a
process group (NCCL on GPUs, gloo on CPUs), give each process its GPU, wrap the trained
networks in DistributedDataParallel (gradients averaged, so every rank holds the same
weights), shard the data with training.sampler.EpochSampler, and let rank 0 alone log, validate,
save and export. A stop signal reaches the ranks at different moments: `any_rank` makes them
agree, after each step, on whether to stop (a rank stopping alone would leave the others
waiting in a collective). A single process (no torchrun) runs the same code with world size 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    flags: Any = field(default=None, compare=False, repr=False)  # CPU group for any_rank

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched_rank() -> int:
    """This process's rank as torchrun set it (0 without torchrun), before setup()."""
    return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0


def setup(device: str) -> World:
    """Join the torchrun process group when there is one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and not device.startswith("cpu")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if use_cuda else "gloo")
    # A per-step stop flag over NCCL would sync the GPU every step: flags go over gloo.
    flags = dist.new_group(backend="gloo") if use_cuda else None
    return World(rank, size, local_rank, flags)


def choose_device(flag: str, world: World) -> torch.device:
    """--device if given, else this process's GPU, else the CPU."""
    if flag:
        device = torch.device(flag)
        if device.type == "cuda" and world.distributed and device.index is None:
            device = torch.device("cuda", world.local_rank)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", world.local_rank)
    return torch.device("cpu")


def wrap(net: nn.Module, world: World, device: torch.device) -> nn.Module:
    """DDP around a network that trains (parameters broadcast from rank 0 here).

    Buffers are not re-broadcast at each forward: D runs several times before one backward
    and BatchNorm's backward needs its running stats untouched in between. Each process
    keeps its own running statistics; rank 0's are saved (as with the classic DataParallel,
    whose replicas' updates are discarded).
    """
    if not world.distributed:
        return net
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids, broadcast_buffers=False)


def all_gather(obj: Any, world: World) -> list[Any]:
    """[obj of rank 0, obj of rank 1, ...] on every rank (picklable objects, CPU tensors)."""
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def any_rank(flag: bool, world: World) -> bool:
    """True on every rank when `flag` is true on at least one (a one-int all-reduce on CPU)."""
    if not world.distributed:
        return flag
    value = torch.tensor([int(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=world.flags)
    return bool(value.item())


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def teardown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
