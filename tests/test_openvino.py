"""The OpenVINO execution plan: same outputs as eager fp32 torch, fallbacks, overrides, threads.

Tolerance: OpenVINO's CPU plugin reorders float32 sums (other convolution and normalisation
kernels), so outputs differ from eager torch by float rounding only: max abs error 1e-4 on
outputs in [-1, 1] (measured: ~3e-6 at ngf 8; 256 8-bit levels are 7.8e-3 apart).
"""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from helpers.images import random_image
from helpers.models import tiny_generators
from helpers.paths import ROOT

from img2img import Translator
from img2img.models import ResnetGenerator, registry
from img2img.plans import execution
from img2img.plans.openvino import cache as openvino_cache
from img2img.plans.openvino import runner as openvino_plan
from img2img.plans.openvino.runner import OpenVINORunner

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not openvino_plan.available(), reason="openvino is not installed"),
]
TOL = 1e-4


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Converted models go to this test's own cache folder, not the user's."""
    monkeypatch.setenv("IMG2IMG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("IMG2IMG_OPENVINO_CACHE", raising=False)  # not the session's shared one
    return tmp_path / "cache" / "openvino"


def _input(model: torch.nn.Module, batch: int = 2, wide: int = 2) -> torch.Tensor:
    side = max(registry.size_multiple(model.config), 64)
    torch.manual_seed(1)
    return torch.rand(batch, 3, side, side * wide) * 2 - 1


def _eager(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return Translator(device="cpu", plan="eager").forward(model, x)


@pytest.mark.parametrize("name", list(registry.ARCHITECTURES))
def test_openvino_matches_eager_for_every_architecture(name):
    model = tiny_generators()[name]
    t = Translator(device="cpu", plan="openvino-f32")
    assert isinstance(t.prepare(model).runner, OpenVINORunner)
    x = _input(model)
    y = t.forward(model, x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float((y - _eager(model, x)).abs().max()) < TOL


def test_running_statistics_and_first_call_at_new_sizes():
    model = tiny_generators()["unet"]
    t = Translator(device="cpu", plan="openvino-f32", norm_stats="running")
    ref = Translator(device="cpu", plan="eager", norm_stats="running")
    for batch, wide in ((1, 1), (3, 2), (1, 3)):  # new batch and aspect ratios after warm-up
        x = _input(model, batch, wide)
        assert float((t.forward(model, x) - ref.forward(model, x)).abs().max()) < TOL


def test_translate_images_like_eager():
    model = tiny_generators()["resnet"]
    imgs = [random_image(70, 50, seed=3), random_image(33, 61, seed=4)]
    got = Translator(device="cpu", plan="openvino-f32").translate(model, imgs, size=None)
    want = Translator(device="cpu", plan="eager").translate(model, imgs, size=None)
    for g, w in zip(got, want, strict=True):
        diff = np.asarray(g).astype(int) - np.asarray(w).astype(int)
        assert g.size == w.size and int(np.abs(diff).max()) <= 1  # 8-bit rounding at most


@pytest.mark.parametrize("name", ["resnet", "unet"])
def test_batch_jobs_run_a_batch_as_parallel_throughput_requests(name):
    """Translator(throughput=True): a batch of 3 runs as 3 requests on the THROUGHPUT compile,
    each image as it comes out alone (per-image statistics kept); one image keeps LATENCY."""
    model = tiny_generators()[name]
    t = Translator(device="cpu", plan="openvino-f32", throughput=True)
    runner = t._resolve(model).runner  # the prepared copy forward() uses
    assert isinstance(runner, OpenVINORunner) and runner.throughput
    one = _input(model, 1)
    assert float((t.forward(model, one) - _eager(model, one)).abs().max()) < TOL
    assert runner._queue is None  # a single image never compiled the THROUGHPUT model
    x = _input(model, 3)
    y = t.forward(model, x)
    assert runner._queue is not None
    assert float((y - _eager(model, x)).abs().max()) < TOL
    alone = torch.cat([_eager(model, x[i : i + 1]) for i in range(3)])
    assert float((y - alone).abs().max()) < TOL
    plain = Translator(device="cpu", plan="openvino-f32").prepare(model).runner
    assert not plain.throughput  # the app's Translator: LATENCY only


def test_a_caller_module_is_converted_once_and_again_after_its_weights_change():
    model = tiny_generators()["resnet"]
    t = Translator(device="cpu", plan="openvino-f32")
    x = _input(model, 1)
    first = t._resolve(model)
    y1 = t.forward(model, x)
    assert t._resolve(model) is first
    with torch.no_grad():
        next(model.parameters()).mul_(0.5)  # in place: the prepared copy is stale now
    assert t._resolve(model) is not first
    y2 = t.forward(model, x)
    assert float((y2 - _eager(model, x)).abs().max()) < TOL
    assert float((y1 - y2).abs().max()) > TOL


def test_seeded_variations_run_the_torch_module():
    model = tiny_generators()["unet"]
    img = [random_image(256, 256, seed=5)]
    got = Translator(device="cpu", plan="openvino-f32").translate(model, img, seed=7)[0]
    want = Translator(device="cpu", plan="eager").translate(model, img, seed=7)[0]
    assert np.array_equal(np.asarray(got), np.asarray(want))


def test_plan_environment_override(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setenv("IMG2IMG_PLAN", "eager")
    assert execution.auto_plan(cpu) == execution.EAGER
    model = tiny_generators()["resnet"]
    assert Translator(device="cpu").prepare(model).runner is not None
    assert not isinstance(Translator(device="cpu").prepare(model).runner, OpenVINORunner)
    monkeypatch.setenv("IMG2IMG_PLAN", "openvino")
    assert execution.auto_plan(cpu).openvino
    assert isinstance(Translator(device="cpu").prepare(model).runner, OpenVINORunner)
    monkeypatch.delenv("IMG2IMG_PLAN")
    assert execution.auto_plan(cpu).openvino  # openvino importable on a CPU: the default


class _Untraceable(ResnetGenerator):
    """A registry generator whose forward cannot be traced (it refuses to be)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            raise RuntimeError("this module cannot be traced")
        return super().forward(x)


