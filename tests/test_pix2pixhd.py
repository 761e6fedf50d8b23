"""pix2pixHD: NVIDIA's checkpoints load and reproduce NVIDIA's outputs, one training step
reproduces NVIDIA's losses and updates, and `train.py pix2pixhd` trains, exports and resumes.

The references were made with NVIDIA's code (pix2pixhd 1.0 on PyPI, BSD) by
tests/fixtures/pix2pixhd/make.py: seeded weights (tests/helpers/seeded.py) in NVIDIA's
key order, and its module's outputs for seeded inputs. The weights are rebuilt here and
saved as NVIDIA's save_network saves them (`torch.save(net.state_dict())`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.datasets import aligned_files, write_files
from helpers.images import random_image
from helpers.paths import ROOT
from helpers.seeded import seeded_images, seeded_state
from helpers.train_proc import same_training_state
from PIL import Image
from torch import nn

from img2img import load_generator
from img2img.checkpoints.weights import clean_state_dict
from img2img.errors import ConfigError
from img2img.models import ARCHITECTURES, build_generator, size_multiple
from img2img.models.norm import set_image_stats
from img2img.models.pix2pixhd import Pix2PixHDGenerator
from img2img.training import vgg
from img2img.training.config import resolve
from img2img.training.nets import adam
from img2img.training.pix2pixhd import MultiscaleDiscriminator, pix2pixhd_step
from img2img.training.precision import choose_precision
from img2img.training.recipes import recipe

FIXTURES = Path(__file__).parent / "fixtures" / "pix2pixhd"
# fixture -> the architecture it loads as (a 2-downsampling instance-norm GlobalGenerator
# is tensor for tensor the junyanz ResNet, and loads as one)
GENERATORS = {
    "global_d3_instance": "pix2pixhd",
    "global_d2_batch": "pix2pixhd",
    "global_d2_instance": "resnet",
    "local_l1_d2_instance": "pix2pixhd",
}
TOL = 1e-4
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
pytestmark = pytest.mark.usefixtures("one_thread")


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def nvidia_file(name: str, path: Path) -> Path:
    """The fixture's generator saved as NVIDIA's save_network does."""
    f = fixture(name)
    torch.save(seeded_state(f["manifest"], f["weights_seed"]), path)
    return path


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_nvidia_checkpoints_reproduce_nvidias_outputs(name, tmp_path):
    f = fixture(name)
    model = load_generator(nvidia_file(name, tmp_path / "latest_net_G.pth")).eval()
    assert model.config["architecture"] == GENERATORS[name]
    x = seeded_images(f["input_shape"], f["input_seed"])
    with torch.no_grad():
        y = model(x)
    want = torch.tensor(f["output_eval"]).view_as(y)
    assert (want.abs() < 0.99).float().mean() > 0.5  # a meaningful output, not saturated
    assert (y - want).abs().max().item() < TOL
    if "output_train" in f:  # NVIDIA's test.py keeps train mode: BatchNorm of the image
        set_image_stats(model, True)
        with torch.no_grad():
            y = model(x)
        assert (y - torch.tensor(f["output_train"]).view_as(y)).abs().max().item() < TOL


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_each_nvidia_layout_is_claimed_by_one_family_with_nvidias_keys(name):
    f = fixture(name)
    state = clean_state_dict(seeded_state(f["manifest"], f["weights_seed"]))
    claims = [a.name for a in ARCHITECTURES.values() if a.matches(state)]
    assert claims == [GENERATORS[name]]
    if claims == ["pix2pixhd"]:
        config = ARCHITECTURES["pix2pixhd"].config_from_state(state)
        ours = build_generator(config).state_dict()
        assert [(k, list(v.shape)) for k, v in ours.items()] == [
            (k, shape) for k, shape, _ in f["manifest"]
        ]  # NVIDIA's keys, shapes and order


def test_local_enhancer_config_and_multiple():
    config = ARCHITECTURES["pix2pixhd"].config_from_state(
        seeded_state(fixture("local_l1_d2_instance")["manifest"], 0)
    )
    assert config | {"architecture": "pix2pixhd"} == {
        "architecture": "pix2pixhd", "in_channels": 3, "out_channels": 3, "ngf": 8,
        "n_downsample": 2, "n_blocks": 2, "n_local_enhancers": 1, "n_blocks_local": 1,
        "norm": "instance",
    }  # fmt: skip
    assert size_multiple(config) == 16  # 2^(2 + 1), doubled: the bottleneck keeps 2 px


@pytest.mark.slow
def test_translate_cli_runs_an_nvidia_checkpoint_at_any_size(tmp_path):
    ckpt = nvidia_file("local_l1_d2_instance", tmp_path / "latest_net_G.pth")
    random_image(37, 23).save(tmp_path / "photo.png")
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "img2img", "translate", str(tmp_path / "photo.png"),
           "-o", str(tmp_path / "out"), "--checkpoint", str(ckpt), "--size", "native"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Image.open(tmp_path / "out" / "photo.png").size == (37, 23)


def _before_instance_norm(net: nn.Module) -> set[str]:
    """Conv biases right before a non-affine InstanceNorm: their gradient is zero in exact
    arithmetic, so Adam's first step on them is rounding noise in both implementations."""
    names = set()
    for prefix, module in net.named_modules():
        if isinstance(module, nn.Sequential):
            children = list(module.named_children())
            for (key, a), (_, b) in zip(children, children[1:], strict=False):
                if isinstance(a, nn.Conv2d | nn.ConvTranspose2d) and isinstance(
                    b, nn.InstanceNorm2d
                ):
                    names.add(f"{prefix}.{key}.bias".lstrip("."))
    return names


