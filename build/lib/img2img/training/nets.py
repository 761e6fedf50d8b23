"""The networks, optimizers and learning-rate schedulers of a run, built from its config.

pix2pix: nets G (A -> B) and D (judges cat(A, B), 6 channels); one Adam each.
CycleGAN: G_A (A -> B), G_B (B -> A), D_A (judges B), D_B (judges A); one Adam for both
generators and one for both discriminators, as in the classic code. Creation order is the
classic one, so a seeded run initialises the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..models import PatchGANDiscriminator, build_generator
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


def generator_config(c: TrainConfig) -> dict[str, Any]:
    """The generator's constructor arguments (its exported config.json)."""
    if c.generator == "unet":
        extra = dict(num_downs=c.num_downs, norm=c.norm, dropout=c.dropout)
    elif c.generator == "resnet":
        extra = dict(n_blocks=c.n_blocks, norm=c.norm, dropout=c.dropout)
    else:
        extra = {}
    return dict(architecture=c.generator, in_channels=3, out_channels=3, ngf=c.ngf, **extra)


def _discriminator(c: TrainConfig, in_channels: int) -> nn.Module:
    if c.discriminator == "huggan":
        return HugGANDiscriminator(in_channels, c.ndf)
    return PatchGANDiscriminator(in_channels, c.ndf, c.n_layers_d, c.norm)


def build_networks(c: TrainConfig) -> dict[str, nn.Module]:
    """Freshly initialised networks (N(0, 0.02) weights), in train mode, on the CPU."""
    if c.family == "pix2pix":
        nets = {"G": build_generator(generator_config(c)), "D": _discriminator(c, 6)}
    else:
        nets = {
            "G_A": build_generator(generator_config(c)),
            "G_B": build_generator(generator_config(c)),
            "D_A": _discriminator(c, 3),
            "D_B": _discriminator(c, 3),
        }
    return {name: net.train() for name, net in nets.items()}


def build_optimizers(c: TrainConfig, nets: dict[str, nn.Module]) -> dict[str, torch.optim.Adam]:
    """{"G": Adam over every generator, "D": Adam over every discriminator}."""

    def adam(*modules: nn.Module) -> torch.optim.Adam:
        params = itertools.chain(*(m.parameters() for m in modules))
        return torch.optim.Adam(params, lr=c.lr, betas=(c.beta1, c.beta2))

    if c.family == "pix2pix":
        return {"G": adam(nets["G"]), "D": adam(nets["D"])}
    return {"G": adam(nets["G_A"], nets["G_B"]), "D": adam(nets["D_A"], nets["D_B"])}


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
    schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR], states: dict[str, Any], epoch: int
) -> None:
    """Load scheduler states and set the current rates (as LambdaLR.get_lr computes them)."""
    for name, scheduler in schedulers.items():
        scheduler.load_state_dict(states[name])
        factor = scheduler.lr_lambdas[0](epoch)
        for group, base in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, strict=True):
            group["lr"] = base * factor
        scheduler._last_lr = [g["lr"] for g in scheduler.optimizer.param_groups]
