"""The pix2pixHD generators (Wang et al. 2018, NVIDIA/pix2pixHD), checkpoint-compatible.

GlobalGenerator (`--netG global`, n_local_enhancers 0):

    ReflectPad3 Conv7 Norm ReLU | n_downsample x (Conv3s2 Norm ReLU) | n_blocks x ResnetBlock
    | n_downsample x (ConvT3s2 Norm ReLU) | ReflectPad3 Conv7 Tanh

LocalEnhancer (`--netG local`, n_local_enhancers L >= 1): a GlobalGenerator of width
ngf * 2^L without its output layers (`model`) runs on the input average-pooled L times;
enhancer n (1..L, width ngf * 2^(L-n)) adds its own downsampled features of the input at
that scale (`model{n}_1`: ReflectPad3 Conv7 Norm ReLU Conv3s2 Norm ReLU), then runs
n_blocks_local residual blocks and one ConvT up (`model{n}_2`); the last one ends with
ReflectPad3 Conv7 Tanh. Every conv has a bias, whatever the norm (pix2pixHD builds its
convs with PyTorch's default bias=True); instance norm is non-affine, batch norm affine.

Keys are those of NVIDIA's `latest_net_G.pth` for `--label_nc 0 --no_instance` (an RGB
input, no instance map, no feature encoder): `model.N...`, `model1_1.N...`, `model1_2.N...`.
Inputs are padded to multiples of 2^(n_downsample + n_local_enhancers + 1) (size_multiple).

A GlobalGenerator with n_downsample 2 and instance norm has exactly the tensors (and the
function) of the junyanz CycleGAN ResNet: such a file loads as `resnet` (same outputs).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError
from .configurable import register_to_config
from .norm import init_weights, make_norm

NORMS = ("instance", "batch")


class ResnetBlock(nn.Module):
    """x + F(x), F = ReflectPad1 Conv3 Norm ReLU ReflectPad1 Conv3 Norm (biased convs)."""

    def __init__(self, dim: int, norm: str) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3),
            make_norm(norm, dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3),
            make_norm(norm, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def _head(ngf: int, out_channels: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, kernel_size=7), nn.Tanh()]


def global_layers(
    in_channels: int, out_channels: int, ngf: int, n_downsample: int, n_blocks: int, norm: str,
    head: bool = True,
) -> list[nn.Module]:  # fmt: skip
    """The GlobalGenerator's `model` Sequential (without its output layers unless `head`)."""
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, kernel_size=7)]
    layers += [make_norm(norm, ngf), nn.ReLU(True)]
    for i in range(n_downsample):  # ngf * 2^i -> ngf * 2^(i+1), half the resolution
        c = ngf * 2**i
        down = nn.Conv2d(c, c * 2, 3, stride=2, padding=1)
        layers += [down, make_norm(norm, c * 2), nn.ReLU(True)]
    layers += [ResnetBlock(ngf * 2**n_downsample, norm) for _ in range(n_blocks)]
    for i in range(n_downsample):  # back up: ngf * 2^(n-i) -> half as many channels
        c = ngf * 2 ** (n_downsample - i)
        up = nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1)
        layers += [up, make_norm(norm, c // 2), nn.ReLU(True)]
    return layers + (_head(ngf, out_channels) if head else [])


def _downsample(x: torch.Tensor) -> torch.Tensor:
    """The input pyramid's step: 3x3 average, stride 2, edge pixels averaged over the image."""
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


class Pix2PixHDGenerator(nn.Module):
    """pix2pixHD's GlobalGenerator (n_local_enhancers 0) or LocalEnhancer (>= 1).

    Defaults are pix2pixHD's training defaults (`--netG global --ngf 64
    --n_downsample_global 4 --n_blocks_global 9 --norm instance`). `ngf` is the width of the
    finest network: with local enhancers the global generator is ngf * 2^L wide, as there.
    """

    architecture = "pix2pixhd"

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_downsample: int = 4,
        n_blocks: int = 9,
        n_local_enhancers: int = 0,
        n_blocks_local: int = 3,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ConfigError(f"pix2pixHD norm must be one of {NORMS}, got {norm!r}")
        for name, value in [("n_downsample", n_downsample), ("n_blocks", n_blocks),
                            ("n_local_enhancers", n_local_enhancers),
                            ("n_blocks_local", n_blocks_local)]:  # fmt: skip
            if value < 0:
                raise ConfigError(f"{name} must be >= 0, got {value}")
        self.n_local_enhancers = n_local_enhancers
        top = ngf * 2**n_local_enhancers  # the global generator's width
        head = n_local_enhancers == 0
        layers = global_layers(in_channels, out_channels, top, n_downsample, n_blocks, norm, head)
        self.model = nn.Sequential(*layers)
        for n in range(1, n_local_enhancers + 1):
            c = ngf * 2 ** (n_local_enhancers - n)
            down = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, c, kernel_size=7)]
            down += [make_norm(norm, c), nn.ReLU(True)]
            down += [nn.Conv2d(c, c * 2, 3, stride=2, padding=1), make_norm(norm, c * 2)]
            down += [nn.ReLU(True)]
            up: list[nn.Module] = [ResnetBlock(c * 2, norm) for _ in range(n_blocks_local)]
            up += [nn.ConvTranspose2d(c * 2, c, 3, stride=2, padding=1, output_padding=1)]
            up += [make_norm(norm, c), nn.ReLU(True)]
            if n == n_local_enhancers:
                up += _head(ngf, out_channels)
            self.add_module(f"model{n}_1", nn.Sequential(*down))
            self.add_module(f"model{n}_2", nn.Sequential(*up))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]."""
        pyramid = [x]  # x, x / 2, ..., x / 2^L
        for _ in range(self.n_local_enhancers):
            pyramid.append(_downsample(pyramid[-1]))
        y = self.model(pyramid[-1])  # global features at the coarsest scale (or the output)
        for n in range(1, self.n_local_enhancers + 1):
            features = getattr(self, f"model{n}_1")(pyramid[self.n_local_enhancers - n])
            y = getattr(self, f"model{n}_2")(features + y)
        return y


# ---------------------------------------------------------------------------- registry hooks


def size_multiple(config: dict[str, Any]) -> int:
    """Twice 2^(n_downsample + n_local_enhancers): each stride-2 conv and each enhancer halves
    the resolution, and the residual blocks reflect-pad the bottleneck, which therefore needs
    2 px at least (a 16 px side at 16 would leave it 1 px)."""
    return 2 ** (config.get("n_downsample", 4) + config.get("n_local_enhancers", 0) + 1)


def _conv(state: dict[str, Any], key: str) -> Any:
    w = state.get(key)
    return w if isinstance(w, torch.Tensor) and w.dim() == 4 else None


def _read_global(state: dict[str, Any]) -> dict[str, Any] | None:
    """The global generator's shape parameters read off `model.N` (None: not that layout).

    The walk goes by index and shape: 7x7 input conv at 1, downsampling convs (2c, c, 3, 3)
    every 3 indices from 4, residual blocks (`conv_block`) one per index, then as many
    ConvTranspose2d weights (c, c/2, 3, 3) every 3 indices; `head` is where the output conv
    would be."""
    first = _conv(state, "model.1.weight")  # (ngf, in_channels, 7, 7)
    if first is None or tuple(first.shape[-2:]) != (7, 7) or "model.1.bias" not in state:
        return None
    c, i, n_downsample, n_blocks = int(first.shape[0]), 4, 0, 0
    while (w := _conv(state, f"model.{i}.weight")) is not None and w.shape == (2 * c, c, 3, 3):
        c, i, n_downsample = c * 2, i + 3, n_downsample + 1
    while f"model.{i}.conv_block.1.weight" in state:
        i, n_blocks = i + 1, n_blocks + 1
    for _ in range(n_downsample):
        w = _conv(state, f"model.{i}.weight")
        if w is None or tuple(w.shape) != (c, c // 2, 3, 3):
            return None
        c, i = c // 2, i + 3
    norm = "batch" if "model.2.running_mean" in state else "instance"
    if norm == "instance" and "model.2.weight" in state:  # affine IN: not pix2pixHD's
        return None
    return dict(ngf=int(first.shape[0]), in_channels=int(first.shape[1]),
                n_downsample=n_downsample, n_blocks=n_blocks, norm=norm, head=i + 1)  # fmt: skip


def _enhancers(state: dict[str, Any]) -> int:
    n = 0
    while f"model{n + 1}_1.1.weight" in state:
        n += 1
    return n


def matches(state: dict[str, Any]) -> bool:
    """NVIDIA's GlobalGenerator or LocalEnhancer layout. Not claimed: the GlobalGenerator
    that is tensor for tensor a junyanz ResNet (2 downsamplings, instance norm, no enhancer),
    which resnet.py's matcher takes."""
    found = _read_global(state)
    if found is None:
        return False
    local = _enhancers(state)
    if local == 0:
        junyanz = found["n_downsample"] == 2 and found["norm"] == "instance"
        return not junyanz and _conv(state, f"model.{found['head']}.weight") is not None
    return _conv(state, f"model.{found['head']}.weight") is None


