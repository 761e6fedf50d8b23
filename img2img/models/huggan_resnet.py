"""The HugGAN CycleGAN `GeneratorResNet` and the community ResNets that differ from it by switches.

HugGAN's community-event CycleGAN (after eriklindernoren's PyTorch-GAN; `huggan/sim2real_cyclegan`,
`Chris1/real2sim-512`) is the CycleGAN ResNet with other details:

    ReflectPad3 Conv7 IN ReLU | 2 x (Conv3s2 IN ReLU) | n_blocks x (x + block(x))
    | 2 x (Upsample(x2, nearest) Conv3 IN ReLU) | ReflectPad3 Conv7 Tanh

with non-affine InstanceNorm, a bias on every conv, residual blocks named `block`
(`model.10.block.1.weight`) and widths ngf / 2 ngf / 4 ngf (64/128/256). Many public CycleGAN
scripts use the same ops under other names and switches; each is one plain constructor value:
`block_name` ("block" or "conv_block"), `norm_affine` (InstanceNorm weight and bias),
`upsample` ("nearest_conv": Upsample + Conv3, or "transpose": ConvTranspose3s2) and `bias`
(on the convs that a norm follows; the output conv always has one). All of them are read off
the tensors. The junyanz ResNet (conv_block, non-affine, ConvTranspose) is resnet.py's: its
matcher and ours never claim the same state dict. Inputs must be multiples of 4.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from .configurable import register_to_config
from .norm import init_weights
from .resnet import two_downsamplings

BLOCK_NAMES = ("block", "conv_block")
UPSAMPLES = ("nearest_conv", "transpose")
FAMILY = "HugGAN/community ResNet"
_BLOCK_KEY = re.compile(r"model\.(\d+)\.(block|conv_block)\.")


def _norm(channels: int, affine: bool) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=affine)


class ResidualBlock(nn.Module):
    """x + F(x), F = ReflectPad1 Conv3 IN ReLU ReflectPad1 Conv3 IN, kept under `block_name`."""

    def __init__(self, dim: int, block_name: str, norm_affine: bool, bias: bool) -> None:
        super().__init__()
        self.block_name = block_name
        layers = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=bias),
            _norm(dim, norm_affine),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=bias),
            _norm(dim, norm_affine),
        ]
        # Registered under the checkpoint's own name, so the keys are theirs (`.block.1.weight`).
        self.add_module(block_name, nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + getattr(self, self.block_name)(x)


def _up(c: int, upsample: str, norm_affine: bool, bias: bool) -> list[nn.Module]:
    """One decoder stage, c -> c / 2 channels, twice the resolution."""
    if upsample == "transpose":  # weight (in, out, 3, 3)
        conv = [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)]
    else:  # Upsample has no weights: the conv sits one index later, weight (out, in, 3, 3)
        conv = [nn.Upsample(scale_factor=2), nn.Conv2d(c, c // 2, 3, padding=1, bias=bias)]
    return [*conv, _norm(c // 2, norm_affine), nn.ReLU(inplace=True)]


class HugGANResnetGenerator(nn.Module):
    """HugGAN `GeneratorResNet` by default (9 blocks, ngf 64); the switches cover its cousins."""

    architecture = "huggan_resnet"

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        n_blocks: int = 9,
        ngf: int = 64,
        block_name: str = "block",
        norm_affine: bool = False,
        upsample: str = "nearest_conv",
        bias: bool = True,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ConfigError(f"n_blocks must be >= 0, got {n_blocks}")
        if block_name not in BLOCK_NAMES:
            raise ConfigError(f"block_name must be one of {BLOCK_NAMES}, got {block_name!r}")
        if upsample not in UPSAMPLES:
            raise ConfigError(f"upsample must be one of {UPSAMPLES}, got {upsample!r}")
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            _norm(ngf, norm_affine),
            nn.ReLU(inplace=True),
        ]
        for c in (ngf, ngf * 2):  # down-sampling: ngf -> 2 ngf -> 4 ngf
            layers += [
                nn.Conv2d(c, c * 2, 3, stride=2, padding=1, bias=bias),
                _norm(c * 2, norm_affine),
                nn.ReLU(inplace=True),
            ]
        layers += [ResidualBlock(ngf * 4, block_name, norm_affine, bias) for _ in range(n_blocks)]
        for c in (ngf * 4, ngf * 2):  # up-sampling: 4 ngf -> 2 ngf -> ngf
            layers += _up(c, upsample, norm_affine, bias)
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]."""
        return self.model(x)


