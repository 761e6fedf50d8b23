"""Tiled translation: sizes, bounded windows, agreement with the untiled run, blend weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.images import random_image
from helpers.models import tiny_generators

from img2img import Cancelled, ConfigError, Translator
from img2img.media.tiles import make_axis, translate_tiled
from img2img.models import ARCHITECTURES

NETS = tiny_generators()
RESNETS = [n for n in sorted(ARCHITECTURES) if "resnet" in n]
UNETS = [n for n in sorted(ARCHITECTURES) if "unet" in n]
STATS = ("shared", "window")


@pytest.fixture(scope="module")
def tr() -> Translator:
    return Translator(device="cpu", plan="eager")


def _levels(a, b) -> np.ndarray:
    return np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))


def _input_sides(model: torch.nn.Module) -> tuple[list, torch.utils.hooks.RemovableHandle]:
    """Record the (H, W) of every forward; the hook survives the Translator's copy."""
    seen: list[tuple[int, int]] = []
    handle = model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[-2:]))
    return seen, handle


@pytest.mark.slow
def test_image_too_big_to_translate_whole_comes_back_at_its_size(tr):
    """3000x2000 through a tiny ResNet: untiled, its first activation alone would be 8 x 6 MP
    floats (190 MB, and ~20 such tensors live); tiled, the network never sees more than a
    256x256 window and the output has the input's size."""
    model = tiny_generators()["resnet"]
    seen, handle = _input_sides(model)
    try:
        out = translate_tiled(tr, model, random_image(3000, 2000), stats="window", progress=False)
    finally:
        handle.remove()
    assert out.size == (3000, 2000) and out.mode == "RGB"
    assert len(seen) > 1 and all(tuple(s) == (256, 256) for s in seen)


def test_shared_statistics_come_from_a_bounded_pass(tr):
    model = tiny_generators()["resnet"]
    seen, handle = _input_sides(model)
    try:
        translate_tiled(tr, model, random_image(1200, 900), stats_size=200, progress=False)
    finally:
        handle.remove()
    assert tuple(seen[0]) == (152, 200)  # the statistics pass: long side 200, multiple of 4
    assert all(tuple(s) == (256, 256) for s in seen[1:])


@pytest.mark.parametrize("name", RESNETS)
def test_resnet_tiled_equals_untiled(tr, name):
    """Stated tolerance: with shared statistics measured at the image's own size, tiled equals
    untiled up to rounding and the residue of the window borders: at most 2 levels of 255
    anywhere, 0.1 on average. (ResNets are fully convolutional; this tiny one sees ~30 px.)"""
    img = random_image(400, 300, seed=3)
    untiled = tr.translate(NETS[name], [img], size=None)[0]
    tiled = translate_tiled(tr, NETS[name], img, tile=128, overlap=64, progress=False)
    d = _levels(tiled, untiled)
    assert tiled.size == untiled.size
    assert d.max() <= 2 and d.mean() <= 0.1


@pytest.mark.parametrize("name", UNETS)
def test_unet_tiled_is_close_to_untiled_and_closer_with_shared_statistics(tr, name):
    """A U-Net-256's 1x1 bottleneck sees a whole window, so a window never has the untiled
    context and tiled cannot equal untiled. Stated tolerance: shared statistics keep the
    mean difference under 4 levels, and below what per-window statistics give."""
    img = random_image(512, 384, seed=3)
    untiled = tr.translate(NETS[name], [img], size=None)[0]
    shared = translate_tiled(tr, NETS[name], img, stats="shared", progress=False)
    window = translate_tiled(tr, NETS[name], img, stats="window", progress=False)
    assert _levels(shared, untiled).mean() < min(4.0, _levels(window, untiled).mean())


@pytest.mark.parametrize("stats", STATS)
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_both_statistics_run_for_every_architecture(tr, name, stats):
    """Windows respect the architecture's multiple (256 for the U-Nets, 4 for the ResNets);
    a side shorter than a window is padded; alpha and the original size come back."""
    img = random_image(300, 90).convert("RGBA")
    out = translate_tiled(tr, NETS[name], img, stats=stats, size=600, progress=False)
    assert out.size == (300, 90) and out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], np.asarray(img)[..., 3])


def test_catalog_ids_use_the_translators_cached_model():
    loads = []

    def loader(key):
        loads.append(key)
        return tiny_generators()["resnet"]

    tr = Translator(device="cpu", plan="eager", loader=loader)
    img = random_image(300, 200)
    calls = []
    out = translate_tiled(tr, "tiny/resnet", img, tile=128, progress=lambda d, n: calls.append(d))
    assert out.size == (300, 200) and loads == ["tiny/resnet"]
    assert calls[-1] == 6 and calls == sorted(calls)  # 3 x 2 windows, batch 8: one call
    again = translate_tiled(tr, "tiny/resnet", img, tile=128, batch=1, progress=False)
    assert loads == ["tiny/resnet"]
    assert _levels(again, out).max() <= 1  # batching does not change the result


