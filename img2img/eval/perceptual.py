"""Metrics computed with pretrained networks: FID and KID (Inception-v3), LPIPS (AlexNet).

The arithmetic and the network definitions are the maintained libraries' (pip install
img2img-gan[eval]): torch-fidelity's Inception-v3 feature extractor (the TF-compatible
port every FID paper's numbers come from: bilinear resize to 299 as TF 1.x did, 2048-d
pool features), torchmetrics' KID on those features, and torchmetrics' LPIPS
network (its linear heads ship inside the torchmetrics wheel). FID's formula is computed
here in an exact, faster form and tested against torchmetrics' and torch-fidelity's.

The pretrained weights are not fetched by those libraries: they are downloaded on first use
through img2img.checkpoints.download (resumable, retried, sha256-checked, HF_HUB_OFFLINE-aware) into
`cache_dir()/metrics/`, loaded with `torch.load(weights_only=True)` (tensors only) and then
handed over. IMG2IMG_<NAME>_URL points a download at a mirror (NAME: INCEPTION, ALEXNET);
IMG2IMG_<NAME>_SHA256 replaces the expected checksum for a file that is not the original.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..checkpoints.download import adopt, cache_dir, download, is_offline, verify_cached
from ..checkpoints.network import host_of, reachable
from ..errors import CheckpointError, DownloadError, EvaluationError
from ..media.processing import from_uint8

INSTALL_HINT = "install the evaluation extras: pip install 'img2img-gan[eval]'"


@dataclass(frozen=True)
class MetricWeights:
    """A pretrained file a metric needs: where it comes from and what it must hash to."""

    key: str  # IMG2IMG_<key>_URL / IMG2IMG_<key>_SHA256
    filename: str  # the name in the cache (the original's)
    url: str
    sha256: str
    about: str

    @property
    def dest(self) -> Path:
        return cache_dir() / "metrics" / self.filename

    @property
    def source(self) -> tuple[str, str]:
        """(url, sha256) after the environment's overrides."""
        env = f"IMG2IMG_{self.key}"
        url = os.environ.get(f"{env}_URL") or self.url
        return url, os.environ.get(f"{env}_SHA256") or self.sha256


# torch-fidelity's conversion of the 2015-12-05 TF Inception graph (95,628,359 bytes); the
# same file pytorch-fid ships as pt_inception-2015-12-05-6726825d.pth.
INCEPTION = MetricWeights(
    "INCEPTION",
    "weights-inception-2015-12-05-6726825d.pth",
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth",
    "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    "Inception-v3 weights for FID/KID",
)
# torchvision's AlexNet (ImageNet, 244,408,911 bytes): the LPIPS v0.1 "alex" backbone.
ALEXNET = MetricWeights(
    "ALEXNET",
    "alexnet-owt-7be5be79.pth",
    "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
    "AlexNet weights for LPIPS",
)


def fetch_weights(weights: MetricWeights, progress: bool = True) -> Path:
    """The verified local file of `weights`, downloaded on first use."""
    url, sha256 = weights.source
    dest = weights.dest
    adopt(dest, sha256)  # a copy put there by hand (offline machines) counts once it verifies
    if verify_cached(dest, sha256):
        return dest
    if is_offline() or not reachable(url):  # fail at once, not after the download's retries
        raise DownloadError(_offline_advice(weights, url, sha256))
    try:
        return download(url, dest, sha256, progress=progress)
    except DownloadError as e:
        raise DownloadError(
            f"{weights.about}: {e}. Put {weights.filename} (sha256 {sha256[:12]}...) in "
            f"{dest.parent}/ or set IMG2IMG_{weights.key}_URL to a mirror"
        ) from e


def _offline_advice(weights: MetricWeights, url: str, sha256: str) -> str:
    """One line: why the weights cannot be fetched now, and the three ways on."""
    if is_offline():
        why = "HF_HUB_OFFLINE is set"
    else:
        why = "no network ({}:{} cannot be reached; HF_HUB_OFFLINE=1 says so without a probe)"
        why = why.format(*host_of(url))
    return (
        f"{weights.about}: {why} and {weights.filename} is not in the cache. What to do: "
        f"download {url} elsewhere and put it in {weights.dest.parent}/ (sha256 "
        f"{sha256[:12]}...), or set IMG2IMG_{weights.key}_URL to a mirror you can reach, or "
        "score with metrics that need no weights: --metrics l1,psnr,ssim"
    )


def cached_weights(weights: MetricWeights) -> Path | None:
    """The local file if it is already there and verified (never downloads)."""
    _, sha256 = weights.source
    adopt(weights.dest, sha256)
    return weights.dest if verify_cached(weights.dest, sha256) else None


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors only (`weights_only=True`): a pickle that runs code is refused here."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means "not a plain state dict"
        raise CheckpointError(f"{path} is not a plain PyTorch state dict: {e}") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return state


# ----------------------------------------------------------------------------- Inception


def inception(device: torch.device, path: Path | None = None) -> nn.Module:
    """torch-fidelity's Inception-v3 (2048-d pool features) with the cached weights."""
    path = fetch_weights(INCEPTION) if path is None else path
    load_state_dict(path)  # checked safe before torch-fidelity loads it (weights_only=False)
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as e:
        raise EvaluationError(f"FID and KID need torch-fidelity: {INSTALL_HINT}") from e
    try:
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], str(path))
    except RuntimeError as e:  # load_state_dict(strict=True): wrong keys or shapes
        raise CheckpointError(f"{path} is not an Inception-v3 FID state dict: {e}") from e
    return net.to(device)


