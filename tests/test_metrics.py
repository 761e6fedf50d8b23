"""The metric table (img2img/eval/metrics.py), iterated: every per-image metric gives finite
scores on small random images and points the way its row says, every set metric declares
what it needs, register() keeps the contract, and a toy metric registered through the door
shows up in `img2img evaluate`'s JSON and report and in train.py's validation with no other
edit. Tiny images, no downloads: the only pretrained network an image metric needs (LPIPS's
AlexNet) is a random one in the released file format."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from img2img import save_pretrained
from img2img.cli import main
from img2img.data import Augment, PairedDataset, list_images
from img2img.errors import ConfigError
from img2img.eval import metrics as table
from img2img.eval import perceptual
from img2img.models import ResnetGenerator
from img2img.training import metrics as train_metrics

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_table_is_what_evaluate_and_train_py_report():
    """Pins today's rows: names and their order (JSON keys, --metrics, error messages),
    directions, scopes and the defaults per kind of split."""
    assert list(table.METRICS) == ["l1", "psnr", "ssim", "lpips", "fid", "kid"]
    assert {m.name for m in table.METRICS.values() if m.higher_is_better} == {"psnr", "ssim"}
    assert [m.name for m in table.of_scope("image")] == ["l1", "psnr", "ssim", "lpips"]
    assert [m.name for m in table.of_scope("set")] == ["fid", "kid"]
    assert table.defaults("paired") == ["l1", "psnr", "ssim"]
    assert table.defaults("unpaired") == ["fid", "kid"]
    assert [m.name for m in table.of_scope("image", networks=())] == ["l1", "psnr", "ssim"]
    assert table.METRICS["lpips"].networks == ("alexnet",)


# ----------------------------------------------------------------------------- the rows


# torchvision AlexNet's convolutions: features.N.weight shapes (the file LPIPS loads).
ALEXNET_CONVS = {0: (64, 3, 11), 3: (192, 64, 5), 6: (384, 192, 3), 8: (256, 384, 3),
                 10: (256, 256, 3)}  # fmt: skip


def _standin_alexnet(folder: Path) -> Path:
    """Random AlexNet `features.*` tensors (He-scaled), without building the classifier."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for i, (out, inp, k) in ALEXNET_CONVS.items():
        w = torch.randn(out, inp, k, k, generator=g) * (2 / (inp * k * k)) ** 0.5
        state |= {f"features.{i}.weight": w, f"features.{i}.bias": torch.zeros(out)}
    torch.save(state, folder / "alexnet.pth")
    return folder / "alexnet.pth"


# A stand-in file per network an image metric may need; a new network adds its own here.
STANDINS = {"alexnet": _standin_alexnet}


@pytest.fixture(scope="module")
def nets(tmp_path_factory) -> dict[str, torch.nn.Module]:
    """Every network the image metrics need, built by the table from stand-in weights."""
    folder = tmp_path_factory.mktemp("standins")
    wanted = {n for m in table.of_scope("image") for n in m.networks}
    missing = sorted(wanted - STANDINS.keys())
    assert not missing, f"add a stand-in for {missing} to STANDINS"
    cpu = torch.device("cpu")
    return {n: table.NETWORKS[n].build(cpu, STANDINS[n](folder)) for n in sorted(wanted)}


