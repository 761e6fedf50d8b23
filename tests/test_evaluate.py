"""`img2img evaluate` end to end: paired scores reproduced from `translate --official`
outputs, the size mode, FID/KID/LPIPS with stand-in weights downloaded by our code from a
loopback server (resume, cache, offline, checksum, unsafe pickles), the JSON and HTML
outputs, user errors, and train.py's validation giving evaluate's numbers."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.datasets import tar_gz
from helpers.servers import FileServer, serving
from PIL import Image
from skimage.metrics import structural_similarity
from torch import nn

from img2img import load_generator, save_pretrained
from img2img.cli import main
from img2img.data import Augment, PairedDataset, UnpairedDataset, list_images
from img2img.errors import CheckpointError, EvaluationError
from img2img.eval import perceptual
from img2img.eval.report import Report
from img2img.inference import Translator
from img2img.media.processing import pixels
from img2img.models import ResnetGenerator, UNetGenerator
from img2img.training import metrics as train_metrics

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("one_thread")


def _image(w: int, h: int, seed: int) -> np.ndarray:
    """(h, w, 3) uint8: gradients plus noise, so every generator output differs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + 2 * yy) % 256], -1)
    return np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)


def aligned_split(root: Path, n: int, half: tuple[int, int], odd: int = 0) -> Path:
    """root/test/{i}.png holding A|B side by side (each half `half` = (w, h))."""
    (root / "test").mkdir(parents=True)
    w, h = half
    for i in range(n):
        ab = np.concatenate([_image(w, h, i), _image(w + odd, h, 100 + i)], axis=1)
        Image.fromarray(ab).save(root / "test" / f"{i:02d}.png")
    return root


def unaligned_split(root: Path, n_a: int, n_b: int, size=(64, 48)) -> Path:
    for side, n, seed in (("testA", n_a, 0), ("testB", n_b, 50)):
        (root / side).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(_image(*size, seed + i)).save(root / side / f"{side}_{i}.png")
    return root


def tiny(tmp_path: Path, kind: str) -> Path:
    torch.manual_seed(7)
    net = UNetGenerator(ngf=8) if kind == "unet" else ResnetGenerator(ngf=8, n_blocks=2)
    save_pretrained(net, tmp_path / kind)
    return tmp_path / kind


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "img2img", *args],
        cwd=ROOT, env={**os.environ, **ONE_THREAD, **(env or {})},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


# ----------------------------------------------------------------------------- paired


@pytest.mark.slow
def test_psnr_l1_reproduced_from_translate_official_outputs(tmp_path):
    """Done-when: evaluate's PSNR and L1 = an independent numpy computation (within 0.01)
    on the images `img2img translate --official` writes, against the target halves."""
    root = aligned_split(tmp_path / "data", 4, (256, 256))
    ckpt = tiny(tmp_path, "unet")  # BatchNorm: per-image statistics under the protocol
    inputs = tmp_path / "A"
    inputs.mkdir()
    for f in list_images(root / "test"):
        Image.open(f).crop((0, 0, 256, 256)).save(inputs / f.name)
    done = cli("translate", str(inputs), "-o", str(tmp_path / "out"), "--checkpoint", str(ckpt),
               "--official", "--device", "cpu")  # fmt: skip
    assert done.returncode == 0, done.stderr
    scores, report = tmp_path / "scores.json", tmp_path / "report"
    run = cli("evaluate", "--checkpoint", str(ckpt), "--data", str(root), "--device", "cpu",
              "--json", str(scores), "--report", str(report))  # fmt: skip
    assert run.returncode == 0, run.stderr
    doc = json.loads(scores.read_text())
    psnrs, l1s = [], []
    for row, f in zip(doc["per_image"], list_images(root / "test"), strict=True):
        out = np.asarray(Image.open(tmp_path / "out" / f.name), dtype=np.float64)
        target = np.asarray(Image.open(f).crop((256, 0, 512, 256)), dtype=np.float64)
        psnrs.append(10 * np.log10(255**2 / np.mean((out - target) ** 2)))
        l1s.append(np.mean(np.abs(out - target)) / 255)
        ssim = structural_similarity(
            out.astype(np.uint8), target.astype(np.uint8), gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=255, channel_axis=-1,
        )  # fmt: skip
        assert row["name"] == f.name
        assert row["psnr"] == pytest.approx(psnrs[-1], abs=0.01)
        assert row["ssim"] == pytest.approx(ssim, abs=1e-6)
    assert doc["mean"]["psnr"] == pytest.approx(np.mean(psnrs), abs=0.01)
    assert doc["mean"]["l1"] == pytest.approx(np.mean(l1s), abs=0.01)
    assert doc["mean"]["l1"] == pytest.approx(np.mean(l1s), abs=1e-9)  # in fact: the same
    assert doc["images"] == 4 and doc["settings"]["protocol"] == "official"
    assert doc["settings"]["direction"] == "AtoB" and doc["settings"]["metrics"] == [
        "l1", "psnr", "ssim",
    ]  # fmt: skip
    assert run.stdout.startswith("4 images: l1 ")
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count("<tr>") == 5 and "<script>" in page and "http" not in page
    for i in range(4):
        for kind in ("input", "output", "target"):
            assert f'src="images/{i:04d}_{kind}.png"' in page
            assert (tmp_path / "report" / "images" / f"{i:04d}_{kind}.png").is_file()


