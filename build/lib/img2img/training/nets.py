"""Network, optimizer and learning-rate schedule builders, from a run's config.

The pieces every family uses: the generator's constructor arguments, a discriminator
(PatchGAN, or HugGAN's for pix2pix), an Adam over some networks, and the linear-decay
schedulers. Which networks a family has, and which Adam updates which, is its recipe
(training/recipes.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..models import PatchGANDiscriminator
from ..models.norm import init_weights
from .config import TrainConfig, lr_factor


class HugGANDiscriminator(nn.Module):
    """The discriminator of the HugGAN pix2pix script (after eriklindernoren/PyTorch-GAN).

    4 x (Conv4s2 [InstanceNorm] LeakyReLU) | ZeroPad(1, 0, 1, 0) | Conv4 -> (B, 1, H/16, W/16).
    Training only: it is never exported, so its keys need match nothing published.
    """

    def __init__(self, in_channels: int = 6, ndf: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        widths = [in_channels, ndf, ndf * 2, ndf * 4, ndf * 8]
        for i, (c_in, c_out) in enumerate(itertools.pairwise(widths)):
            layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))
            if i > 0:
                layers.append(nn.InstanceNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        layers += [nn.ZeroPad2d((1, 0, 1, 0)), nn.Conv2d(ndf * 8, 1, 4, padding=1, bias=False)]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_discriminator(c: TrainConfig, in_channels: int) -> nn.Module:
    """c.discriminator over `in_channels` (6 for pix2pix's (A, B) pairs, 3 for one image)."""
    if c.discriminator == "huggan":
        return HugGANDiscriminator(in_channels, c.ndf)
    return PatchGANDiscriminator(in_channels, c.ndf, c.n_layers_d, c.norm)


def adam(c: TrainConfig, modules: list[nn.Module]) -> torch.optim.Adam:
    """One Adam over the parameters of all `modules` (in order)."""
    params = itertools.chain(*(m.parameters() for m in modules))
    return torch.optim.Adam(params, lr=c.lr, betas=(c.beta1, c.beta2))


def build_schedulers(
    c: TrainConfig, optimizers: dict[str, torch.optim.Optimizer], epoch: Callable[[], int]
) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
    """LambdaLR per optimizer, stepped after every optimizer step.

    The factor is the classic linear policy of the current epoch (`epoch()`, 0-based), so
    the rate changes only at epoch starts, as with the classic per-epoch stepping, and a
    run resumed in the middle of an epoch gets exactly the same rates.
    """

    def factor(_: int) -> float:
        return lr_factor(epoch(), c.n_epochs, c.n_epochs_decay)

    return {k: torch.optim.lr_scheduler.LambdaLR(o, factor) for k, o in optimizers.items()}


def restore_schedulers(
    schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR], states: dict[str, Any]
) -> None:
    """Load scheduler states and set the current rates (as LambdaLR.get_lr computes them).

    Call it after the run's progress is restored: the factor ignores its argument and reads
    the restored epoch through the `epoch()` closure given to build_schedulers.
    """
    for name, scheduler in schedulers.items():
        scheduler.load_state_dict(states[name])
        factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
        for group, base in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, strict=True):
            group["lr"] = base * factor
        scheduler._last_lr = [g["lr"] for g in scheduler.optimizer.param_groups]
