"""`img2img export` (img2img/export.py): every architecture of the registry exports to ONNX
and OpenVINO IR, and the files, run by ONNX Runtime and OpenVINO, compute what the eager
Translator computes (pad to the multiple, per-image statistics, crop) within 1e-4 at 256² and
240x320, batch 2 = each image alone; the CLI refuses bad options in one line; push uploads
exports beside the weights and refuses stale ones; the onnxruntime plan matches eager."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import openvino as ov
import pytest
import torch
from helpers.env import clean_env
from helpers.images import random_image
from helpers.models import tiny_generators
from helpers.paths import ROOT
from helpers.servers import FakeHub, serving

from img2img import Translator, save_pretrained
from img2img import export as ex
from img2img.cli import main
from img2img.errors import ConfigError, MissingDependencyError
from img2img.media.processing import pad_to_multiple
from img2img.models import ARCHITECTURES, size_multiple
from img2img.plans import execution
from img2img.plans.onnxruntime import cache as ort_cache
from img2img.plans.onnxruntime.backend import ONNXRuntimeRunner

pytestmark = pytest.mark.usefixtures("one_thread")
TOL = 1e-4  # max abs, [-1, 1] scale


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """The onnxruntime plan's graphs go to this test's own cache folder."""
    monkeypatch.setenv("IMG2IMG_CACHE", str(tmp_path / "cache"))


def eager(model, x: torch.Tensor, norm_stats: str = "image") -> torch.Tensor:
    """The Translator's eager fp32 forward at x's size: padded to the multiple, cropped back."""
    t = Translator(device="cpu", plan="eager", norm_stats=norm_stats)
    y = t.forward(model, pad_to_multiple(x, size_multiple(model.config)))
    return y[..., : x.shape[-2], : x.shape[-1]]


def runner(fmt: str, path):
    """A callable (numpy in, numpy out) running the exported file with its runtime."""
    if fmt == "onnx":
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {"image": x})[0]
    # f32 pinned: OpenVINO's CPU plugin takes bf16 by default where the CPU has it natively
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1}
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    return lambda x: compiled(x)[0]


def inputs() -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    return {
        "256x256": torch.rand(1, 3, 256, 256) * 2 - 1,
        "240x320 batch 2": torch.rand(2, 3, 240, 320) * 2 - 1,  # two different images
    }


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ex.FORMATS)
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_every_family_round_trips(name, fmt, tmp_path):
    model = tiny_generators()[name]
    written = ex.export(model, fmt, tmp_path / f"g{ex.SUFFIX[fmt]}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)
    run = runner(fmt, written[-1])
    for what, x in inputs().items():
        y = torch.from_numpy(run(x.numpy()))
        assert y.shape == x.shape, what
        err = float((y - eager(model, x)).abs().max())
        assert err < TOL, (what, err)
    x = inputs()["240x320 batch 2"]  # per-image statistics: the batch = each image alone
    both = run(x.numpy())
    for i in range(2):
        alone = run(x[i : i + 1].numpy())
        assert float(np.abs(both[i : i + 1] - alone).max()) < 1e-5
    assert float(np.abs(both[0] - both[1]).max()) > 0.01  # two images, two outputs


def test_the_file_says_what_it_is(tmp_path):
    model = tiny_generators()["unet"]
    [path] = ex.export(model, "onnx", tmp_path)  # a folder: the release name inside
    assert path == tmp_path / "model.onnx"
    meta = ex.read_metadata(path)
    assert meta["architecture"] == "unet" and meta["size_multiple"] == "256"
    assert meta["weights_sha256"] == ex.fingerprint(model) and meta["norm_stats"] == "image"
    assert meta["config"].startswith("{") and "ngf" in meta["config"]


def test_running_statistics_and_small_sides(tmp_path):
    """--norm-stats running is eval-mode BatchNorm; a strip thinner than its pad (replicated,
    as pad_to_multiple does) and a side under the least padded size still run."""
    model = tiny_generators()["unet"]
    for stats in ("running", "image"):
        [path] = ex.export(model, "onnx", tmp_path / f"{stats}.onnx", norm_stats=stats)
        run = runner("onnx", path)
        torch.manual_seed(5)
        for shape in [(1, 3, 256, 256), (1, 3, 100, 30), (1, 3, 10, 12)]:
            x = torch.rand(*shape) * 2 - 1
            err = float((torch.from_numpy(run(x.numpy())) - eager(model, x, stats)).abs().max())
            assert err < TOL, (stats, shape, err)


def test_refusals_in_the_library(tmp_path, monkeypatch):
    model = tiny_generators()["resnet"]
    with pytest.raises(ConfigError, match="unknown export format 'tflite'"):
        ex.export(model, "tflite", tmp_path / "g.tflite")
    with pytest.raises(ConfigError, match="OpenVINO option"):
        ex.export(model, "onnx", tmp_path / "g.onnx", fp16_weights=True)
    with pytest.raises(ConfigError, match="norm_stats"):
        ex.export(model, "onnx", tmp_path / "g.onnx", norm_stats="batch")
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if onnx were not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'img2img-gan\[export\]'"):
        ex.export(model, "onnx", tmp_path / "g.onnx")
    assert list(tmp_path.iterdir()) == []


# --- the command line -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    save_pretrained(tiny_generators()["resnet"], root / "run")
    return root


def test_cli_exports_a_saved_folder(saved, tmp_path, capsys):
    out = tmp_path / "new" / "g.onnx"  # its folder is made
    assert main(["export", str(saved / "run"), "--format", "onnx", "-o", str(out)]) == 0
    assert capsys.readouterr().out.split() == [str(out)]
    x = inputs()["256x256"]
    model = tiny_generators()["resnet"]
    assert float(np.abs(runner("onnx", out)(x.numpy()) - eager(model, x).numpy()).max()) < TOL
    assert sorted(p.name for p in out.parent.iterdir()) == ["g.onnx"]  # no temporary left


def _one_line_exit_2(argv: list[str], capsys) -> str:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (argv, code, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_cli_refuses_bad_options_in_one_line(saved, tmp_path, capsys):
    run = str(saved / "run")
    (tmp_path / "file").write_text("x")
    (tmp_path / "kept.onnx").write_bytes(b"mine")
    cases = [
        (["--format", "tflite", "-o", "g.onnx"], "invalid choice"),
        (["--format", "onnx", "-o", str(tmp_path / "g.xml")], "is a .onnx file"),
        (["--format", "onnx", "--fp16-weights", "-o", str(tmp_path / "g.onnx")], "OpenVINO"),
        (["--format", "onnx", "-o", str(tmp_path / "kept.onnx")], "exists (--overwrite"),
        (["--format", "onnx", "-o", str(tmp_path / "file" / "g.onnx")], "is a file"),
        (["--format", "onnx", "--norm-stats", "batch", "-o", "g.onnx"], "invalid choice"),
    ]
    for options, why in cases:
        assert why in _one_line_exit_2(["export", run, *options], capsys), options
    line = _one_line_exit_2(["export", "nope/none", "--format", "onnx", "-o", "x.onnx"], capsys)
    assert "nope/none" in line
    assert (tmp_path / "kept.onnx").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "kept.onnx"]


# --- push -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_push_uploads_exports_and_refuses_stale_ones(tmp_path):
    model = tiny_generators()["resnet"]
    save_pretrained(model, tmp_path / "run")
    with serving(FakeHub()) as hub:
        env = clean_env(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_TOKEN="hf_x")

        def push(*extra: str) -> subprocess.CompletedProcess:
            argv = ["-m", "img2img", "push", str(tmp_path / "run"), "--repo-id", "me/mine"]
            return subprocess.run(
                [sys.executable, *argv, *extra], cwd=ROOT, env=env, capture_output=True,
                text=True, timeout=300,
            )  # fmt: skip

        proc = push("--export", "onnx", "--export", "openvino")
        assert proc.returncode == 0, proc.stderr
        names = {f for repo, f in hub.files if repo == "me/mine"}
        assert {"model.onnx", "openvino_model.xml", "openvino_model.bin"} <= names
        (tmp_path / "got.onnx").write_bytes(hub.files[("me/mine", "model.onnx")])
        x = inputs()["256x256"]
        y = runner("onnx", tmp_path / "got.onnx")(x.numpy())
        assert float(np.abs(y - eager(model, x).numpy()).max()) < TOL
        # new weights in the folder, the old exports beside them: refused, nothing uploaded
        save_pretrained(tiny_generators(seed=1)["resnet"], tmp_path / "run")
        hub.files.clear()
        proc = push()
        assert proc.returncode == 2 and "was not exported from" in proc.stderr, proc.stderr
        assert not hub.files


# --- the onnxruntime plan -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_onnxruntime_plan_matches_eager(name):
    model = tiny_generators()[name]
    t = Translator(device="cpu", plan="onnxruntime")
    assert isinstance(t.prepare(model).runner, ONNXRuntimeRunner)
    x = inputs()["240x320 batch 2"]
    x = pad_to_multiple(x, size_multiple(model.config))
    err = float((t.forward(model, x) - Translator(device="cpu", plan="eager").forward(model, x))
                .abs().max())  # fmt: skip
    assert err < TOL
    images = [random_image(100, 60, seed=1)]
    ours = np.asarray(t.translate(model, images)[0], dtype=int)
    ref = np.asarray(Translator(device="cpu", plan="eager").translate(model, images)[0], int)
    assert np.abs(ours - ref).max() <= 1  # 8 bits: at most one level off


def test_onnxruntime_plan_is_chosen_and_cached(monkeypatch, caplog):
    monkeypatch.setenv("IMG2IMG_PLAN", "onnxruntime")
    assert execution.auto_plan(torch.device("cpu")).name == "onnxruntime"
    model = tiny_generators()["resnet"]
    Translator(device="cpu").prepare(model)
    [manifest] = list(ort_cache.root().glob("*.json"))
    graph = manifest.with_suffix(".onnx")
    first = graph.stat().st_mtime_ns
    assert isinstance(Translator(device="cpu").prepare(model).runner, ONNXRuntimeRunner)
    assert graph.stat().st_mtime_ns == first  # read back, not exported again
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte: found, exported again, one line
    graph.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        prepared = Translator(device="cpu").prepare(model)
    assert isinstance(prepared.runner, ONNXRuntimeRunner)
    assert "is damaged (SHA-256 mismatch)" in caplog.text
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    y = Translator(device="cpu").forward(model, x)
    assert float((y - Translator(device="cpu", plan="eager").forward(model, x)).abs().max()) < TOL