# ---------------------------------------------------------------------------- registry hooks


def size_multiple(config: dict[str, Any]) -> int:
    """Two stride-2 convolutions: inputs must be multiples of 4."""
    return 4


def _input_conv(state: dict[str, Any]) -> Any:
    """`model.1.weight` when it is a 7x7 conv (after ReflectionPad2d(3)), else None."""
    w = state.get("model.1.weight")
    ok = w is not None and w.dim() == 4 and tuple(w.shape[-2:]) == (7, 7)
    return w if ok else None


def _blocks(state: dict[str, Any]) -> dict[int, set[str]]:
    """Residual block index -> the names its Sequential is stored under."""
    found: dict[int, set[str]] = {}
    for key in state:
        if m := _BLOCK_KEY.match(key):
            found.setdefault(int(m.group(1)), set()).add(m.group(2))
    return found


def matches(state: dict[str, Any]) -> bool:
    """A 7x7 input conv at `model.1` and any of: blocks named `block`, an Upsample + Conv
    decoder, affine norms without running statistics. Exactly what resnet.py's matcher
    refuses, so the two never claim the same state dict. Anti-aliasing `filt` buffers are
    cut_resnet's."""
    if _input_conv(state) is None or any(k.endswith(".filt") for k in state):
        return False
    if not two_downsamplings(state):
        return False
    blocks = _blocks(state)
    named_block = any("block" in names for names in blocks.values())
    first_up = 10 + len(blocks)  # Upsample has no weights: its conv is at first_up + 1
    upsample = f"model.{first_up}.weight" not in state and f"model.{first_up + 1}.weight" in state
    affine_in = "model.2.weight" in state and "model.2.running_mean" not in state
    return named_block or upsample or affine_in


def _decoder(state: dict[str, Any], n_blocks: int, subject: str) -> tuple[str, int]:
    """("transpose" | "nearest_conv", index of the output conv) from where the convs are."""
    first = 10 + n_blocks
    if f"model.{first}.weight" in state:  # ConvT, norm, ReLU per stage; then pad, conv
        return "transpose", first + 7
    if f"model.{first + 1}.weight" in state:  # Upsample, conv, norm, ReLU per stage
        return "nearest_conv", first + 9
    raise CheckpointError(
        f"{subject} with {n_blocks} residual blocks has no decoder conv: expected "
        f"model.{first}.weight (ConvTranspose2d) or model.{first + 1}.weight (Upsample + Conv2d)"
    )


def config_from_state(state: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments read off the tensors (names, ranks and shapes)."""
    first = _input_conv(state)  # (ngf, in_channels, 7, 7)
    blocks = _blocks(state)
    names = {n for v in blocks.values() for n in v}
    if len(names) > 1 or sorted(blocks) != list(range(10, 10 + len(blocks))):
        where = ", ".join(f"model.{i}.{'/'.join(sorted(v))}" for i, v in sorted(blocks.items()))
        raise CheckpointError(
            f"{FAMILY} checkpoint has residual blocks that are not one run of one name from "
            f"model.10: {where}"
        )
    upsample, out_index = _decoder(state, len(blocks), f"{FAMILY} checkpoint")
    last = state.get(f"model.{out_index}.weight")  # (out_channels, ngf, 7, 7)
    if last is None or last.dim() != 4:
        raise CheckpointError(
            f"{FAMILY} checkpoint ({len(blocks)} residual blocks, {upsample} decoder) lacks "
            f"its output conv model.{out_index}.weight"
        )
    return dict(
        architecture="huggan_resnet",
        in_channels=int(first.shape[1]),
        out_channels=int(last.shape[0]),
        n_blocks=len(blocks),
        ngf=int(first.shape[0]),
        block_name=names.pop() if names else "block",
        norm_affine="model.2.weight" in state,
        upsample=upsample,
        bias="model.1.bias" in state,
    )


def near_miss(state: dict[str, Any]) -> str | None:
    """Why a state dict with a ResNet's 7x7 input conv is neither ours nor a junyanz ResNet
    (asked only when no architecture matched); None when it has no such conv."""
    if _input_conv(state) is None:
        return None
    try:
        _decoder(state, len(_blocks(state)), "ResNet layout (7x7 input conv model.1)")
    except CheckpointError as e:
        return str(e)
    return None