def config_from_state(state: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments read off the tensors of a pix2pixHD generator state dict."""
    found = _read_global(state)
    if found is None:
        raise CheckpointError("not a pix2pixHD generator: no 7x7 biased input conv model.1")
    local = _enhancers(state)
    config = dict(architecture="pix2pixhd", in_channels=found["in_channels"],
                  n_downsample=found["n_downsample"], n_blocks=found["n_blocks"],
                  n_local_enhancers=local, norm=found["norm"])  # fmt: skip
    if local == 0:
        last = state[f"model.{found['head']}.weight"]  # (out_channels, ngf, 7, 7)
        out = int(last.shape[0])
        return {**config, "ngf": found["ngf"], "n_blocks_local": 3, "out_channels": out}
    ngf = int(state[f"model{local}_1.1.weight"].shape[0])  # the finest enhancer's width
    n_blocks_local = 0
    while f"model{local}_2.{n_blocks_local}.conv_block.1.weight" in state:
        n_blocks_local += 1
    last = _conv(state, f"model{local}_2.{n_blocks_local + 4}.weight")
    if last is None or found["ngf"] != ngf * 2**local:
        raise CheckpointError(
            f"pix2pixHD LocalEnhancer with {local} enhancers and {n_blocks_local} blocks each: "
            f"expected its output conv model{local}_2.{n_blocks_local + 4}.weight and a global "
            f"generator {ngf * 2**local} wide (found {found['ngf']})"
        )
    return {**config, "ngf": ngf, "n_blocks_local": n_blocks_local,
            "out_channels": int(last.shape[0])}  # fmt: skip