def test_size_mode_compares_at_the_target_size_in_either_direction(tmp_path):
    """--size N: our size policy, output resized to the target's size (halves differ by a
    pixel here); BtoA translates the right halves."""
    root = aligned_split(tmp_path / "data", 2, (75, 60), odd=1)
    ckpt = tiny(tmp_path, "resnet")
    out = tmp_path / "scores.json"
    args = ["evaluate", "--checkpoint", str(ckpt), "--data", str(root), "--size", "64",
            "--direction", "BtoA", "--json", str(out), "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    doc = json.loads(out.read_text())
    translator = Translator(device="cpu", plan="eager")
    for row, f in zip(doc["per_image"], list_images(root / "test"), strict=True):
        ab = Image.open(f).convert("RGB")
        a, b = ab.crop((0, 0, 75, 60)), ab.crop((75, 0, 151, 60))
        (fake,) = translator.translate(load_generator(ckpt), [b], size=64)
        assert fake.size == (76, 60)
        fake = np.asarray(fake.resize(a.size, Image.BICUBIC), dtype=np.float64)
        mse = np.mean((fake - np.asarray(a, dtype=np.float64)) ** 2)
        assert row["psnr"] == pytest.approx(10 * np.log10(255**2 / mse), abs=0.01)
    assert doc["settings"]["protocol"] == "size 64" and doc["settings"]["direction"] == "BtoA"


def test_dataset_by_name_is_downloaded_once_and_scored_paired(tmp_path, monkeypatch):
    """--dataset facades: the pix2pix (aligned) archive through the dataset mirror."""
    files = {}
    for split, n in (("train", 1), ("test", 2)):
        for i in range(n):
            buf = io.BytesIO()
            ab = np.concatenate([_image(32, 32, i), _image(32, 32, 9 + i)], axis=1)
            Image.fromarray(ab).save(buf, format="PNG")
            files[f"facades/{split}/{i}.png"] = buf.getvalue()
    archive = {"pix2pix/datasets/facades.tar.gz": tar_gz(files)}
    ckpt = tiny(tmp_path, "resnet")
    with serving(FileServer(archive)) as server:
        monkeypatch.setenv("IMG2IMG_DATASET_MIRROR", server.url)
        monkeypatch.setenv("IMG2IMG_DATA", str(tmp_path / "datasets"))
        args = ["evaluate", "--checkpoint", str(ckpt), "--dataset", "facades", "--device", "cpu"]
        for name in ("a.json", "b.json"):
            assert main([*args, "--json", str(tmp_path / name)]) == 0
        assert len(server.gets()) == 1
    doc = json.loads((tmp_path / "a.json").read_text())
    assert [r["name"] for r in doc["per_image"]] == ["0.png", "1.png"]
    assert doc["settings"]["data"] == str(tmp_path / "datasets" / "pix2pix" / "facades")
    assert set(doc["mean"]) == {"l1", "psnr", "ssim"}


# ----------------------------------------------------------------------------- weights


def _untrained_inception() -> nn.Module:
    """torch-fidelity's Inception-v3, randomly initialised (its constructor always loads)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Untrained(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            return None  # keep the random initialisation

    with tempfile.TemporaryDirectory() as tmp:
        torch.save({}, Path(tmp) / "empty.pth")
        torch.manual_seed(0)
        net = Untrained("inception-v3-compat", ["2048"], str(Path(tmp) / "empty.pth"))
    for m in net.modules():  # keep activations O(1) through ~100 layers
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return net


def _saved(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def standins() -> dict[str, bytes]:
    """Stand-in weights in the real files' formats: a full Inception-v3 state dict (95 MB,
    as torch-fidelity loads it) and AlexNet's `features.*` (the real file also holds the
    unused 233 MB classifier, which the loader skips)."""
    from torchvision.models import alexnet

    torch.manual_seed(1)
    features = {k: v for k, v in alexnet().state_dict().items() if k.startswith("features.")}
    return {
        "inception.pth": _saved(_untrained_inception().state_dict()),
        "alexnet.pth": _saved(features),
    }


@pytest.fixture
def weights_server(standins, tmp_path, monkeypatch):
    """The stand-ins served on loopback; IMG2IMG_*_URL/_SHA256 point our download at them."""
    with serving(FileServer(dict(standins))) as server:
        env = {"IMG2IMG_CACHE": str(tmp_path / "cache")}
        for key, name in (("INCEPTION", "inception.pth"), ("ALEXNET", "alexnet.pth")):
            env[f"IMG2IMG_{key}_URL"] = f"{server.url}/{name}"
            env[f"IMG2IMG_{key}_SHA256"] = hashlib.sha256(standins[name]).hexdigest()
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield server


def _expected_fid_kid(ckpt: Path, root: Path, weights: Path) -> tuple[float, float]:
    """Independently: translate testA officially, features of outputs and of testB squashed
    to 256 through torch-fidelity's extractor, then torchmetrics' FID on them."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torchmetrics.image.fid import FrechetInceptionDistance

    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], str(weights))
    a = [Image.open(f).convert("RGB") for f in list_images(root / "testA")]
    fakes = Translator(device="cpu", plan="eager").translate(load_generator(ckpt), a, official=True)
    reals = [Image.open(f).convert("RGB").resize((256, 256), Image.BICUBIC)
             for f in list_images(root / "testB")]  # fmt: skip
    with torch.no_grad():
        feats = [torch.cat([net(pixels(x))[0] for x in s]).double() for s in (reals, fakes)]
    lib = FrechetInceptionDistance(feature=perceptual._Given(2048))
    lib.update(feats[0], real=True)
    lib.update(feats[1], real=False)
    kid, _ = perceptual.kid(feats[0], feats[1], subset_size=2)
    return float(lib.compute()), kid


