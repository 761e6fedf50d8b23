"""Translator semantics: batching, image statistics, dropout variations, caching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.images import random_image
from helpers.models import tiny_generators

from img2img import SeedError, Translator, default_device, save_pretrained
from img2img.inference import MAX_SEED, check_seed
from img2img.models import UNetGenerator
from img2img.models.norm import set_image_stats
from img2img.plans import execution
from img2img.plans.openvino import runner as openvino_plan


def test_image_statistics_are_per_image_and_batchable():
    model = tiny_generators()["unet"]
    set_image_stats(model, True)
    x = torch.rand(3, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        batched = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(3)])
    assert (batched - single).abs().max() < 1e-5


def test_image_stats_equal_batchnorm_train_mode_on_one_image():
    model = tiny_generators()["unet"]
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    ref = UNetGenerator(ngf=8)
    ref.load_state_dict(model.state_dict())
    ref.train()
    for m in ref.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    set_image_stats(model, True)
    with torch.no_grad():
        assert torch.equal(model(x), ref(x))


def test_translate_batches_and_leaves_running_stats(tmp_path):
    torch.manual_seed(0)
    save_pretrained(UNetGenerator(ngf=8), tmp_path / "m")
    t = Translator(device="cpu", max_batch=2, plan="eager")
    model = t.load(tmp_path / "m")
    assert t.load(str(tmp_path / "m")) is model  # cached
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = [random_image(80, 60, seed=i) for i in range(5)] + [random_image(30, 90)]
    together = t.translate(tmp_path / "m", images)
    alone = [t.translate(model, [img])[0] for img in images]
    for a, b in zip(together, alone, strict=True):
        assert a.size == b.size
        diff = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max()
        assert diff <= 1  # batched float sums may round differently by one level
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not any(m.training for m in model.modules())


def test_seeded_variations_are_reproducible_and_restore_state():
    t = Translator(device="cpu")
    model = tiny_generators()["unet"]
    with torch.no_grad():  # random-init outputs are ~0; amplify them so dropout shows
        model.model.model[3].weight.mul_(30)
    img = random_image(64, 64)
    torch.manual_seed(123)
    rng_before = torch.random.get_rng_state()
    plain = [np.asarray(t.translate(model, [img])[0]) for _ in range(2)]
    v1 = np.asarray(t.translate(model, [img], seed=1)[0])
    v1b = np.asarray(t.translate(model, [img, img], seed=1)[1])
    v2 = np.asarray(t.translate(model, [img], seed=2)[0])
    assert np.array_equal(plain[0], plain[1])  # dropout off by default: deterministic
    assert np.array_equal(v1, v1b)  # a variation does not depend on its batch neighbours
    assert not np.array_equal(v1, v2) and not np.array_equal(v1, plain[0])
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # caller's RNG untouched
    assert not any(m.training for m in model.modules())


def test_running_stats_mode_matches_eval(fixtures):
    t = Translator(device="cpu", norm_stats="running", plan="eager")
    model = t.load(fixtures / "junyanz_unet256_batch_ngf8.pth")
    from safetensors.torch import load_file

    data = load_file(fixtures / "junyanz_unet256_batch_ngf8.io.safetensors")
    y = t.forward(model, data["input"])
    assert (y - data["output_eval"]).abs().max() < 1e-4
    with pytest.raises(ValueError, match="norm_stats"):
        Translator(norm_stats="batch")


def test_default_device_and_plan():
    t = Translator()
    assert t.device == default_device()
    assert t.dtype == t.plan.dtype
    if t.device.type == "cpu" and openvino_plan.available():
        assert t.plan.name == "openvino"  # the measured rule of execution.auto_plan
    elif t.device.type == "cpu":
        native = execution.native_cpu_bf16()
        assert t.plan.name == ("bf16" if native else "eager")


@pytest.mark.parametrize("plan", ["eager", "channels_last"])
def test_fp32_plans_are_faithful(plan):
    model = tiny_generators()["resnet"]
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    with torch.no_grad():
        ref = model(x)
    y = Translator(device="cpu", plan=plan).forward(model, x)
    assert y.is_contiguous() and (y - ref).abs().max() < 1e-5


def test_official_needs_the_eager_plan():
    with pytest.raises(ValueError, match="eager"):
        Translator(device="cpu", plan="channels_last").translate(
            tiny_generators()["unet"], [random_image(8, 8)], official=True
        )
    with pytest.raises(ValueError, match="unknown execution plan"):
        Translator(device="cpu", plan="int8")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_half_precision_is_close():
    model = tiny_generators()["resnet"]
    img = random_image(128, 96)
    cpu = np.asarray(Translator(device="cpu").translate(model, [img])[0], dtype=int)
    gpu = np.asarray(Translator(device="cuda").translate(model, [img])[0], dtype=int)
    assert np.abs(cpu - gpu).mean() < 2


@pytest.mark.slow
def test_compiled_plan_is_faithful_and_warm_for_256():
    """torch.compile (opt-in): compiled when the model loads, same output as eager."""
    model = tiny_generators()["resnet"]
    plan = execution.make_plan("channels_last", compile=True)
    t = Translator(device="cpu", plan=plan, loader=lambda key: model)
    t.load("tiny")  # compiles the 256x256 batch-1 shape
    img = random_image(256, 256)
    out = t.translate("tiny", [img])[0]
    want = Translator(device="cpu", plan="eager").translate(model, [img])[0]
    assert np.abs(np.asarray(out, dtype=int) - np.asarray(want, dtype=int)).max() <= 1
    assert t.multiple(model) == 4  # the ResNet multiple, no extra padding: same computation


def test_seeds_are_validated_and_never_collide():
    """Torch's CPU generator keeps 32 bits of a seed: 1 and 2**32 + 1 used to give one
    variation, 2**64 a bare overflow. Seeds outside 0..MAX_SEED are refused instead."""
    t = Translator(device="cpu")
    model = tiny_generators()["unet"]
    with torch.no_grad():  # random-init outputs are ~0; amplify them so dropout shows
        model.model.model[3].weight.mul_(30)
    img = random_image(32, 32)
    for bad in (MAX_SEED + 1, 2**32 + 1, 2**64, -1, "7", 1.0, True):
        with pytest.raises(SeedError, match=str(MAX_SEED)):
            t.translate(model, [img], seed=bad)
    assert check_seed(np.int64(5)) == 5 and check_seed(None) is None
    top = np.asarray(t.translate(model, [img], seed=MAX_SEED)[0])
    zero = np.asarray(t.translate(model, [img], seed=0)[0])
    assert not np.array_equal(top, zero)  # the largest seed is a variation of its own
    assert np.array_equal(np.asarray(t.translate(model, [img], seed=np.int64(0))[0]), zero)
