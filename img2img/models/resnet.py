"""The CycleGAN ResNet generator (Zhu et al. 2017, after Johnson et al.), classic-compatible.

    ReflectPad3 Conv7 Norm ReLU | 2 x (Conv3s2 Norm ReLU) | n_blocks x ResnetBlock
    | 2 x (ConvT3s2 Norm ReLU) | ReflectPad3 Conv7 Tanh

Kept as one `nn.Sequential` named `model` so the state-dict keys (`model.10.conv_block.1...`)
are those of the published CycleGAN `.pth` files. Inputs must be multiples of 4.
"""

from __future__ import annotations

import torch
from torch import nn

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
    size_multiple = 4  # two stride-2 convolutions

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
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        self.config = dict(
            architecture=self.architecture,
            in_channels=in_channels,
            out_channels=out_channels,
            n_blocks=n_blocks,
            ngf=ngf,
            norm=norm,
            dropout=dropout,
        )
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