@pytest.mark.slow
def test_unpaired_fid_kid_with_weights_downloaded_once_resumed_then_offline(
    weights_server, tmp_path, monkeypatch
):
    root = unaligned_split(tmp_path / "data", 2, 3)
    ckpt = tiny(tmp_path, "resnet")
    weights_server.drops = [1_000_000]  # the first download is cut short: resumed
    args = ["evaluate", "--checkpoint", str(ckpt), "--data", str(root), "--device", "cpu"]
    assert main([*args, "--json", str(tmp_path / "a.json"), "--report", str(tmp_path / "r")]) == 0
    gets = weights_server.gets()
    assert [g[1] for g in gets] == ["/inception.pth", "/inception.pth"]
    assert gets[1][2].get("Range") == "bytes=1000000-"
    doc = json.loads((tmp_path / "a.json").read_text())
    assert set(doc["mean"]) == {"fid", "kid"} and doc["real_images"] == 3
    assert [r["name"] for r in doc["per_image"]] == ["testA_0.png", "testA_1.png"]
    assert doc["settings"]["kid_subset_size"] == 2
    cached = tmp_path / "cache" / "metrics" / perceptual.INCEPTION.filename
    fid, kid = _expected_fid_kid(ckpt, root, cached)
    assert doc["mean"]["fid"] == pytest.approx(fid, rel=1e-6) and fid > 0
    assert doc["mean"]["kid"] == pytest.approx(kid, rel=1e-6, abs=1e-12)
    assert "<th>target</th>" not in (tmp_path / "r" / "index.html").read_text()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # cached: no network needed any more
    assert main([*args, "--json", str(tmp_path / "b.json")]) == 0
    assert len(weights_server.gets()) == 2
    assert json.loads((tmp_path / "b.json").read_text())["mean"] == doc["mean"]


