"""Parity with the classic implementations and proof that full-size checkpoints load."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from img2img import load_generator
from img2img.checkpoints.weights import clean_state_dict, infer_config
from img2img.models import (
    HugGANUNetGenerator,
    PatchGANDiscriminator,
    ResnetGenerator,
    UNetGenerator,
    build_generator,
)
from img2img.models.norm import set_image_stats

PARITY = [
    # checkpoint, io file, output key, BatchNorm uses image statistics
    ("junyanz_unet256_batch_ngf8.pth", "junyanz_unet256_batch_ngf8", "output_eval", False),
    ("junyanz_unet256_batch_ngf8.pth", "junyanz_unet256_batch_ngf8", "output_bn_batch_stats", True),
    ("junyanz_resnet9_instance_ngf8.pth", "junyanz_resnet9_instance_ngf8", "output_eval", False),
    (
        "junyanz_resnet9_instance_ngf8.legacy.pth",
        "junyanz_resnet9_instance_ngf8",
        "output_eval",
        False,
    ),
    ("huggan_unet_div8.pytorch_model.bin", "huggan_unet_div8", "output_eval", False),
]


@pytest.mark.parametrize("ckpt,io,key,image_stats", PARITY)
def test_reference_outputs(fixtures, ckpt, io, key, image_stats):
    model = load_generator(fixtures / ckpt)
    data = load_file(fixtures / f"{io}.io.safetensors")
    set_image_stats(model, image_stats)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        y = model(data["input"])
    err = (y - data[key]).abs().max().item()
    assert y.shape == data[key].shape
    assert err < 1e-4, f"{ckpt} {key}: max abs error {err}"
    for k, v in model.state_dict().items():  # inference never moves running stats
        assert torch.equal(v, before[k]), k


def test_inferred_configs(fixtures):
    expect = {
        "junyanz_unet256_batch_ngf8.pth": dict(
            architecture="unet", num_downs=8, ngf=8, norm="batch"
        ),
        "junyanz_resnet9_instance_ngf8.pth": dict(
            architecture="resnet", n_blocks=9, ngf=8, norm="instance", dropout=False
        ),
        "junyanz_resnet9_instance_ngf8.legacy.pth": dict(architecture="resnet", n_blocks=9),
        "huggan_unet_div8.pytorch_model.bin": dict(architecture="huggan_unet", ngf=8),
    }
    for name, fields in expect.items():
        config = load_generator(fixtures / name).config
        assert {k: config[k] for k in fields} == fields, name


def _meta_state(manifest: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(shape, device="meta") for k, shape in manifest.items()}


def _shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


MANIFEST_MODULES = {
    "junyanz_unet_256_batch": lambda: UNetGenerator(num_downs=8),
    "junyanz_unet_128_batch": lambda: UNetGenerator(num_downs=7),
    "junyanz_resnet_9blocks_instance": lambda: ResnetGenerator(n_blocks=9),
    "junyanz_resnet_6blocks_instance": lambda: ResnetGenerator(n_blocks=6),
    "junyanz_patchgan_basic_batch_in6": lambda: PatchGANDiscriminator(6, norm="batch"),
    "junyanz_patchgan_basic_instance_in3": lambda: PatchGANDiscriminator(3, norm="instance"),
    "huggan_generator_unet": lambda: HugGANUNetGenerator(),
}


@pytest.mark.parametrize("name", sorted(MANIFEST_MODULES))
def test_full_size_modules_match_manifests(fixtures, name):
    """Our default-size modules have exactly the published files' keys and shapes."""
    manifest = json.loads((fixtures / "full_size_key_manifests.json").read_text())[name]
    with torch.device("meta"):
        module = MANIFEST_MODULES[name]()
    assert _shapes(module) == manifest
    assert list(module.state_dict()) == list(manifest)  # same order too


@pytest.mark.parametrize("name", [n for n in sorted(MANIFEST_MODULES) if "patchgan" not in n])
def test_full_size_configs_inferred_from_shapes(fixtures, name):
    """Architecture inference on the published shapes rebuilds the published module."""
    manifest = json.loads((fixtures / "full_size_key_manifests.json").read_text())[name]
    config = infer_config(clean_state_dict(_meta_state(manifest)))
    with torch.device("meta"):
        module = build_generator(config)
    assert _shapes(module) == manifest
    assert config["ngf"] == 64


@pytest.mark.parametrize(
    "make,size",
    [
        (lambda: UNetGenerator(ngf=8), 256),
        (lambda: UNetGenerator(ngf=8, num_downs=7, norm="instance"), 128),
        (lambda: UNetGenerator(ngf=8, norm="none", dropout=False), 256),
        (lambda: ResnetGenerator(ngf=8, n_blocks=6), 36),
        (lambda: ResnetGenerator(ngf=8, n_blocks=2, norm="batch", dropout=True), 20),
        (lambda: HugGANUNetGenerator(ngf=8), 256),
    ],
)
def test_shapes_and_value_range(make, size):
    model = make().eval()
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1


def test_patchgan_output_is_a_patch_map():
    d = PatchGANDiscriminator(6, ndf=8)
    assert d(torch.zeros(1, 6, 256, 256)).shape == (1, 1, 30, 30)  # 70x70 patches on 256


def test_init_is_normal_002():
    torch.manual_seed(0)
    model = UNetGenerator(ngf=16)
    conv = model.model.model[0].weight
    bn = model.model.model[1].model[2]
    assert abs(conv.std().item() - 0.02) < 0.003 and abs(conv.mean().item()) < 0.003
    assert abs(bn.weight.mean().item() - 1) < 0.01 and torch.all(bn.bias == 0)


def test_rejects_bad_constructor_values():
    with pytest.raises(ValueError, match="norm"):
        UNetGenerator(norm="group")
    with pytest.raises(ValueError, match="num_downs"):
        UNetGenerator(num_downs=3)
    with pytest.raises(ValueError, match="architecture"):
        build_generator({"architecture": "vit"})
