"""The plan table (execution.PLANS) and the backend contract (plans/backend.py): every row
builds and runs; a new backend is one class plus one row, and the Translator, IMG2IMG_PLAN,
seeded and shared-statistics forwards pick it up from the table."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.images import random_image
from helpers.models import tiny_generators
from torch import nn

from img2img import Translator
from img2img.errors import ConfigError
from img2img.media.normstats import StatsRunner
from img2img.plans import execution
from img2img.plans.backend import TORCH, Backend

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Converted models go to this test's own cache folder, not the user's."""
    monkeypatch.setenv("IMG2IMG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("IMG2IMG_OPENVINO_CACHE", raising=False)  # not the session's shared one


def _rows():
    """Every row; converting backends' rows are slow (a conversion takes seconds)."""
    marks = {True: [], False: [pytest.mark.slow]}
    return [
        pytest.param(name, marks=marks[row.backend is TORCH], id=name)
        for name, row in execution.PLANS.items()
    ]


@pytest.mark.parametrize("name", _rows())
def test_every_plan_builds_on_the_cpu_and_runs(name):
    row = execution.PLANS[name]
    model = tiny_generators()["resnet"]
    t = Translator(device="cpu", plan=name)
    assert t.plan == execution.make_plan(name) and t.plan.backend is row.backend
    runner = t.prepare(model).runner
    converts = row.backend is not TORCH and row.backend.available()
    assert isinstance(runner, nn.Module) is not converts  # the module: torch or a fallback
    torch.manual_seed(1)
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    y = t.forward(model, x)
    assert y.shape == x.shape and y.dtype == torch.float32 and y.device.type == "cpu"
    assert bool(torch.isfinite(y).all()) and float(y.abs().max()) <= 1.0


@pytest.mark.parametrize("name", list(execution.PLANS))
def test_every_row_has_a_torch_side_of_its_precision_and_format(name):
    plan = execution.make_plan(name, compile=True)
    row = execution.PLANS[name]
    assert plan.compile == row.compiles
    side = execution.torch_side(plan)
    assert side.backend is TORCH and side.backend.hooks_work
    assert (side.dtype, side.channels_last) == (plan.dtype, plan.channels_last)
    eager = execution.without_compile(plan)
    assert eager.backend.hooks_work and not eager.compile
    assert plan.openvino == (row.backend.name == "openvino")


def test_unknown_plans_list_the_table():
    with pytest.raises(ConfigError, match="unknown execution plan 'int8'") as e:
        execution.make_plan("int8")
    assert all(repr(name) in str(e.value) for name in execution.PLANS)


# --- a new backend: one class, one row ------------------------------------------------------


class ToyRunner:
    """A runner that is not a module: the module in fp32 without autograd, counting calls."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.calls = model, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        with torch.inference_mode():
            return self.model(x.contiguous()).float().contiguous()


class ToyBackend(Backend):
    name = "toy"
    devices = ("cpu",)

    def __init__(self, works: bool = True) -> None:
        self.works = works

    def available(self) -> bool:
        return self.works

    def convert(self, model, plan, device):
        return ToyRunner(model)


@pytest.fixture
def toy():
    """The toy backend's row registered through the public door, removed afterwards."""
    row = execution.register(execution.PlanRow("toy", ToyBackend(), compiles=False))
    try:
        yield row
    finally:
        execution.unregister("toy")
    assert "toy" not in execution.PLANS


def test_a_new_backend_is_one_row(toy, monkeypatch):
    with pytest.raises(ConfigError, match="already registered"):
        execution.register(toy)
    monkeypatch.setenv("IMG2IMG_PLAN", "toy")
    cpu = torch.device("cpu")
    assert execution.auto_plan(cpu) == execution.make_plan("toy")
    assert execution.torch_side(execution.auto_plan(cpu)) == execution.EAGER
    model = tiny_generators()["unet"]  # BatchNorm with per-image statistics, and dropout
    t = Translator(device="cpu")  # the plan from IMG2IMG_PLAN
    assert t.plan.name == "toy"
    runner = t.prepare(model).runner
    assert isinstance(runner, ToyRunner)
    imgs = [random_image(256, 256, seed=3), random_image(300, 200, seed=4)]  # 2 shapes
    eager = Translator(device="cpu", plan="eager")
    got = t.translate(model, imgs, size=None)
    want = eager.translate(model, imgs, size=None)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(np.asarray(g), np.asarray(w))
    calls = t._resolve(model).runner.calls
    assert calls == 3  # the warm-up at 256² and both sizes went through the toy runner
    seeded = t.translate(model, imgs[:1], seed=7)[0]  # hooks_work False: the torch module
    assert t._resolve(model).runner.calls == calls
    assert np.array_equal(
        np.asarray(seeded), np.asarray(eager.translate(model, imgs[:1], seed=7)[0])
    )
    # No statistics graphs (the default): shared statistics use torch hooks on the module.
    stats = StatsRunner(t, model)
    assert stats._graphs is None
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    y, recorded = stats.run(x, record=True)
    y_ref, want_stats = StatsRunner(eager, model).run(x, record=True)
    assert torch.equal(y, y_ref) and set(recorded) == set(want_stats)


def test_an_unavailable_backend_runs_the_torch_module():
    execution.register(execution.PlanRow("toy-missing", ToyBackend(works=False)))
    try:
        model = tiny_generators()["resnet"]
        t = Translator(device="cpu", plan="toy-missing")
        prepared = t.prepare(model)
        assert prepared.runner is prepared.model
        x = torch.rand(1, 3, 64, 64) * 2 - 1
        assert torch.equal(
            t.forward(model, x), Translator(device="cpu", plan="eager").forward(model, x)
        )
    finally:
        execution.unregister("toy-missing")