def _images(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two random uint8 (3, 48, 48) images and a noisy copy of each."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (2, 3, 48, 48), generator=g, dtype=torch.uint8)
    noise = torch.randint(-40, 41, x.shape, generator=g)
    return x, (x.int() + noise).clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("metric", table.of_scope("image"), ids=lambda m: m.name)
def test_every_image_metric_is_finite_and_points_its_way(metric, nets):
    x, noisy = _images(seed=3)
    scores = table.image_scores([metric], x, noisy, nets)[metric.name]
    assert scores.shape == (2,) and scores.dtype == torch.float64
    assert all(math.isfinite(v) for v in scores.tolist()), scores
    perfect = table.image_scores([metric], x, x.clone(), nets)[metric.name]
    better = perfect > scores if metric.higher_is_better else perfect < scores
    assert better.all(), (metric.name, perfect, scores)


def _features(n: int, shift: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return shift + (1 + shift) * torch.randn(n, 16, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("metric", table.of_scope("set"), ids=lambda m: m.name)
def test_every_set_metric_declares_its_needs_and_points_its_way(metric):
    assert {"features", "inception"} <= metric.needs <= table.NEEDS.keys()
    assert "target" not in metric.needs and "unpaired" in metric.default_on
    for name in metric.networks:
        assert isinstance(table.NETWORKS[name].weights, perceptual.MetricWeights)
    real = _features(20, 0.0, seed=1)
    value, std = table.set_score(metric, real, _features(20, 0.5, seed=2))
    assert math.isfinite(value) and (std is None or math.isfinite(std))
    perfect, _ = table.set_score(metric, real, real.clone())
    assert (perfect > value) if metric.higher_is_better else (perfect < value)


def test_every_row_keeps_the_contract_and_register_refuses_broken_rows():
    for m in table.METRICS.values():  # what register() checked, still true of the rows
        assert m.needs <= table.NEEDS.keys() and set(m.networks) <= table.NETWORKS.keys()
        assert ("target" in m.needs) == (m.scope == "image")
    fn = table.METRICS["l1"].fn
    pixels = frozenset({"target"})
    broken = [
        (table.Metric("psnr", "image", True, pixels, fn), "registered already"),
        (table.Metric("Bad-Name", "image", True, pixels, fn), "lower-case identifier"),
        (table.Metric("x", "pixel", True, pixels, fn), "scope"),
        (table.Metric("x", "image", True, frozenset({"target", "gpu"}), fn), r"unknown: \['gpu'\]"),
        (table.Metric("x", "image", True, frozenset(), fn), "must need 'target'"),
        (table.Metric("x", "set", False, frozenset({"features"}), fn), "'inception' too"),
        (table.Metric("x", "set", False, pixels, fn), "must need 'features'"),
        (table.Metric("x", "image", True, pixels, fn, frozenset({"unpaired"})), "default_on"),
        (table.Metric("x", "image", True, pixels, None), "not callable"),
    ]
    for row, message in broken:
        with pytest.raises(ConfigError, match=message):
            table.register(row)
    assert list(table.METRICS) == ["l1", "psnr", "ssim", "lpips", "fid", "kid"]
    with pytest.raises(ConfigError, match="no metric 'x'"):
        table.unregister("x")


# ----------------------------------------------------------------------------- the door


def _max_error(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N,) largest absolute difference of any pixel, in 8-bit levels."""
    return (out.double() - target.double()).abs().flatten(1).amax(1)


def _mean_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    return float((real.mean(0) - fake.mean(0)).norm())


@pytest.fixture
def toys():
    """A toy image metric (a default on paired splits) and a toy set metric, registered
    through the door and taken out again whatever the test does."""
    rows = [
        table.Metric("maxerr", "image", False, frozenset({"target"}), _max_error,
                     frozenset({"paired"})),
        table.Metric("meandist", "set", False, frozenset({"features", "inception"}),
                     _mean_distance),
    ]  # fmt: skip
    for row in rows:
        table.register(row)
    try:
        yield rows
    finally:
        for row in rows:
            table.unregister(row.name)
    assert "maxerr" not in table.METRICS and "meandist" not in table.METRICS


def _split(root: Path, n: int = 2, size: int = 32) -> Path:
    (root / "test").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        ab = rng.integers(0, 256, (size, 2 * size, 3), dtype=np.uint8)
        Image.fromarray(ab).save(root / "test" / f"{i}.png")
    return root


def test_a_metric_registered_through_the_door_reaches_evaluate_report_and_train(
    toys, tmp_path, capsys
):
    root = _split(tmp_path / "data")
    torch.manual_seed(7)
    G = ResnetGenerator(ngf=8, n_blocks=1)
    save_pretrained(G, tmp_path / "ckpt")
    args = ["evaluate", "--checkpoint", str(tmp_path / "ckpt"), "--data", str(root),
            "--device", "cpu", "--json", str(tmp_path / "s.json"),
            "--report", str(tmp_path / "r")]  # fmt: skip
    assert main(args) == 0  # no --metrics: the toy is a default on paired splits
    doc = json.loads((tmp_path / "s.json").read_text())
    assert list(doc["mean"]) == ["l1", "psnr", "ssim", "maxerr"]
    assert doc["settings"]["metrics"] == ["l1", "psnr", "ssim", "maxerr"]
    assert all(0 < r["maxerr"] <= 255 for r in doc["per_image"])
    assert doc["mean"]["maxerr"] == pytest.approx(np.mean([r["maxerr"] for r in doc["per_image"]]))
    page = (tmp_path / "r" / "index.html").read_text()
    assert '<th data-k="maxerr" title="lower is better">maxerr</th>' in page
    assert capsys.readouterr().out.strip().endswith(f"maxerr {doc['mean']['maxerr']:.4f}")
    # --metrics takes it, and an unpaired split refuses it as it does every image metric.
    assert main([*args[:-4], "--metrics", "maxerr", "--json", str(tmp_path / "t.json")]) == 0
    assert list(json.loads((tmp_path / "t.json").read_text())["mean"]) == ["maxerr"]
    for side in ("testA", "testB"):
        (tmp_path / "u" / side).mkdir(parents=True)
        Image.open(root / "test" / "0.png").save(tmp_path / "u" / side / "0.png")
    assert main([*args[:4], str(tmp_path / "u"), "--metrics", "maxerr"]) == 2
    assert "use fid,kid,meandist" in capsys.readouterr().err
    # train.py's validation: the cheap image metric for pairs, the set metric on features.
    val = PairedDataset(list_images(root / "test"), Augment(32, 32, False), 0, swap=False)
    scores, _ = train_metrics.validate(
        {"G": G}, val, True, torch.device("cpu"), train_metrics.pix2pix_batch
    )
    assert list(scores) == ["L1", "PSNR", "SSIM", "MAXERR"]
    real, fake = _features(6, 0.0, seed=1), _features(5, 0.5, seed=2)
    collected = train_metrics.Collected(features={"A2B_real": [real], "A2B_fake": [fake]})
    got = collected.distribution("A2B_")
    assert list(got) == ["A2B_FID", "A2B_KID", "A2B_MEANDIST"]
    assert got["A2B_MEANDIST"] == _mean_distance(real, fake)
    assert got["A2B_FID"] == perceptual.fid(real, fake)