def test_one_training_step_reproduces_nvidias():
    """Pix2PixHDModel.forward + train.py's G then D update, LSGAN, feature matching and VGG
    (a seeded VGG19: the ImageNet weights cannot be fetched here)."""
    f = fixture("train_step")
    seed, opt = f["seed"], f["opt"]
    given = dict(data="d", out="r", ngf=opt["ngf"], ndf=opt["ndf"], num_d=opt["num_D"],
                 n_downsample=opt["n_downsample_global"],
                 n_blocks=opt["n_blocks_global"])  # fmt: skip
    c = resolve("pix2pixhd", given, None)
    assert (c.gan_mode, c.lambda_feat, c.n_layers_d, c.lr, c.beta1) == (
        "lsgan",
        opt["lambda_feat"],
        opt["n_layers_D"],
        opt["lr"],
        opt["beta1"],
    )
    G = Pix2PixHDGenerator(ngf=8, n_downsample=2, n_blocks=1).train()
    D = MultiscaleDiscriminator(6, c.ndf, c.n_layers_d, c.norm, c.num_d).train()
    G.load_state_dict(seeded_state(f["manifests"]["G"], seed))
    D.load_state_dict(seeded_state(f["manifests"]["D"], seed + 1))  # NVIDIA's D keys
    nvidia_vgg = seeded_state(f["manifests"]["VGG"], seed + 2)  # slice1.0.weight, ...
    net_vgg = vgg.VGG19Features(
        {f"features.{k.split('.', 1)[1]}": v for k, v in nvidia_vgg.items()}
    )
    before = {k: {n: t.clone() for n, t in m.state_dict().items()} for k, m in (("G", G), ("D", D))}
    A, B = (seeded_images(f["input_shape"], s) for s in f["input_seeds"])
    optimizers = {"G": adam(c, [G]), "D": adam(c, [D])}
    precision = choose_precision(torch.device("cpu"), False)
    losses = pix2pixhd_step({"G": G, "D": D, "VGG": net_vgg}, optimizers, {}, A, B, c, precision)
    assert losses.keys() == f["losses"].keys()
    for k, want in f["losses"].items():
        assert abs(losses[k].item() - want) < TOL * max(1.0, abs(want)), k
    for k, net in (("G", G), ("D", D)):
        noise = _before_instance_norm(net)
        assert noise and noise < set(before[k])
        for n, t in net.state_dict().items():
            if n in noise:
                continue
            delta = (t - before[k][n]).double()
            got = (delta.sum().item(), delta.abs().sum().item())
            want = f["updates"][k][n]
            # Adam's first step is ~lr x sign(grad) per element, less where |grad| ~ eps: the
            # sums move with the kernels' rounding (AVX2 vs AVX-512 oneDNN: 6e-6 of 0.4), so
            # they are compared to within 1e-4 of the update's own size
            scale = TOL * max(want[1], 1e-2)
            assert abs(got[0] - want[0]) < scale and abs(got[1] - want[1]) < scale, n
            assert want[1] > 0  # the step moved it


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_a_local_enhancer_recipe_steps_every_network(norm):
    """The recipe's networks for --n-local-enhancers 1 (VGG off): one step moves G and D,
    reports every loss, and the discriminators see 3 scales."""
    given = dict(data="d", out="r", ngf=4, ndf=4, n_downsample=2, n_blocks=1, num_d=3,
                 n_local_enhancers=1, n_blocks_local=1, norm=norm, vgg_loss=False)  # fmt: skip
    c = resolve("pix2pixhd", given, None)
    r = recipe(c)
    torch.manual_seed(0)
    nets = r.networks(c)
    assert nets["G"].config["n_local_enhancers"] == 1 and r.fixed_networks(c, None) == {}
    before = {k: [p.clone() for p in net.parameters()] for k, net in nets.items()}
    A, B = seeded_images((2, 3, 32, 32), 1), seeded_images((2, 3, 32, 32), 2)
    assert len(nets["D"](torch.cat((A, B), 1))) == 3
    precision = choose_precision(torch.device("cpu"), False)
    losses = r.step(nets, r.optimizers(c, nets), {}, A, B, c, precision)
    assert set(losses) == {"G_GAN", "G_GAN_Feat", "D_real", "D_fake"}
    assert all(torch.isfinite(v) for v in losses.values())
    for k, net in nets.items():
        moved = [not torch.equal(p, q) for p, q in zip(net.parameters(), before[k], strict=True)]
        assert sum(moved) > len(moved) // 2, k


