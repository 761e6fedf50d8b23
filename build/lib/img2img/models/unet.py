"""The pix2pix U-Net generator (Isola et al. 2017), state-dict compatible with the classic code.

The network is built recursively from the innermost block outwards, as in
junyanz/pytorch-CycleGAN-and-pix2pix, so our keys (`model.model.1.model.3...`) are the keys
of the published `.pth` files and a checkpoint converts with no renaming. Each block is

    x -> [LeakyReLU] -> Conv4s2 -> [Norm] -> submodule -> ReLU -> ConvT4s2 -> [Norm] -> [Dropout]
    output = cat([x, that], dim=1)                       (outermost: no cat, Tanh at the end)

With `num_downs` = 8 a 256x256 input reaches a 1x1 bottleneck ("unet_256"); 7 is "unet_128".
Inputs must be multiples of 2 ** num_downs (`size_multiple`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from .configurable import register_to_config
from .norm import conv_bias, init_weights, make_norm


class UNetBlock(nn.Module):
    """One resolution level: down-sample, run `submodule`, up-sample, concatenate the skip."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        bias = conv_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        # Creation order matches the classic code, so seeded init draws the same numbers.
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = make_norm(norm, inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = make_norm(norm, outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(
                inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias
            )
            layers = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(
                inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias
            )
            layers = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        # x: (B, outer_nc, H, W) -> (B, 2 * outer_nc, H, W)
        return torch.cat([x, self.model(x)], 1)


class UNetGenerator(nn.Module):
    """pix2pix generator. Defaults are the paper's `unet_256`: ngf 64, batch norm, dropout."""

    architecture = "unet"

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = True,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ConfigError(f"num_downs must be >= 5, got {num_downs}")
        kw = dict(norm=norm)
        block = UNetBlock(ngf * 8, ngf * 8, innermost=True, **kw)
        for _ in range(num_downs - 5):  # the 512-channel middle levels carry the dropout
            block = UNetBlock(ngf * 8, ngf * 8, submodule=block, dropout=dropout, **kw)
        block = UNetBlock(ngf * 4, ngf * 8, submodule=block, **kw)
        block = UNetBlock(ngf * 2, ngf * 4, submodule=block, **kw)
        block = UNetBlock(ngf, ngf * 2, submodule=block, **kw)
        self.model = UNetBlock(
            out_channels, ngf, input_nc=in_channels, submodule=block, outermost=True, **kw
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]."""
        return self.model(x)


# ---------------------------------------------------------------------------- registry hooks


def size_multiple(config: dict[str, Any]) -> int:
    """Inputs must be multiples of 2 ** num_downs (a 1x1 bottleneck at 256 for unet_256)."""
    return 2 ** int(config.get("num_downs", 8))


def matches(state: dict[str, Any]) -> bool:
    """junyanz U-Net: the outermost down-conv is `model.model.0`."""
    return "model.model.0.weight" in state


def config_from_state(state: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments read off the tensors of a junyanz U-Net state dict."""
    first = state["model.model.0.weight"]  # (ngf, in_channels, 4, 4)
    last = state.get("model.model.3.weight")  # ConvTranspose: (2 ngf, out_channels, 4, 4)
    if last is None:
        raise CheckpointError("junyanz U-Net checkpoint has no outermost up-conv model.model.3")
    num_downs, prefix = 1, "model.model.1"
    while f"{prefix}.model.1.weight" in state:  # each nested level has a down-conv at .1
        num_downs += 1
        prefix += ".model.3"
    if "model.model.1.model.2.weight" in state:  # affine norm after the level-1 down-conv
        norm = "batch"
    elif "model.model.1.model.1.bias" in state:  # convs carry a bias only with instance norm
        norm = "instance"
    else:
        norm = "none"
    return dict(
        architecture="unet",
        in_channels=int(first.shape[1]),
        out_channels=int(last.shape[1]),
        num_downs=num_downs,
        ngf=int(first.shape[0]),
        norm=norm,
        dropout=True,  # dropout has no weights; pix2pix generators are trained with it
    )
