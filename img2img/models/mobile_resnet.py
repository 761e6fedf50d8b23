"""A compact ResNet generator for distilled students (after GAN Compression, Li et al. 2020).

    stem: ReflectPad3 Conv7 Norm ReLU | down: 2 x (Conv3s2 Norm ReLU)
    | blocks: n_blocks x MobileBlock | up: 2 x (ConvT3s2 Norm ReLU) | head: ReflectPad3 Conv7 Tanh

The teacher's (CycleGAN ResNet) shape, with each residual block's two 3x3 convolutions made
depthwise-separable (a depthwise 3x3 then a pointwise 1x1: ~9x fewer multiply-adds at the
same width) and the width `ngf` free: at ngf 16 a 256x256 frame costs ~0.8 GMACs against the
ResNet-9's 56.8. Convolutions that a norm follows carry no bias (the norm removes it).
State-dict keys (`stem.1.weight`, `blocks.3.conv.2.weight`) are this module's own, so no other
family claims them. Inputs must be multiples of 4. `train.py distill` trains it.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .configurable import register_to_config
from .norm import init_weights, make_norm

NORMS = ("instance", "batch")


def _separable(dim: int) -> list[nn.Module]:
    """ReflectPad1, depthwise Conv3 (one filter per channel), pointwise Conv1: dim -> dim."""
    return [
        nn.ReflectionPad2d(1),
        nn.Conv2d(dim, dim, kernel_size=3, groups=dim, bias=False),
        nn.Conv2d(dim, dim, kernel_size=1, bias=False),
    ]


class MobileBlock(nn.Module):
    """x + F(x), F = Separable Norm ReLU Separable Norm (the ResnetBlock, separable)."""

    def __init__(self, dim: int, norm: str) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            *_separable(dim), make_norm(norm, dim), nn.ReLU(True),
            *_separable(dim), make_norm(norm, dim),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class MobileResnetGenerator(nn.Module):
    """Distilled-student generator; ngf 16 with 9 blocks is `train.py distill`'s default."""

    architecture = "mobile_resnet"

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        n_blocks: int = 9,
        ngf: int = 16,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ConfigError(f"n_blocks must be >= 0, got {n_blocks}")
        if norm not in NORMS:
            raise ConfigError(f"mobile_resnet norm must be one of {NORMS}, got {norm!r}")
        self.stem = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, bias=False),
            make_norm(norm, ngf),
            nn.ReLU(True),
        )
        down: list[nn.Module] = []
        for c in (ngf, ngf * 2):  # ngf -> 2 ngf -> 4 ngf, each at half the resolution
            down += [nn.Conv2d(c, c * 2, 3, stride=2, padding=1, bias=False)]
            down += [make_norm(norm, c * 2), nn.ReLU(True)]
        self.down = nn.Sequential(*down)
        self.blocks = nn.Sequential(*(MobileBlock(ngf * 4, norm) for _ in range(n_blocks)))
        up: list[nn.Module] = []
        for c in (ngf * 4, ngf * 2):  # 4 ngf -> 2 ngf -> ngf, each at twice the resolution
            up += [nn.ConvTranspose2d(c, c // 2, 3, 2, padding=1, output_padding=1, bias=False)]
            up += [make_norm(norm, c // 2), nn.ReLU(True)]
        self.up = nn.Sequential(*up)
        self.head = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, kernel_size=7), nn.Tanh()
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]."""
        return self.head(self.up(self.blocks(self.down(self.stem(x)))))


# ---------------------------------------------------------------------------- registry hooks


def size_multiple(config: dict[str, Any]) -> int:
    """Two stride-2 convolutions: inputs must be multiples of 4."""
    return 4


_BLOCK_KEY = re.compile(r"blocks\.(\d+)\.conv\.")


def matches(state: dict[str, Any]) -> bool:
    """A 7x7 `stem.1` and a 7x7 `head.1`: no other family has top-level stem/head modules."""
    stem, head = state.get("stem.1.weight"), state.get("head.1.weight")
    return all(
        w is not None and w.dim() == 4 and tuple(w.shape[-2:]) == (7, 7) for w in (stem, head)
    )


def config_from_state(state: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments read off the tensors: widths from the 7x7 convs, the block count
    from `blocks.N.conv` keys, BatchNorm from its running statistics."""
    stem, head = state["stem.1.weight"], state["head.1.weight"]  # (ngf, in, 7, 7), (out, ngf, ..)
    blocks = {int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k))}
    return dict(
        architecture="mobile_resnet",
        in_channels=int(stem.shape[1]),
        out_channels=int(head.shape[0]),
        n_blocks=len(blocks),
        ngf=int(stem.shape[0]),
        norm="batch" if "stem.2.running_mean" in state else "instance",
    )