def test_a_model_that_fails_to_convert_falls_back_to_torch(caplog):
    torch.manual_seed(0)
    model = _Untraceable(ngf=8, n_blocks=2).eval()
    t = Translator(device="cpu", plan="openvino-f32")
    with caplog.at_level("WARNING", logger="img2img.plans.execution"):
        with caplog.at_level("WARNING", logger="img2img.plans.openvino.runner"):
            prepared = t.prepare(model)
    assert prepared.runner is prepared.model
    assert any("could not convert" in r.getMessage() for r in caplog.records)
    x = _input(model, 1)
    assert torch.equal(t.forward(model, x), _eager(model, x))


_BLOCKED = """
import importlib.abc, logging, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError("openvino blocked by the test")
sys.meta_path.insert(0, Block())
logging.basicConfig(level=logging.INFO, format="LOG %(name)s %(message)s")
import torch
sys.path.insert(0, "tests")
from helpers.models import tiny_generators
from img2img import Translator
from img2img.plans import execution
from img2img.plans.openvino import cache as openvino_cache
from img2img.plans.openvino import runner as openvino_plan
torch.set_num_threads(1)
assert not openvino_plan.available()
auto = execution.auto_plan(torch.device("cpu"))
assert not auto.openvino, auto
model = tiny_generators()["resnet"]
x = torch.rand(1, 3, 64, 64) * 2 - 1
t = Translator(device="cpu", plan="openvino-f32")
prepared = t.prepare(model)
assert prepared.runner is prepared.model
ref = Translator(device="cpu", plan="eager").forward(model, x)
assert torch.equal(t.forward(model, x), ref)
print("FELL BACK", auto.name)
"""