def test_running_batchnorm_statistics_make_both_modes_equal():
    tr = Translator(device="cpu", plan="eager", norm_stats="running")
    img = random_image(512, 300)
    a, b = (translate_tiled(tr, NETS["unet"], img, stats=s, progress=False) for s in STATS)
    assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tile": 100}, "not a multiple of 256"),
        ({"tile": 256, "overlap": 129}, "overlap must be in"),
        ({"stats": "frame"}, "stats must be one of"),
    ],
)
def test_bad_settings_are_refused(tr, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        translate_tiled(tr, NETS["unet"], random_image(64, 64), progress=False, **kwargs)


@pytest.mark.parametrize("window, overlap", [(16, 0), (16, 8), (256, 64), (256, 128)])
def test_blend_weights_cover_every_pixel_and_pairs_sum_to_one(window, overlap):
    for side in [*range(1, 3 * window), 1000]:
        axis = make_axis(side, window, overlap)
        assert bool((axis.total > 0).all())
        assert axis.starts[0] == 0 and axis.starts[-1] + axis.length == side
        s = axis.starts
        shared = [s[i] + axis.length - s[i + 1] for i in range(len(s) - 1)]
        assert all(n >= overlap for n in shared)
        if all(n <= axis.length / 2 for n in shared):  # only pairs overlap: exact unity
            assert torch.allclose(axis.total, torch.ones(side), atol=1e-6)


def test_a_stop_request_ends_the_work_before_the_next_batch_of_windows(tr):
    """`should_stop` is asked before each batch of windows; once it says so, Cancelled is
    raised and no further window is computed (the app asks it whether the client is gone)."""
    net = tiny_generators()["resnet"]
    forwards, asked = [], []
    net.register_forward_pre_hook(lambda module, args: forwards.append(args[0].shape[0]))

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(Cancelled, match="stopped after 4 of 9 windows"):
        translate_tiled(
            tr,
            net,
            random_image(600, 600),
            tile=256,
            batch=2,
            stats="window",
            progress=False,
            should_stop=should_stop,
        )
    assert len(asked) == 3 and sum(forwards) == 4  # two batches of two, then nothing


def test_automatic_choice_runs_untiled_when_it_fits_and_tiles_over_the_budget(tr):
    """translate_full: one piece when the estimated untiled peak fits the budget (faster, and
    the reference), tiles when it does not."""
    from img2img.media.tiles import translate_full, untiled_peak_bytes

    model = NETS["resnet"]
    img = random_image(300, 200, seed=5)
    need = untiled_peak_bytes(model, 4, img.size)
    seen, handle = _input_sides(model)
    try:
        whole = translate_full(tr, model, img, budget=need)
        assert [tuple(s) for s in seen] == [(200, 300)]
        seen.clear()
        tiled = translate_full(tr, model, img, budget=need - 1, tile=128, overlap=32)
        assert tuple(seen[0]) == (200, 300)  # the statistics pass, then windows only
        assert len(seen) > 1 and all(tuple(s) == (128, 128) for s in seen[1:])
    finally:
        handle.remove()
    assert np.array_equal(np.asarray(whole), np.asarray(tr.translate(model, [img], size=None)[0]))
    want = translate_tiled(tr, model, img, tile=128, overlap=32, progress=False)
    assert np.array_equal(np.asarray(tiled), np.asarray(want))


def test_untiled_peak_estimate_grows_with_the_pixels_and_the_width():
    from img2img.media.tiles import untiled_peak_bytes

    model = NETS["resnet"]
    small, big = untiled_peak_bytes(model, 4, (400, 300)), untiled_peak_bytes(model, 4, (800, 600))
    assert big == 4 * small > 0


def test_default_setting_tiles_equal_untiled_above_the_old_statistics_size(tr):
    """The documented setting (default tile 256, overlap 64, statistics pass as large as the
    memory budget allows: here the photo's own size, 640 px, over the old 512) at the
    documented tolerance: at most 2 levels anywhere, 0.1 on average."""
    model = NETS["resnet"]
    img = random_image(640, 480, seed=4)
    untiled = tr.translate(model, [img], size=None)[0]
    tiled = translate_tiled(tr, model, img, progress=False)
    d = _levels(tiled, untiled)
    assert d.max() <= 2 and d.mean() <= 0.1


def test_statistics_pass_is_the_photo_s_size_when_it_fits_and_bounded_when_not():
    from img2img.media.tiles import MIN_STATS_SIZE, stats_side, untiled_peak_bytes

    model = NETS["resnet"]
    size = (4000, 3000)
    assert stats_side(model, 4, size, budget=untiled_peak_bytes(model, 4, size)) == 4000
    quarter = untiled_peak_bytes(model, 4, (2000, 1500))
    assert abs(stats_side(model, 4, size, budget=quarter) - 2000) <= 4
    assert stats_side(model, 4, size, budget=1) == MIN_STATS_SIZE