@pytest.mark.slow
def test_paired_lpips_fid_kid_in_one_run(weights_server, tmp_path):
    root = aligned_split(tmp_path / "data", 3, (40, 40))
    ckpt = tiny(tmp_path, "resnet")
    out = tmp_path / "s.json"
    args = ["evaluate", "--checkpoint", str(ckpt), "--data", str(root), "--device", "cpu",
            "--metrics", "lpips,ssim,fid,kid", "--json", str(out)]  # fmt: skip
    assert main(args) == 0
    doc = json.loads(out.read_text())
    assert list(doc["mean"]) == ["lpips", "ssim", "fid", "kid"]  # in the order asked
    assert all(r["lpips"] > 0 and set(r) == {"name", "ssim", "lpips"} for r in doc["per_image"])
    assert {g[1] for g in weights_server.gets()} == {"/inception.pth", "/alexnet.pth"}


def test_weights_offline_checksum_hand_placed_and_unsafe_files(
    weights_server, tmp_path, monkeypatch, capsys
):
    root = unaligned_split(tmp_path / "data", 2, 2, size=(32, 32))
    ckpt = tiny(tmp_path, "resnet")
    args = ["evaluate", "--checkpoint", str(ckpt), "--data", str(root), "--device", "cpu"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    dest = tmp_path / "cache" / "metrics" / perceptual.INCEPTION.filename
    assert err.count("\n") == 0 and "HF_HUB_OFFLINE" in err and str(dest.parent) in err
    assert weights_server.gets() == []
    # A copy fetched elsewhere and put in the cache by hand is used offline once it verifies.
    dest.parent.mkdir(parents=True)
    dest.write_bytes(weights_server.files["inception.pth"])
    assert main(args) == 0
    capsys.readouterr()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("IMG2IMG_INCEPTION_SHA256", "0" * 64)  # not the file the server has
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not match the expected" in err
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()
    # A pickle that would run code is refused before any library unpickles it.
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = pickle.dumps({"w": Evil()}, protocol=2)
    weights_server.files["inception.pth"] = evil
    monkeypatch.setenv("IMG2IMG_INCEPTION_SHA256", hashlib.sha256(evil).hexdigest())
    with pytest.raises(CheckpointError, match="not a plain PyTorch state dict"):
        perceptual.inception(torch.device("cpu"))
    assert not marker.exists()


# ----------------------------------------------------------------------------- errors


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    paired = aligned_split(tmp_path / "p", 2, (32, 32))
    unpaired = unaligned_split(tmp_path / "u", 2, 2, size=(32, 32))
    ckpt = tiny(tmp_path, "resnet")
    base = ["evaluate", "--checkpoint", str(ckpt), "--device", "cpu", "--data"]
    cases = [
        ([*base, str(paired), "--metrics", "psnr,is"], "unknown metrics ['is']"),
        ([*base, str(unpaired), "--metrics", "psnr"], "this split is unpaired"),
        ([*base, str(paired), "--split", "val"], "has no split 'val'"),
        ([*base, str(tmp_path / "nowhere")], "dataset folder not found"),
        (["evaluate", "--checkpoint", str(tmp_path / "no.pth"), "--data", str(paired)],
         "neither a catalog id nor an existing checkpoint"),
    ]  # fmt: skip
    for args, message in cases:
        try:
            code = main(args)
        except SystemExit as e:  # refused by the parser (--metrics names are checked there)
            code = e.code
        assert code == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err, err
    with pytest.raises(SystemExit) as e:  # argparse: --data and --dataset exclude each other
        main([*base, str(paired), "--dataset", "facades"])
    assert e.value.code == 2


# ----------------------------------------------------------------------------- train.py


def test_training_validation_reports_evaluates_numbers(tmp_path):
    """pix2pix validation at crop 256 is the official protocol: same numbers, same code."""
    root = aligned_split(tmp_path / "data", 3, (256, 256))
    ckpt = tiny(tmp_path, "unet")
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(root), "--device", "cpu",
                 "--json", str(tmp_path / "s.json")]) == 0  # fmt: skip
    mean = json.loads((tmp_path / "s.json").read_text())["mean"]
    val = PairedDataset(list_images(root / "test"), Augment(256, 256, False), 0, swap=False)
    G = load_generator(ckpt).train()
    scores, grid = train_metrics.validate(
        {"G": G}, val, True, torch.device("cpu"), train_metrics.pix2pix_batch, batch=2
    )
    assert G.training and grid.shape[0] == 3
    for key in ("l1", "psnr", "ssim"):
        assert scores[key.upper()] == pytest.approx(mean[key], abs=1e-4)