def test_without_openvino_the_torch_path_runs():
    proc = subprocess.run(
        [sys.executable, "-c", _BLOCKED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FELL BACK" in proc.stdout
    assert "openvino is not usable (ImportError: openvino blocked by the test)" in proc.stderr
    assert proc.stderr.count("openvino is not usable") == 1  # one line, not one per model


def test_two_threads_share_one_model():
    model = tiny_generators()["huggan_unet"]
    t = Translator(device="cpu", plan="openvino-f32", loader=lambda key: model)
    shared = t.load("m")  # the one cached prepared model (and OpenVINO runner) of both threads
    assert isinstance(t._entry("m").runner, OpenVINORunner)
    inputs = [_input(model, 1, wide) for wide in (1, 2)]
    want = [_eager(model, x) for x in inputs]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(4):
                y = t.forward(shared, inputs[i])
                assert float((y - want[i]).abs().max()) < TOL
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors


def test_converted_models_are_cached_per_weights(private_cache, caplog):
    model = tiny_generators()["unet"]  # BatchNorm: norm_stats matters
    x = _input(model, 1)
    want = _eager(model, x)
    first = Translator(device="cpu", plan="openvino-f32").forward(model, x)
    entries = list(private_cache.iterdir())
    assert len(entries) == 1 and (entries[0] / "model.bin").stat().st_size > 0
    again = Translator(device="cpu", plan="openvino-f32").forward(model, x)  # read back, not traced
    assert torch.equal(first, again) and float((again - want).abs().max()) < TOL
    assert len(list(private_cache.iterdir())) == 1
    running = Translator(device="cpu", plan="openvino-f32", norm_stats="running")
    running.forward(model, x)  # another norm mode: another graph, another entry
    assert len(list(private_cache.iterdir())) == 2
    (entries[0] / "model.bin").write_bytes(b"damaged")
    with caplog.at_level("WARNING", logger="img2img.plans.openvino.cache"):
        fixed = Translator(device="cpu", plan="openvino-f32").forward(model, x)
    assert any("damaged" in r.getMessage() for r in caplog.records)
    assert float((fixed - want).abs().max()) < TOL


def test_cache_keeps_at_most_max_entries(private_cache, monkeypatch):
    monkeypatch.setattr(openvino_cache, "MAX_ENTRIES", 2)
    model = tiny_generators()["resnet"]
    for scale in (0.5, 0.7, 0.9):
        with torch.no_grad():
            next(model.parameters()).mul_(scale)
        Translator(device="cpu", plan="openvino-f32").prepare(model)
    assert len(list(private_cache.iterdir())) == 2


@pytest.mark.parametrize("name", ["unet", "resnet"])
def test_shared_statistics_run_openvino_graphs_like_the_torch_hooks(name):
    from img2img.media.normstats import StatsRunner

    model = tiny_generators()[name]
    ov = StatsRunner(Translator(device="cpu", plan="openvino-f32"), model)
    ref = StatsRunner(Translator(device="cpu", plan="eager"), model)
    assert ov._graphs is not None
    big, small = _input(model, 1, 2), _input(model, 2, 1)
    _, want_stats = ref.run(big, record=True)
    _, got_stats = ov.run(big, record=True)
    assert set(got_stats) == set(want_stats)
    for layer, s in want_stats.items():
        assert got_stats[layer].count == s.count
        assert torch.allclose(got_stats[layer].mean, s.mean, atol=1e-4)
        assert torch.allclose(got_stats[layer].var, s.var, rtol=1e-3, atol=1e-5)
    for record in (False, True):
        y_ref, seen_ref = ref.run(small, fixed=want_stats, record=record)
        y_ov, seen_ov = ov.run(small, fixed=want_stats, record=record)
        assert float((y_ov - y_ref).abs().max()) < TOL
        assert (seen_ov is None) == (seen_ref is None)
        if record:
            for layer, s in seen_ref.items():
                assert torch.allclose(seen_ov[layer].mean, s.mean, atol=1e-4)


def test_tiles_with_shared_statistics_under_openvino():
    from img2img.media.tiles import translate_tiled

    model = tiny_generators()["resnet"]
    img = random_image(150, 100, seed=8)
    ov = Translator(device="cpu", plan="openvino-f32", loader=lambda key: model)
    got = translate_tiled(ov, "m", img, tile=64, overlap=16, progress=False)
    assert isinstance(ov.runner("m"), OpenVINORunner)
    want = translate_tiled(
        Translator(device="cpu", plan="eager"), model, img, tile=64, overlap=16, progress=False
    )
    diff = np.asarray(got).astype(int) - np.asarray(want).astype(int)
    assert got.size == want.size and int(np.abs(diff).max()) <= 1


@pytest.mark.parametrize("stats", ["shared", "running"])
def test_video_with_shared_statistics_under_openvino(tmp_path, stats, monkeypatch):
    from helpers.videos import decode, make_clip

    from img2img.media import video
    from img2img.media.video import translate_video

    # The frames handed to the encoder are compared, not the decoded files: libx264 is not
    # deterministic here (two eager runs of the same clip decode 0.17 mean / 38 max levels
    # apart on an AMX CPU), so an encoded comparison measures the encoder, not the plan.
    handed: dict[str, list[np.ndarray]] = {}
    write_frame = video._Writer.write_frame

    def recording(self, img, *when):
        handed[current].append(np.asarray(img).astype(int))
        write_frame(self, img, *when)

    monkeypatch.setattr(video._Writer, "write_frame", recording)
    model = tiny_generators()["resnet"]
    clip = make_clip(tmp_path / "clip.mp4")
    outs = {}
    for current in ("openvino-f32", "eager"):
        handed[current] = []
        dst = tmp_path / f"{current}.mp4"
        t = Translator(device="cpu", plan=current)
        info = translate_video(t, model, clip, dst, size=64, stats=stats, progress=False)
        outs[current] = decode(dst)
        assert info.frames == outs[current]["frames"] == len(handed[current])
    assert outs["openvino-f32"]["frames"] == outs["eager"]["frames"]
    assert outs["openvino-f32"]["size"] == outs["eager"]["size"]
    for got, want in zip(handed["openvino-f32"], handed["eager"], strict=True):
        assert int(np.abs(got - want).max()) <= 1  # 8-bit rounding at most (forwards: ~5e-6)


# --- the bf16 plan: native-bf16 CPUs only (AVX-512 BF16 / AMX), bf16 tolerances ------------

native_bf16 = pytest.mark.skipif(
    not execution.native_cpu_bf16(), reason="bf16 is not native on this CPU (AVX2 only)"
)
# The issue measured <= 3 levels and >= 50 dB on trained weights; tiny random ngf-8 weights
# (these tests) reach 4 levels on HugGAN ResNet under AMX, PSNR stays >= 50 dB.
BF16_LEVELS = 4
BF16_PSNR = 50.0
# pix2pixHD's tiny GlobalGenerator (3 downsamplings, biased convs before every norm) carries
# more bf16 rounding: over 5 seeds and both test images, max 4-6 levels and 48.6-50.6 dB
# against eager fp32 (AVX-512 BF16 without AMX), so its bound is looser by that spread.
BF16_DEEP_LEVELS = 8
BF16_DEEP_PSNR = 46.0


def _psnr(got: np.ndarray, want: np.ndarray) -> float:
    mse = float(np.mean((got.astype(np.float64) - want.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@native_bf16
@pytest.mark.parametrize("name", list(registry.ARCHITECTURES))
def test_bf16_plan_is_within_bf16_tolerance_of_eager(name):
    model = tiny_generators()[name]
    t = Translator(device="cpu", plan="openvino-bf16")
    runner = t.prepare(model).runner
    assert isinstance(runner, OpenVINORunner) and runner.precision == "bf16"
    side = max(registry.size_multiple(model.config), 64)
    imgs = [random_image(side * 2, side, seed=5), random_image(side, side, seed=6)]
    got = t.translate(model, imgs, size=None)
    want = Translator(device="cpu", plan="eager").translate(model, imgs, size=None)
    for g, w in zip(got, want, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape
        deep = model.config.get("n_downsample", 2) > 2
        levels, psnr = (BF16_DEEP_LEVELS, BF16_DEEP_PSNR) if deep else (BF16_LEVELS, BF16_PSNR)
        assert int(np.abs(g.astype(int) - w.astype(int)).max()) <= levels
        assert _psnr(g, w) >= psnr


@native_bf16
def test_the_default_plan_takes_bf16_where_native_and_f32_when_forced_off(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv("IMG2IMG_PLAN", raising=False)
    monkeypatch.delenv("IMG2IMG_BF16", raising=False)
    plan = execution.auto_plan(cpu)
    assert plan.openvino and plan.dtype == torch.bfloat16
    assert execution.torch_side(plan).name == "bf16"
    monkeypatch.setenv("IMG2IMG_BF16", "0")  # the f32 path AVX2-only CPUs take
    plan = execution.auto_plan(cpu)
    assert plan.openvino and plan.dtype == torch.float32
    assert execution.torch_side(plan) == execution.EAGER


def test_pinned_openvino_plans_keep_their_precision_on_every_cpu(monkeypatch):
    monkeypatch.setenv("IMG2IMG_BF16", "0")
    assert execution.make_plan("openvino-bf16").dtype == torch.bfloat16
    monkeypatch.delenv("IMG2IMG_BF16")
    f32 = execution.make_plan("openvino-f32")
    assert f32.openvino and f32.dtype == torch.float32 and not f32.channels_last
    assert execution.torch_side(f32) == execution.EAGER