def test_vgg_loss_without_weights_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("IMG2IMG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("IMG2IMG_VGG19", raising=False)
    c = resolve("pix2pixhd", {"data": "d", "out": "r"}, None)
    with pytest.raises(ConfigError, match="--no-vgg-loss"):
        recipe(c).fixed_networks(c, torch.device("cpu"))
    off = resolve("pix2pixhd", {"data": "d", "out": "r", "vgg_loss": False}, None)
    assert recipe(off).fixed_networks(off, torch.device("cpu")) == {}


def _train(*args: str, env: dict[str, str]) -> None:
    cmd = [sys.executable, str(ROOT / "train.py"), "pix2pixhd", *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_train_export_translate_and_resume(tmp_path):
    """A tiny pix2pixHD run (VGG term from a seeded VGG19 file named by IMG2IMG_VGG19) exports
    weights/G/ that translate loads; 2 + 2 resumed steps end where 4 straight steps do."""
    data = write_files(tmp_path, aligned_files("pairs")) / "pairs"
    weights = tmp_path / "vgg19.pth"
    torch.save(vgg.VGG19Features().state_dict(), weights)
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT), "IMG2IMG_VGG19": str(weights)}
    tiny = ["--data", str(data), "--ngf", "8", "--ndf", "8", "--n-downsample", "3",
            "--n-blocks", "1", "--load-size", "36", "--crop-size", "32", "--workers", "0",
            "--val-images", "1", "--log-every", "1"]  # fmt: skip
    straight, split = tmp_path / "straight", tmp_path / "split"
    _train(*tiny, "--out", str(straight), "--steps", "4", env=env)
    _train(*tiny, "--out", str(split), "--steps", "2", env=env)
    _train("--out", str(split), "--resume", "--steps", "4", env=env)
    same_training_state(straight, split)
    exported = "weights/G/model.safetensors"
    assert (straight / exported).read_bytes() == (split / exported).read_bytes()
    records = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert {"G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake"} <= train[0].keys()
    model = load_generator(straight / "weights" / "G")
    assert (model.config["architecture"], model.config["n_downsample"]) == ("pix2pixhd", 3)
    random_image(45, 29).save(tmp_path / "photo.png")
    exports = straight / "weights" / "G"
    cmd = [sys.executable, "-m", "img2img", "translate", str(tmp_path / "photo.png"),
           "-o", str(tmp_path / "out"), "--checkpoint", str(exports)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Image.open(tmp_path / "out" / "photo.png").size == (45, 29)
