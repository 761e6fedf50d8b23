"""The openvino-int8 plan (img2img/plans/int8.py): quantize caches an int8 model whose inner
convolutions only are int8; the plan runs it within its tolerance of eager fp32; a model never
quantized runs the openvino plan; auto_plan never picks it."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.models import tiny_generators

from img2img import Translator
from img2img.errors import ConfigError
from img2img.plans import execution, int8
from img2img.plans.openvino import cache as openvino_cache
from img2img.plans.openvino import runner as openvino_runner

pytest.importorskip("openvino")
pytest.importorskip("nncf")
pytestmark = pytest.mark.usefixtures("one_thread")

TOLERANCE_DB = 38.0  # float PSNR vs eager fp32, tiny random ResNet: 43-46 dB measured (bf16 hint)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IMG2IMG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("IMG2IMG_OPENVINO_CACHE", raising=False)


def photos(n: int, seed: int) -> list[torch.Tensor]:
    """Smooth random pictures (upsampled noise), (1, 3, 64, 64) in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    small = [torch.rand(1, 3, 8, 8, generator=g) * 2 - 1 for _ in range(n)]
    return [torch.nn.functional.interpolate(s, size=64, mode="bicubic").clamp(-1, 1) for s in small]


def psnr(y: torch.Tensor, ref: torch.Tensor) -> float:
    mse = float(((y - ref) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(4.0 / mse)


def test_quantized_plan_runs_within_its_tolerance():
    model = tiny_generators()["resnet"]
    entry = int8.quantize(model, photos(6, seed=0))
    ov = openvino_runner.load_openvino()
    cached = openvino_cache.load(ov, entry)
    fed = {}  # op type -> how many FakeQuantize feed it
    for op in cached.get_ordered_ops():
        if op.get_type_name() == "FakeQuantize":
            for t in op.output(0).get_target_inputs():
                kind = t.get_node().get_type_name()
                fed[kind] = fed.get(kind, 0) + 1
    assert fed and set(fed) <= {"Convolution", "Pad"}  # norms, adds, ConvTranspose float
    t = Translator(device="cpu", plan="openvino-int8")
    runner = t.prepare(model).runner
    assert isinstance(runner, openvino_runner.OpenVINORunner)
    x = torch.cat(photos(2, seed=1))  # held out: not the calibration pictures
    with torch.no_grad():
        ref = model(x)
    y = t.forward(model, x)
    assert y.shape == ref.shape and psnr(y, ref) >= TOLERANCE_DB


def test_a_model_never_quantized_runs_the_openvino_plan(caplog):
    model = tiny_generators()["resnet"]
    x = torch.cat(photos(1, seed=2))
    with caplog.at_level("WARNING"):
        y = Translator(device="cpu", plan="openvino-int8").forward(model, x)
    assert "no int8 model for these weights" in caplog.text
    z = Translator(device="cpu", plan="openvino").forward(model, x)
    assert torch.allclose(y, z, atol=1e-5)


def test_quantize_needs_images_and_auto_never_picks_int8():
    with pytest.raises(ConfigError, match="calibration images"):
        int8.quantize(tiny_generators()["resnet"], [])
    assert execution.auto_plan(torch.device("cpu")).name != "openvino-int8"


def test_quantize_command_calibrates_on_a_folder_and_reports_the_held_out_psnr(tmp_path, capsys):
    """`img2img quantize REF --photos DIR`: one line per unreadable photo, the cache entry on
    stdout, the held-out PSNR on stderr; the plan then runs the int8 model (no warning)."""
    from helpers.images import random_image

    from img2img import cli
    from img2img.checkpoints.release import save_pretrained

    model = tiny_generators()["resnet"]
    save_pretrained(model, tmp_path / "mine")
    photos_dir = tmp_path / "photos"
    photos_dir.mkdir()
    for i in range(6):
        random_image(48, 40, seed=i).save(photos_dir / f"p{i}.png")
    (photos_dir / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    args = ["quantize", str(tmp_path / "mine"), "--photos", str(photos_dir), "--size", "64"]
    assert cli.main(args) == 0
    out, err = capsys.readouterr()
    assert "skipped" in err and "broken.jpg" in err
    assert "calibrated on 5 photos at 64 px; on 1 held-out photos" in err
    held_db = float(err.split("plan is ")[1].split(" dB")[0])
    assert held_db >= TOLERANCE_DB
    assert openvino_cache.load(openvino_runner.load_openvino(), out.strip()) is not None
    assert cli.main(["quantize", str(tmp_path / "mine"), "--photos", str(tmp_path / "no")]) == 2
    assert "no such folder" in capsys.readouterr().err