@torch.no_grad()
def inception_features(net: nn.Module, images: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """uint8 (N, 3, H, W), any size -> (N, 2048) float64 features on the CPU."""
    device = next(net.parameters()).device
    out = [net(images[i : i + batch].to(device))[0] for i in range(0, len(images), batch)]
    return torch.cat(out).to("cpu", torch.float64)


class _Given(nn.Module):
    """Feature 'extractor' for features computed already: torchmetrics does the arithmetic."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _enough(real: torch.Tensor, fake: torch.Tensor, what: str) -> None:
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise EvaluationError(
            f"{what} takes two (N, D) feature sets: {tuple(real.shape)}, {tuple(fake.shape)}"
        )
    if len(real) < 2 or len(fake) < 2:
        raise EvaluationError(
            f"{what} needs at least 2 images on each side (got {len(real)} real, "
            f"{len(fake)} translated)"
        )


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to (N, D) feature sets, in float64.

    |mu_r - mu_f|^2 + tr(S_r) + tr(S_f) - 2 tr((S_r S_f)^1/2), unbiased covariances: the
    formula of torchmetrics / torch-fidelity / pytorch-fid (tests compare with them). The
    last trace is the sum of the square roots of the eigenvalues of S_r S_f; with fewer
    images than dimensions (every public test split: N < 2048) those are the singular
    values of the (N_r, N_f) cross-Gram matrix of the centred features, which is exact and
    takes milliseconds instead of a 2048x2048 eigendecomposition (~40 s on 2 CPU cores).
    """
    _enough(real, fake, "FID")
    real, fake = real.double(), fake.double()
    mu_r, mu_f = real.mean(0), fake.mean(0)
    x_r, x_f = real - mu_r, fake - mu_f  # (N, D) centred
    n_r, n_f = len(real) - 1, len(fake) - 1
    if min(len(real), len(fake)) <= real.shape[1]:
        cross = torch.linalg.svdvals(x_r @ x_f.T).sum() / (n_r * n_f) ** 0.5
    else:  # (S_r^1/2 S_f S_r^1/2) is symmetric: two eigh, no complex eigenvalues
        w, v = torch.linalg.eigh(x_r.T @ x_r / n_r)
        root = (v * w.clamp_min(0).sqrt()) @ v.T
        cross = torch.linalg.eigvalsh(root @ (x_f.T @ x_f / n_f) @ root).clamp_min(0).sqrt().sum()
    traces = x_r.pow(2).sum() / n_r + x_f.pow(2).sum() / n_f
    return float((mu_r - mu_f).pow(2).sum() + traces - 2 * cross)


def kid(
    real: torch.Tensor,
    fake: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of the unbiased polynomial-kernel MMD² over random subsets (torchmetrics).

    The subset size is capped by the smaller set; the subsets are drawn with `seed`, from a
    forked RNG, so the value is reproducible and the caller's RNG is untouched.
    """
    _enough(real, fake, "KID")
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():  # "all features are kept in memory": we know
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(
            feature=_Given(real.shape[1]), subsets=subsets, subset_size=size
        )
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


# ----------------------------------------------------------------------------- LPIPS


def _load_alexnet_features(backbone: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """torchvision AlexNet `features.N.*` tensors into LPIPS's slice1..slice5 (same N)."""
    used = set()
    for slice_ in backbone.children():
        for index, layer in slice_.named_children():
            for name, param in layer.named_parameters(recurse=False):
                key = f"features.{index}.{name}"
                if key not in state or state[key].shape != param.shape:
                    got = tuple(state[key].shape) if key in state else "missing"
                    raise CheckpointError(
                        f"not torchvision AlexNet weights: {key} is {got}, "
                        f"expected {tuple(param.shape)}"
                    )
                param.data.copy_(state[key])
                used.add(key)
    extra = sorted(k for k in state if k not in used and not k.startswith("classifier."))
    if extra:  # the classifier is unused by LPIPS; anything else means another network
        raise CheckpointError(f"not torchvision AlexNet weights: unexpected keys {extra[:6]}")


def lpips_net(device: torch.device, path: Path | None = None) -> nn.Module:
    """LPIPS v0.1 with the AlexNet backbone (torchmetrics' network and linear heads)."""
    state = load_state_dict(fetch_weights(ALEXNET) if path is None else path)
    try:
        from torchmetrics.functional.image.lpips import _NoTrainLpips
    except ImportError as e:
        raise EvaluationError(f"LPIPS needs torchmetrics and torchvision: {INSTALL_HINT}") from e
    # pnet_rand: torchvision builds AlexNet without fetching; its weights are ours.
    net = _NoTrainLpips(net="alex", pretrained=True, pnet_rand=True)
    _load_alexnet_features(net.net, state)
    return net.to(device).requires_grad_(False)


@torch.no_grad()
def lpips(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N,) LPIPS distances between uint8 (N, 3, H, W) image batches (0: identical)."""
    if x.shape != y.shape or x.dtype != torch.uint8 or y.dtype != torch.uint8:
        raise EvaluationError(f"LPIPS takes two uint8 batches of one shape: {x.shape}, {y.shape}")
    device = next(net.parameters()).device
    d = net(from_uint8(x).to(device), from_uint8(y).to(device), normalize=False)
    return d.flatten().to("cpu", torch.float64)