def test_cyclegan_validation_adds_fid_kid_only_from_cached_weights(weights_server, tmp_path):
    root = unaligned_split(tmp_path / "data", 3, 3, size=(32, 32))
    a, b = ([(f, "full") for f in list_images(root / side)] for side in ("testA", "testB"))
    val = UnpairedDataset(a, b, Augment(32, 32, False), 0, random_b=False)
    torch.manual_seed(0)
    nets = {k: ResnetGenerator(ngf=8, n_blocks=1) for k in ("G_A", "G_B")}
    cpu = torch.device("cpu")
    scores, _ = train_metrics.validate(nets, val, False, cpu, train_metrics.cyclegan_batch)
    assert set(scores) == {"cycle_L1"}  # on the CPU: skipped
    with pytest.raises(EvaluationError, match="Inception weights in the cache"):
        train_metrics.validate(nets, val, False, cpu, train_metrics.cyclegan_batch, 2, True)
    assert weights_server.gets() == []  # validation never downloads
    perceptual.fetch_weights(perceptual.INCEPTION, progress=False)
    scores, _ = train_metrics.validate(nets, val, False, cpu, train_metrics.cyclegan_batch, 2, True)
    assert set(scores) == {"cycle_L1", "A2B_FID", "A2B_KID"} and scores["A2B_FID"] > 0


# ----------------------------------------------------------------------------- report page


@pytest.mark.browser
def test_report_page_sorts_by_the_clicked_column(tmp_path):
    """The static page in a real browser: clicking psnr sorts ascending (inf last), again
    descending; the name column sorts as text."""
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = Report(tmp_path / "r", ("input", "output"))
    img = Image.fromarray(_image(20, 10, 0))
    for name, psnr in (("b.png", 20.5), ("c.png", float("inf")), ("a.png", 9.25)):
        page.add(name, {"input": img, "output": img}, {"psnr": psnr, "l1": 0.1})
    index = page.write("t", {"psnr": float("inf"), "l1": 0.1}, {"metrics": ["psnr", "l1"]})
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        tab = browser.new_page()
        tab.goto(index.as_uri())
        names = lambda: tab.locator("tbody td.name").all_inner_texts()  # noqa: E731
        assert names() == ["b.png", "c.png", "a.png"]
        tab.click("th[data-k=psnr]")
        assert names() == ["a.png", "b.png", "c.png"]
        tab.click("th[data-k=psnr]")
        assert names() == ["c.png", "b.png", "a.png"]
        tab.click("th[data-k=name]")
        assert names() == ["a.png", "b.png", "c.png"]
        assert tab.locator("img").evaluate_all("els => els.every(e => e.naturalWidth > 0)")
        browser.close()
