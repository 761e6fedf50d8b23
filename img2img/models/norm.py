"""Normalisation layers shared by the classic generators and the PatchGAN.

`norm` is a plain string in every constructor ("batch", "instance", "none") so that it can
be written to config.json. The classic implementation derives conv biases from the norm
type (`use_bias = norm_layer == nn.InstanceNorm2d`); `conv_bias` keeps that rule, so our
state dicts have exactly the keys of the original checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

NORMS = ("batch", "instance", "none")


class BatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that can normalise each image with its own statistics.

    Official pix2pix results were made with BatchNorm in train mode on a batch of one: the
    layer used the statistics of that image. With `image_stats = True` we compute exactly
    that (instance normalisation with this layer's affine parameters), for any batch size
    and without ever touching the running statistics. State-dict keys are BatchNorm2d's.
    """

    image_stats: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_stats:
            # (B, C, H, W): per-image, per-channel mean and biased variance, like BN train mode.
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        return super().forward(x)


def make_norm(norm: str, channels: int) -> nn.Module:
    """The classic `get_norm_layer(norm)(channels)`: affine BN, non-affine IN, or nothing."""
    if norm == "batch":
        return BatchNorm2d(channels, affine=True, track_running_stats=True)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm {norm!r}; expected one of {NORMS}")


def conv_bias(norm: str) -> bool:
    """Conv layers followed by a norm carry a bias only for instance norm (classic rule)."""
    if norm not in NORMS:
        raise ConfigError(f"unknown norm {norm!r}; expected one of {NORMS}")
    return norm == "instance"


def set_image_stats(module: nn.Module, enabled: bool) -> None:
    """Switch every BatchNorm2d in `module` between image statistics and running statistics."""
    for m in module.modules():
        if isinstance(m, BatchNorm2d):
            m.image_stats = enabled


def set_dropout(module: nn.Module, enabled: bool) -> None:
    """Turn dropout on (train mode) or off without changing the mode of any other layer."""
    for m in module.modules():
        if isinstance(m, nn.Dropout):
            m.train(enabled)


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """Classic 'normal' init: conv weights N(0, gain), BN weights N(1, gain), biases 0.
    A module built on the meta device (only its shapes are read) has nothing to initialise."""
    if any(p.is_meta for p in module.parameters()):
        return
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
