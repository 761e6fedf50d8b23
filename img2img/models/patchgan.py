"""The N-layer PatchGAN discriminator (70x70 receptive field with n_layers=3), classic keys.

    Conv4s2 LReLU | (n_layers - 1) x (Conv4s2 Norm LReLU) | Conv4s1 Norm LReLU | Conv4s1 -> 1

pix2pix feeds it cat(A, B) (in_channels 6, batch norm); CycleGAN one image (3, instance norm).
The output is a map of logits, one per overlapping patch.
"""

from __future__ import annotations

import torch
from torch import nn

from .configurable import register_to_config
from .norm import conv_bias, init_weights, make_norm


class PatchGANDiscriminator(nn.Module):
    architecture = "patchgan"

    @register_to_config
    def __init__(
        self, in_channels: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch"
    ) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last norm layer keeps the resolution
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                make_norm(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, 1, H / 8 - 2, W / 8 - 2) patch logits for 3 layers."""
        return self.model(x)
