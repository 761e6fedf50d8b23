"""The ResNet generator of CUT / FastCUT (Park et al., ECCV 2020), with the authors' keys.

The CycleGAN ResNet with anti-aliased resampling (after Zhang 2019, "Making convolutional
networks shift-invariant again"), as taesungp/contrastive-unpaired-translation builds it by
default (`--netG resnet_9blocks --normG instance`):

    ReflectPad3 Conv7 Norm ReLU
    | 2 x (Conv3s1 Norm ReLU Downsample)          antialias: blur [1 2 1]^2, then stride 2
    | n_blocks x ResnetBlock
    | 2 x (Upsample Conv3s1 Norm ReLU)            antialias_up: x2 through a [1 3 3 1]^2 blur
    | ReflectPad3 Conv7 Tanh

One `nn.Sequential` named `model`, so the keys are those of the authors' `latest_net_G.pth`
(a bare state dict): `model.1.weight`, `model.7.filt`, `model.12.conv_block.1.weight`,
`model.21.filt` ... The fixed blur kernels are persistent buffers (`filt`, one (C, 1, k, k)
copy per channel) because the authors' files carry them. `antialias=False` puts back the
classic Conv3s2 (`--no_antialias`), `antialias_up=False` the ConvTranspose2d decoder
(`--no_antialias_up`); with both off the layout is exactly the junyanz ResNet's, and such a
file loads as `resnet` (same modules, same keys). Inputs must be multiples of 4.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError
from .configurable import register_to_config
from .norm import conv_bias, init_weights, make_norm
from .resnet import ResnetBlock


def binomial_filter(size: int) -> torch.Tensor:
    """(size, size) outer product of a binomial row, summing to 1 (3: [1 2 1], 4: [1 3 3 1])."""
    row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float32)
    kernel = row[:, None] * row[None, :]
    return kernel / kernel.sum()


class Downsample(nn.Module):
    """Blur with a 3x3 binomial kernel (reflect-padded by 1), keep every second pixel:
    (B, C, H, W) -> (B, C, ceil(H / 2), ceil(W / 2)). Per-channel (depthwise) kernel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("filt", binomial_filter(3)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(padded, self.filt, stride=2, groups=x.shape[1])


class Upsample(nn.Module):
    """Double the size through a transposed depthwise 4x4 binomial kernel (x4 so a constant
    stays constant), replicate-padded by 1: (B, C, H, W) -> (B, C, 2H, 2W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        kernel = binomial_filter(4) * 4  # stride**2: each output pixel gets 1/4 of the taps
        self.register_buffer("filt", kernel[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 1, 1), mode="replicate")  # (H + 2)
        # (H + 1) * 2 - 4 + 4 = 2H + 2 rows; the first and the last one fall outside the image.
        y = F.conv_transpose2d(padded, self.filt, stride=2, padding=2, groups=x.shape[1])
        return y[:, :, 1:-1, 1:-1]


class CutResnetGenerator(nn.Module):
    """CUT's generator. Defaults are the authors': 9 blocks, ngf 64, instance norm,
    anti-aliased down- and up-sampling, no dropout."""

    architecture = "cut_resnet"

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        n_blocks: int = 9,
        ngf: int = 64,
        norm: str = "instance",
        dropout: bool = False,
        antialias: bool = True,
        antialias_up: bool = True,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ConfigError(f"n_blocks must be >= 0, got {n_blocks}")
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, padding=0, bias=bias),
            make_norm(norm, ngf),
            nn.ReLU(True),
        ]
        for i in range(2):  # down-sampling: ngf -> 2 ngf -> 4 ngf
            c = ngf * 2**i
            stride = 1 if antialias else 2
            layers += [
                nn.Conv2d(c, c * 2, kernel_size=3, stride=stride, padding=1, bias=bias),
                make_norm(norm, c * 2),
                nn.ReLU(True),
            ]
            if antialias:
                layers.append(Downsample(c * 2))
        layers += [ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for i in range(2):  # up-sampling: 4 ngf -> 2 ngf -> ngf
            c = ngf * 2 ** (2 - i)
            if antialias_up:
                layers += [Upsample(c), nn.Conv2d(c, c // 2, 3, stride=1, padding=1, bias=bias)]
            else:
                layers.append(
                    nn.ConvTranspose2d(
                        c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias
                    )
                )
            layers += [make_norm(norm, c // 2), nn.ReLU(True)]
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
    """Two halvings (blur + stride 2, or a stride-2 conv): multiples of 4."""
    return 4


_FILT_KEY = re.compile(r"model\.(\d+)\.filt")
_BLOCK_KEY = re.compile(r"model\.(\d+)\.conv_block\.")


def matches(state: dict[str, Any]) -> bool:
    """A 7x7 input conv at `model.1` and at least one anti-aliasing `model.N.filt` buffer:
    no other family has `filt` tensors (a CUT file with both switches off has none, and is
    the junyanz ResNet's)."""
    w = state.get("model.1.weight")
    if w is None or w.dim() != 4 or tuple(w.shape[-2:]) != (7, 7):
        return False
    return any(_FILT_KEY.fullmatch(k) for k in state)


def config_from_state(state: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments read off the tensors: where the blur buffers and blocks are."""
    first = state["model.1.weight"]  # (ngf, in_channels, 7, 7)
    antialias = "model.7.filt" in state  # Downsample after the first Conv3s1 / Norm / ReLU
    start = 12 if antialias else 10  # the first residual block
    blocks = sorted({int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k))})
    if blocks != list(range(start, start + len(blocks))):
        raise CheckpointError(
            f"CUT ResNet checkpoint (antialias={antialias}) has residual blocks at "
            f"model.{blocks} instead of one run from model.{start}"
        )
    up = start + len(blocks)
    antialias_up = f"model.{up}.filt" in state
    out_index = up + (8 if antialias_up else 6) + 1  # after the decoder and ReflectionPad2d
    last = state.get(f"model.{out_index}.weight")
    if last is None or last.dim() != 4:
        raise CheckpointError(
            f"CUT ResNet checkpoint with {len(blocks)} residual blocks lacks its output conv "
            f"model.{out_index}.weight"
        )
    if "model.2.weight" in state:
        norm = "batch"
    elif "model.1.bias" in state:
        norm = "instance"
    else:
        norm = "none"
    dropout = any(k.endswith("conv_block.6.weight") and v.dim() == 4 for k, v in state.items())
    return dict(
        architecture="cut_resnet",
        in_channels=int(first.shape[1]),
        out_channels=int(last.shape[0]),
        n_blocks=len(blocks),
        ngf=int(first.shape[0]),
        norm=norm,
        dropout=dropout,
        antialias=antialias,
        antialias_up=antialias_up,
    )
