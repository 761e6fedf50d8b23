"""Metric arithmetic: L1 / PSNR / SSIM against scikit-image and numpy, FID / KID against
torchmetrics, torch-fidelity and a numpy restatement on given features, LPIPS against
torchmetrics' own pretrained construction."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from skimage.metrics import structural_similarity

from img2img import EvaluationError
from img2img.errors import CheckpointError
from img2img.eval import perceptual, quality


def _pair(shape: tuple[int, ...], seed: int, noise: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, 3) uint8 images with structure, and a noisy, shifted copy."""
    rng = np.random.default_rng(seed)
    n, h, w, _ = shape
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx * yy) % 256], -1)[None].repeat(n, 0)
    x = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    y = np.clip(x.astype(int) + rng.integers(-noise, noise + 1, x.shape) + 7, 0, 255)
    return x, y.astype(np.uint8)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()


@pytest.mark.parametrize("shape", [(2, 11, 11, 3), (3, 37, 64, 3), (1, 256, 256, 3)])
def test_ssim_psnr_l1_match_scikit_image_and_numpy(shape):
    x, y = _pair(shape, seed=shape[1])
    ssim, psnr, l1 = (f(_t(x), _t(y)).numpy() for f in (quality.ssim, quality.psnr, quality.l1))
    for i in range(shape[0]):
        ref = structural_similarity(
            x[i], y[i], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=255, channel_axis=-1,
        )  # fmt: skip
        assert ssim[i] == pytest.approx(ref, abs=1e-12)
        diff = x[i].astype(np.float64) - y[i]
        assert psnr[i] == pytest.approx(10 * np.log10(255**2 / np.mean(diff**2)), abs=1e-10)
        assert l1[i] == pytest.approx(np.mean(np.abs(diff)) / 255, abs=1e-14)


def test_identical_images_score_perfectly():
    x, _ = _pair((2, 20, 30, 3), seed=1)
    scores = quality.paired_scores(_t(x), _t(x))
    assert scores["l1"].tolist() == [0.0, 0.0]
    assert scores["psnr"].tolist() == [float("inf")] * 2
    assert scores["ssim"].numpy() == pytest.approx(1.0, abs=1e-12)
    assert quality.mean([float("inf"), 3.0]) == float("inf")


def test_bad_inputs_are_precise_errors():
    x, y = _pair((1, 16, 16, 3), seed=2)
    with pytest.raises(EvaluationError, match="uint8"):
        quality.psnr(_t(x).float(), _t(y).float())
    with pytest.raises(EvaluationError, match="one shape"):
        quality.l1(_t(x), _t(y)[..., :15])
    with pytest.raises(EvaluationError, match="at least 11x11"):
        quality.ssim(_t(x)[..., :10, :], _t(y)[..., :10, :])
    with pytest.raises(EvaluationError, match="unknown per-image metrics"):
        quality.paired_scores(_t(x), _t(y), ("psnr", "fid"))


# ----------------------------------------------------------------------------- FID / KID


def _features(n_real: int, n_fake: int, dim: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(dim, dim, generator=g, dtype=torch.float64) / dim**0.5
    real = torch.randn(n_real, dim, generator=g, dtype=torch.float64) @ mix
    fake = 1.3 * torch.randn(n_fake, dim, generator=g, dtype=torch.float64) @ mix + 0.2
    return real, fake


def _numpy_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """The textbook formula: |mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))."""
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((real.mean(0) - fake.mean(0)) ** 2) + np.trace(s1 + s2 - 2 * root))


@pytest.mark.parametrize("n_real,n_fake,dim", [(30, 20, 64), (300, 250, 32)])
def test_fid_matches_torchmetrics_torch_fidelity_and_numpy(n_real, n_fake, dim):
    """Both branches: fewer images than dimensions (cross-Gram) and more (eigh)."""
    from torch_fidelity.metric_fid import fid_statistics_to_metric
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = _features(n_real, n_fake, dim)
    ours = perceptual.fid(real, fake)
    lib = FrechetInceptionDistance(feature=perceptual._Given(dim))
    lib.update(real, real=True)
    lib.update(fake, real=False)
    r, f = real.numpy(), fake.numpy()
    stats = [{"mu": a.mean(0), "sigma": np.cov(a, rowvar=False)} for a in (r, f)]
    fidelity = fid_statistics_to_metric(*stats, False)["frechet_inception_distance"]
    assert ours > 1
    assert ours == pytest.approx(float(lib.compute()), rel=1e-6)
    assert ours == pytest.approx(fidelity, rel=1e-6)
    assert ours == pytest.approx(_numpy_fid(r, f), rel=1e-6)


