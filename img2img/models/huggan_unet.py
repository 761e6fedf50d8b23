"""The U-Net of the HugGAN pix2pix models (`huggan/pix2pix-*` on the Hub).

Those repos were trained with the community-event script derived from eriklindernoren's
PyTorch-GAN: eight `UNetDown` and seven `UNetUp` blocks with non-affine instance norm,
dropout 0.5 in down4..down8 and up1..up4, the skip concatenated *after* the up-sampled
features, and a final Upsample -> ZeroPad(1, 0, 1, 0) -> Conv4 -> Tanh. Keys are theirs
(`down1.model.0.weight` ... `final.2.bias`, 17 tensors). Inputs must be multiples of 256.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .configurable import register_to_config
from .norm import init_weights


class UNetDown(nn.Module):
    def __init__(self, in_size: int, out_size: int, normalize: bool = True, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_size, out_size, 4, 2, 1, bias=False)]
        if normalize:
            layers.append(nn.InstanceNorm2d(out_size))
        layers.append(nn.LeakyReLU(0.2))
        if dropout:
            layers.append(nn.Dropout(dropout))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UNetUp(nn.Module):
    def __init__(self, in_size: int, out_size: int, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_size, out_size, 4, 2, 1, bias=False),
            nn.InstanceNorm2d(out_size),
            nn.ReLU(inplace=True),
        ]
        if dropout:
            layers.append(nn.Dropout(dropout))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.model(x), skip), 1)


class HugGANUNetGenerator(nn.Module):
    """HugGAN `GeneratorUNet`; `ngf` scales every width (64 as published)."""

    architecture = "huggan_unet"

    @register_to_config
    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64) -> None:
        super().__init__()
        c1, c2, c4, c8 = ngf, ngf * 2, ngf * 4, ngf * 8
        self.down1 = UNetDown(in_channels, c1, normalize=False)
        self.down2 = UNetDown(c1, c2)
        self.down3 = UNetDown(c2, c4)
        self.down4 = UNetDown(c4, c8, dropout=0.5)
        self.down5 = UNetDown(c8, c8, dropout=0.5)
        self.down6 = UNetDown(c8, c8, dropout=0.5)
        self.down7 = UNetDown(c8, c8, dropout=0.5)
        self.down8 = UNetDown(c8, c8, normalize=False, dropout=0.5)
        self.up1 = UNetUp(c8, c8, dropout=0.5)
        self.up2 = UNetUp(c8 * 2, c8, dropout=0.5)
        self.up3 = UNetUp(c8 * 2, c8, dropout=0.5)
        self.up4 = UNetUp(c8 * 2, c8, dropout=0.5)
        self.up5 = UNetUp(c8 * 2, c4)
        self.up6 = UNetUp(c4 * 2, c2)
        self.up7 = UNetUp(c2 * 2, c1)
        self.final = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.ZeroPad2d((1, 0, 1, 0)),
            nn.Conv2d(c1 * 2, out_channels, 4, padding=1),
            nn.Tanh(),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]."""
        d1 = self.down1(x)  # (B, ngf, H/2, W/2)
        d2 = self.down2(d1)
        d3 = self.down3(d2)
        d4 = self.down4(d3)
        d5 = self.down5(d4)
        d6 = self.down6(d5)
        d7 = self.down7(d6)
        d8 = self.down8(d7)  # (B, 8 ngf, H/256, W/256)
        u1 = self.up1(d8, d7)
        u2 = self.up2(u1, d6)
        u3 = self.up3(u2, d5)
        u4 = self.up4(u3, d4)
        u5 = self.up5(u4, d3)
        u6 = self.up6(u5, d2)
        u7 = self.up7(u6, d1)  # (B, 2 ngf, H/2, W/2)
        return self.final(u7)


# ---------------------------------------------------------------------------- registry hooks


def size_multiple(config: dict[str, Any]) -> int:
    """Eight stride-2 convolutions: inputs must be multiples of 256."""
    return 256


def matches(state: dict[str, Any]) -> bool:
    return "down1.model.0.weight" in state and "final.2.weight" in state


def config_from_state(state: dict[str, Any]) -> dict[str, Any]:
    first = state["down1.model.0.weight"]  # (ngf, in_channels, 4, 4)
    return dict(
        architecture="huggan_unet",
        in_channels=int(first.shape[1]),
        out_channels=int(state["final.2.weight"].shape[0]),
        ngf=int(first.shape[0]),
    )


def near_miss(state: dict[str, Any]) -> str | None:
    """Why a state dict that starts like a HugGAN U-Net is not one (None: it does not)."""
    if "down1.model.0.weight" in state and "final.2.weight" not in state:
        return "HugGAN U-Net layout (down1.model.0.weight) without its output conv final.2.weight"
    return None
