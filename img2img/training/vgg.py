"""pix2pixHD's VGG19 perceptual loss, and where its ImageNet weights come from.

    L_VGG = sum_k w_k * L1(phi_k(G(A)), phi_k(B)),  w = 1/32, 1/16, 1/8, 1/4, 1

phi_1..phi_5 are the relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1 activations of
torchvision's VGG19 `features` (layers 0-1, 2-6, 7-11, 12-20, 21-29), frozen. As in
pix2pixHD the images go in as they are, in [-1, 1] (no ImageNet mean / std), and the target's
features are detached.

The weights are torchvision's ImageNet file `vgg19-dcbb9e9d.pth` (548 MB). They are looked
for, in order: the file $IMG2IMG_VGG19 names (used as given: any VGG19 state dict, e.g. a
mirror's copy); `vgg19-dcbb9e9d.pth` in img2img's cache (`cache_dir()/metrics/`) or in
torch's hub cache, checked as torchvision checks it (its sha256 starts with dcbb9e9d); else
downloaded into img2img's cache when the network allows. Offline and nowhere to be found, a
run stops before training with what to do (`--no-vgg-loss` trains without the term).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints.download import cache_dir, download, is_offline, sha256_of
from ..checkpoints.network import reachable
from ..errors import ConfigError, DownloadError
from ..eval.perceptual import load_state_dict

FILENAME = "vgg19-dcbb9e9d.pth"
URL = f"https://download.pytorch.org/models/{FILENAME}"
HASH_PREFIX = "dcbb9e9d"  # torchvision names its files after their sha256's first digits
SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))  # features[a:b] ends at relu k_1
WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


class VGG19Features(nn.Module):
    """The five relu k_1 activations of VGG19 (B, 3, H, W) -> 5 maps; frozen, eval mode.

    Keys are torchvision's `features.N.weight` (the classifier is not kept)."""

    def __init__(self, state: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        from torchvision.models import vgg19  # the architecture only, no weights

        self.features = vgg19(weights=None).features[: SLICES[-1][1]]
        if state is not None:
            state = {k: v for k, v in state.items() if k.startswith("features.")}
            self.load_state_dict(state, strict=True)
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)  # a fixed network: never in train mode

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for a, b in SLICES:
            for layer in self.features[a:b]:
                x = layer(x)
            out.append(x)
        return out


def vgg_loss(vgg: nn.Module, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """sum_k w_k L1(phi_k(fake), phi_k(real)); gradients reach `fake` only."""
    fake_f, real_f = vgg(fake), vgg(real)
    pairs = zip(WEIGHTS, fake_f, real_f, strict=True)
    return sum(w * F.l1_loss(f, r.detach()) for w, f, r in pairs)


def _verified(path: Path) -> bool:
    return path.is_file() and sha256_of(path).startswith(HASH_PREFIX)


def _check(path: Path) -> None:
    if not _verified(path):
        raise DownloadError(f"{path} is not torchvision's {FILENAME} (sha256 {HASH_PREFIX}...)")


def find_weights() -> Path:
    """The VGG19 weights file (module docstring), downloaded if need be and allowed."""
    given = os.environ.get("IMG2IMG_VGG19")
    if given:
        if not Path(given).is_file():
            raise ConfigError(f"IMG2IMG_VGG19={given}: no such file")
        return Path(given)
    ours = cache_dir() / "metrics" / FILENAME
    torch_hub = Path(torch.hub.get_dir()) / "checkpoints" / FILENAME
    for path in (ours, torch_hub):
        if _verified(path):
            return path
    advice = (
        f"the VGG loss needs torchvision's ImageNet VGG19 ({FILENAME}, 548 MB): put it in "
        f"{ours.parent}/ or {torch_hub.parent}/, or set IMG2IMG_VGG19 to a copy, or train "
        "without the VGG term: --no-vgg-loss"
    )
    if is_offline() or not reachable(URL):
        raise ConfigError(f"{advice} (it cannot be downloaded from here now)")
    try:
        return download(URL, ours, None, check=_check)
    except DownloadError as e:
        raise ConfigError(f"{advice} ({e})") from e


def load_vgg(device: torch.device) -> VGG19Features:
    """The frozen VGG19 feature extractor with its ImageNet weights, on `device`."""
    return VGG19Features(load_state_dict(find_weights())).to(device)
