"""Recorded normalisation statistics: exact when reused, per-thread, for every architecture."""

from __future__ import annotations

import threading

import pytest
import torch
from helpers.models import tiny_config, tiny_generators

from img2img import ConfigError, Translator
from img2img.media.normstats import NormStats, StatsRunner, stat_layers, use_stats
from img2img.models import build_generator
from img2img.models.norm import set_image_stats


def _nets() -> dict[str, torch.nn.Module]:
    nets = tiny_generators()
    affine = {**tiny_config("huggan_resnet"), "norm_affine": True}
    torch.manual_seed(1)
    nets["huggan_resnet affine"] = build_generator(affine).eval()
    for m in nets["huggan_resnet affine"].modules():  # make the affine parameters matter
        if isinstance(m, torch.nn.InstanceNorm2d):
            torch.nn.init.normal_(m.weight, 1.0, 0.3)
            torch.nn.init.normal_(m.bias, 0.0, 0.3)
    set_image_stats(nets["unet"], True)  # what a Translator does (norm_stats="image")
    return nets


NETS = _nets()


@pytest.mark.parametrize("name", sorted(NETS))
def test_recorded_statistics_reproduce_the_forward(name):
    """Recording on an input and applying the record to the same input changes nothing:
    non-affine InstanceNorm, affine InstanceNorm and image-statistics BatchNorm alike."""
    model = NETS[name]
    assert stat_layers(model), "every registry architecture normalises with statistics"
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.inference_mode():
        plain = model(x)
        with use_stats(model, record=True) as recorded:
            assert torch.equal(model(x), plain)  # recording alone changes nothing
        with use_stats(model, fixed=recorded):
            fixed = model(x)
    assert (fixed - plain).abs().max() < 1e-5


def test_statistics_apply_only_in_the_thread_that_set_them():
    """Another thread forwarding the same (shared, cached) model is not affected."""
    model = NETS["resnet"]
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.inference_mode():
        plain = model(x)
        with use_stats(model, record=True) as recorded:
            model(x * 0.1)  # statistics of a very different input
        other = {}
        with use_stats(model, fixed=recorded):
            mine = model(x)
            t = threading.Thread(target=lambda: other.update(y=model(x)))
            t.start()
            t.join()
        after = model(x)
    assert torch.equal(other["y"], plain)
    assert not torch.allclose(mine, plain)
    assert torch.equal(after, plain)  # hooks gone after the block
    assert all(not m._forward_hooks for m in stat_layers(model).values())


def test_statistics_of_another_model_are_refused():
    nets = tiny_generators()
    with use_stats(nets["resnet"], record=True) as recorded, torch.inference_mode():
        nets["resnet"](torch.zeros(1, 3, 32, 32))
    with pytest.raises(ConfigError, match="do not fit this model"):
        with use_stats(nets["huggan_unet"], fixed=recorded):
            pass


def test_pooled_statistics_equal_those_of_the_concatenation():
    a, b = torch.randn(2, 4, 8, 8), torch.randn(1, 4, 16, 8) * 3 + 1
    stats = NormStats()
    stats.add("x", a)
    stats.add("x", b)
    flat = torch.cat([t.transpose(0, 1).reshape(4, -1) for t in (a, b)], 1)  # (C, all)
    assert torch.allclose(stats["x"].mean, flat.double().mean(1))
    assert torch.allclose(stats["x"].var, flat.double().var(1, correction=0))


def test_running_batchnorm_statistics_are_left_alone():
    """With norm_stats='running' a BatchNorm U-Net has no per-input statistics to share."""
    tr = Translator(device="cpu", plan="eager", norm_stats="running")
    runner = StatsRunner(tr, tiny_generators()["unet"])
    assert not runner.has_stats