def _numpy_kid(real: np.ndarray, fake: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (x.y / d + 1)^3 on all samples."""
    d = real.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(real, real), k(fake, fake), k(real, fake)
    m, n = len(real), len(fake)
    xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(xx + yy - 2 * kxy.mean())


def test_kid_matches_torch_fidelity_and_numpy_on_the_full_set():
    """A subset as large as the set is the set itself: every library gives one number."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    real, fake = _features(40, 40, 16, seed=3)
    mean, std = perceptual.kid(real, fake, subsets=3, subset_size=1000)
    fidelity = kid_features_to_metric(
        real, fake, kid_subsets=3, kid_subset_size=40, kid_degree=3, kid_gamma=None,
        kid_coef0=1, verbose=False, rng_seed=0,
    )["kernel_inception_distance_mean"]  # fmt: skip
    assert mean > 0
    assert mean == pytest.approx(fidelity, rel=1e-9)
    assert mean == pytest.approx(_numpy_kid(real.numpy(), fake.numpy()), rel=1e-9)
    assert std == pytest.approx(0, abs=1e-12)


def test_kid_subsets_are_seeded_and_leave_the_global_rng_alone():
    real, fake = _features(60, 50, 8, seed=4)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = perceptual.kid(real, fake, subsets=5, subset_size=20)
    assert torch.equal(torch.get_rng_state(), before)
    assert perceptual.kid(real, fake, subsets=5, subset_size=20) == first
    assert perceptual.kid(real, fake, subsets=5, subset_size=20, seed=1) != first


def test_distribution_metrics_refuse_too_few_or_mismatched_features():
    real, fake = _features(5, 1, 8)
    with pytest.raises(EvaluationError, match="at least 2 images"):
        perceptual.fid(real, fake)
    with pytest.raises(EvaluationError, match=r"\(N, D\)"):
        perceptual.kid(real, torch.zeros(5, 7, dtype=torch.float64))


# ----------------------------------------------------------------------------- LPIPS


@pytest.fixture(scope="module")
def alexnet_state() -> dict[str, torch.Tensor]:
    """A random torchvision AlexNet in its released state-dict format (with classifier)."""
    from torchvision.models import alexnet

    torch.manual_seed(0)
    return alexnet().state_dict()


def test_lpips_matches_torchmetrics_pretrained_construction(alexnet_state, tmp_path, monkeypatch):
    """Our backbone loading gives the network torchmetrics builds when torchvision hands it
    the same AlexNet weights (its own `weights=DEFAULT` path, the weights' source swapped)."""
    import torchvision.models
    from torchmetrics.functional.image.lpips import learned_perceptual_image_patch_similarity

    features_only = {k: v for k, v in alexnet_state.items() if k.startswith("features.")}
    torch.save(features_only, tmp_path / "alexnet.pth")
    ours = perceptual.lpips_net(torch.device("cpu"), tmp_path / "alexnet.pth")
    weights = torchvision.models.AlexNet_Weights.DEFAULT
    monkeypatch.setattr(type(weights), "get_state_dict", lambda self, **_: alexnet_state)
    x, y = _pair((3, 64, 48, 3), seed=5)
    ref = learned_perceptual_image_patch_similarity(
        _t(x).float() / 255, _t(y).float() / 255, net_type="alex", reduction="none",
        normalize=True,
    )  # fmt: skip
    got = perceptual.lpips(ours, _t(x), _t(y))
    assert got.shape == (3,) and (got > 0).all()
    assert got.numpy() == pytest.approx(ref.double().numpy(), rel=1e-5, abs=1e-7)
    assert perceptual.lpips(ours, _t(x), _t(x)).abs().max() < 1e-6


def test_lpips_refuses_other_networks(alexnet_state, tmp_path):
    features = {k: v for k, v in alexnet_state.items() if k.startswith("features.")}
    wrong = dict(features)
    wrong["features.3.weight"] = wrong["features.3.weight"][:, :10]
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="features.3.weight"):
        perceptual.lpips_net(torch.device("cpu"), tmp_path / "wrong.pth")
    torch.save({**features, "head.weight": torch.zeros(1)}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="head.weight"):
        perceptual.lpips_net(torch.device("cpu"), tmp_path / "extra.pth")
