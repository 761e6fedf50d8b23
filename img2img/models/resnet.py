"""The CycleGAN ResNet generator (Zhu et al. 2017, after Johnson et al.), classic-compatible.

    ReflectPad3 Conv7 Norm ReLU | 2 x (Conv3s2 Norm ReLU) | n_blocks x ResnetBlock
    | 2 x (ConvT3s2 Norm ReLU) | ReflectPad3 Conv7 Tanh

Kept as one `nn.Sequential` named `model` so the state-dict keys (`model.10.conv_block.1...`)
are those of the published CycleGAN `.pth` files. Inputs must be multiples of 4.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from .configurable import register_to_config
from .norm import conv_bias, init_weights, make_norm


class ResnetBlock(nn.Module):
    """x + F(x), F = ReflectPad1 Conv3 Norm ReLU [Dropout] ReflectPad1 Conv3 Norm."""

    def __init__(self, dim: int, norm: str, dropout: bool) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=bias),
            make_norm(norm, dim),
            nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=bias),
            make_norm(norm, dim),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN generator. Defaults are the paper's `resnet_9blocks` with instance norm."""

    architecture = "resnet"

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        n_blocks: int = 9,
        ngf: int = 64,
        norm: str = "instance",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ConfigError(f"n_blocks must be >= 0, got {n_blocks}")
        bias = conv_bias(norm)
        layers = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, padding=0, bias=bias),
            make_norm(norm, ngf),
            nn.ReLU(True),
        ]
        for i in range(2):  # down-sampling: ngf -> 2 ngf -> 4 ngf
            c = ngf * 2**i
            layers += [
                nn.Conv2d(c, c * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                make_norm(norm, c * 2),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for i in range(2):  # up-sampling: 4 ngf -> 2 ngf -> ngf
            c = ngf * 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(
                    c, c // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=bias
                ),
                make_norm(norm, c // 2),
                nn.ReLU(True),
            ]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, out_channels, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]."""
        return self.model(x)


# ---------------------------------------------------------------------------- registry hooks


def size_multiple(config: dict[str, Any]) -> int:
    """Two stride-2 convolutions: inputs must be multiples of 4."""
    return 4


_BLOCK_KEY = re.compile(r"model\.(\d+)\.conv_block\.")
_HUGGAN_BLOCK_KEY = re.compile(r"model\.\d+\.block\.")


def matches(state: dict[str, Any]) -> bool:
    """junyanz ResNet: `model.1` is the 7x7 input conv (after ReflectionPad2d(3)), residual
    blocks are `conv_block`s, the decoder starts with a ConvTranspose2d right after them, and
    an affine norm is BatchNorm (running statistics beside its weight). Anything else with a
    7x7 `model.1` (blocks named `block`, Upsample + Conv, affine InstanceNorm) is
    huggan_resnet's: the two matchers never claim the same state dict."""
    w = state.get("model.1.weight")
    if w is None or w.dim() != 4 or tuple(w.shape[-2:]) != (7, 7):
        return False
    if any(_HUGGAN_BLOCK_KEY.match(k) for k in state):
        return False
    if not two_downsamplings(state) or not all(k.startswith("model.") for k in state):
        return False  # a pix2pixHD GlobalGenerator (n_downsample != 2) or LocalEnhancer
    if "model.1.bias" in state and "model.2.running_mean" in state:
        return False  # batch norm after a biased conv: pix2pixHD's, never junyanz's
    n_blocks = len(_block_indices(state))
    if f"model.{10 + n_blocks}.weight" not in state:  # no ConvTranspose2d after the blocks
        return False
    return "model.2.weight" not in state or "model.2.running_mean" in state


def two_downsamplings(state: dict[str, Any]) -> bool:
    """Stride-2 convs (2c, c, 3, 3) at model.4 and model.7, and no third one at model.10 (the
    classic and HugGAN ResNets; pix2pixHD's GlobalGenerator has 1..N)."""
    c = state["model.1.weight"].shape[0]
    for i in (4, 7, 10):
        w = state.get(f"model.{i}.weight")
        if (w is not None and w.dim() == 4 and tuple(w.shape) == (2 * c, c, 3, 3)) != (i < 10):
            return False
        c *= 2
    return True


def _block_indices(state: dict[str, Any]) -> set[int]:
    return {int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k))}


def config_from_state(state: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments read off the tensors of a junyanz ResNet state dict."""
    first = state["model.1.weight"]  # (ngf, in_channels, 7, 7)
    n_blocks = len(_block_indices(state))
    last = state.get(f"model.{10 + n_blocks + 7}.weight")  # final 7x7 conv
    if last is None:
        raise CheckpointError(
            f"junyanz ResNet checkpoint with {n_blocks} conv_block residual blocks lacks its "
            f"output conv model.{10 + n_blocks + 7}.weight"
        )
    if "model.2.weight" in state:
        norm = "batch"
    elif "model.1.bias" in state:
        norm = "instance"
    else:
        norm = "none"
    # With dropout the second conv of each block sits at index 6 (a norm or nothing without).
    dropout = any(k.endswith("conv_block.6.weight") and v.dim() == 4 for k, v in state.items())
    return dict(
        architecture="resnet",
        in_channels=int(first.shape[1]),
        out_channels=int(last.shape[0]),
        n_blocks=n_blocks,
        ngf=int(first.shape[0]),
        norm=norm,
        dropout=dropout,
    )
