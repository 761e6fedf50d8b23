"""train.py distill and the mobile_resnet student family: the student loads, is detected and
is small; a distill run exports a student that translates photos and clips through the CLI
and loads as your own model, resumes exactly, and refuses a teacher it cannot load in one
line."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.images import random_image
from helpers.paths import ROOT
from helpers.train_proc import same_training_state
from helpers.videos import make_clip
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from img2img import load_generator
from img2img.checkpoints.hub import load_model
from img2img.checkpoints.release import save_pretrained
from img2img.checkpoints.weights import infer_config
from img2img.models import ARCHITECTURES, MobileResnetGenerator, build_generator
from img2img.models.resnet import ResnetGenerator
from img2img.models.unet import UNetGenerator
from img2img.training import distill, trainer
from img2img.training.config import resolve
from img2img.training.distributed import World

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TINY = ["--seed", "0", "--ngf", "8", "--ndf", "8", "--n-blocks", "2", "--crop-size", "32"]
TINY += ["--load-size", "48", "--batch-size", "2", "--workers", "0", "--save-every", "2"]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def train_cli():
    spec = importlib.util.spec_from_file_location("train_cli", ROOT / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def macs(net: torch.nn.Module, side: int = 64) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net.eval()(torch.zeros(1, 3, side, side))
    return counter.get_total_flops() / 2


# --- the student family ----------------------------------------------------------------------


def test_student_round_trips_our_format_and_a_bare_state_dict(tmp_path):
    torch.manual_seed(0)
    student = MobileResnetGenerator(ngf=8, n_blocks=3).eval()
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    save_pretrained(student, tmp_path / "ours")
    torch.save(student.state_dict(), tmp_path / "bare.pth")
    for source in (tmp_path / "ours", tmp_path / "bare.pth"):
        loaded = load_generator(source)
        assert loaded.config == student.config
        assert torch.equal(loaded(x), student(x))
    claims = [a.name for a in ARCHITECTURES.values() if a.matches(student.state_dict())]
    assert claims == ["mobile_resnet"]
    batch = MobileResnetGenerator(ngf=8, n_blocks=1, norm="batch")
    assert infer_config(batch.state_dict()) == batch.config


def test_default_student_costs_under_a_tenth_of_a_resnet9(tmp_path):
    """Multiply-adds scale with the pixels for both, so 64x64 gives the 256x256 ratio."""
    teacher = ResnetGenerator()  # the CycleGAN ResNet-9, ngf 64
    c = resolve("distill", {"data": "d", "out": "r", "teacher": str(tmp_path)}, None)
    assert (c.generator, c.ngf, c.n_blocks) == ("mobile_resnet", 16, 9)
    student = build_generator({"architecture": "mobile_resnet"})
    assert student.config["ngf"] == 16
    assert macs(student) < macs(teacher) / 10


# --- train.py distill ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    """(a tiny trained-looking teacher file, a folder of 12 generated photos)."""
    root = tmp_path_factory.mktemp("distill")
    torch.manual_seed(0)
    torch.save(ResnetGenerator(ngf=8, n_blocks=2).state_dict(), root / "teacher.pth")
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        gradient = np.linspace(0, 255, 56)[None, :, None] * np.ones((40 + i, 56, 3))
        noise = rng.normal(0, 30, gradient.shape)
        Image.fromarray(np.clip(gradient + noise, 0, 255).astype(np.uint8)).save(
            photos / f"p{i:02d}.png"
        )
    return root / "teacher.pth", photos


def run(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, **ONE_THREAD}
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def distill_cmd(teacher: Path, photos: Path, out: Path, *more: str) -> list[str]:
    return [str(ROOT / "train.py"), "distill", "--teacher", str(teacher), "--data", str(photos),
            "--out", str(out), *TINY, *more]  # fmt: skip


@pytest.mark.slow
def test_distill_exports_a_student_that_translates_and_resumes_exactly(setup, tmp_path):
    teacher, photos = setup
    straight, split = tmp_path / "straight", tmp_path / "split"
    run(distill_cmd(teacher, photos, straight, "--steps", "4", "--lambda-gan", "0.1"))
    run(distill_cmd(teacher, photos, split, "--steps", "2", "--lambda-gan", "0.1"))
    run([str(ROOT / "train.py"), "distill", "--out", str(split), "--resume", "--steps", "4"])
    weights = "weights/student/model.safetensors"
    assert (straight / weights).read_bytes() == (split / weights).read_bytes()
    same_training_state(straight, split)

    folder = straight / "weights" / "student"
    student = load_generator(folder)
    assert student.config["architecture"] == "mobile_resnet" and student.config["ngf"] == 8
    card = (folder / "README.md").read_text()
    assert f"distilled from the teacher `{teacher}`" in card
    assert "student against teacher on the held-out photos" in card and "dB" in card

    random_image(50, 40).save(tmp_path / "photo.png")
    run(["-m", "img2img", "translate", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out"),
         "--checkpoint", str(folder)])  # fmt: skip
    assert Image.open(tmp_path / "out" / "photo.png").size == (50, 40)
    make_clip(tmp_path / "clip.mp4", frames=6, audio=False)
    run(["-m", "img2img", "translate", str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "out"),
         "--checkpoint", str(folder)])  # fmt: skip
    assert (tmp_path / "out" / "clip.mp4").stat().st_size > 0


def test_a_distilled_student_is_your_own_model(setup, tmp_path, monkeypatch):
    """The app's "Your own model" reads <weights dir>/custom/<name>/ through load_model."""
    torch.manual_seed(1)
    save_pretrained(MobileResnetGenerator(ngf=8, n_blocks=1), tmp_path / "custom" / "student")
    monkeypatch.setenv("IMG2IMG_WEIGHTS_DIR", str(tmp_path))
    assert load_model("custom/student").config["architecture"] == "mobile_resnet"


@pytest.mark.slow
def test_a_student_in_weights_custom_translates_in_the_photo_and_live_tabs(fixtures, tmp_path):
    """Through the running app, as the page calls it: the Photo tab's translate and one Live
    frame (the stream event) with a mobile_resnet student kept as custom/student."""
    import io

    from helpers.app_server import (
        app_env,
        data_url_value,
        fn_index,
        free_port,
        queue_call,
        running_app,
        standard_layout,
    )

    standard_layout(tmp_path, fixtures)
    torch.manual_seed(1)
    folder = tmp_path / "weights" / "custom" / "student"
    save_pretrained(MobileResnetGenerator(ngf=8, n_blocks=1), folder)
    photo = io.BytesIO()
    random_image(40, 30).save(photo, format="PNG")
    image = data_url_value(photo.getvalue())
    with running_app(app_env(tmp_path, free_port())) as (url, _):
        data = [image, "custom/student", "fast", False, 0, False, None]
        result = queue_call(url, fn_index(url, "translate_ui"), data)
        assert result.success, result
        assert "px in" in result.output["data"][3].replace("\\", "")
        frame = queue_call(url, fn_index(url, "live_frame"), [image, "custom/student", None, None],
                           streaming=True)  # fmt: skip
        assert frame.success, frame
        shown, status = frame.output["data"][:2]
        assert shown["url"].startswith("data:image/jpeg;base64,"), shown
        assert "frames/s" in status and "student" in status, status


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_a_unet_teacher_distils_on_the_output_alone(tmp_path):
    """No residual blocks: no feature or perceptual term, one M with no convs; the GAN term."""
    teacher = UNetGenerator(ngf=8, num_downs=5)
    save_pretrained(teacher, tmp_path / "unet")
    given = {"data": "d", "out": "r", "teacher": str(tmp_path / "unet"), "ngf": 8, "n_blocks": 1}
    c = resolve("distill", {**given, "ndf": 8, "lambda_gan": 0.5}, None)
    t = trainer.build_trainer(c, World(), torch.device("cpu"), tmp_path)
    trainer.wrap_runners(t)
    assert len(t.nets["M"]) == 0 and t.fixed["T"].first_block is None
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    losses = t.recipe.step(t.runners, t.optimizers, t.pools, x, x, c, t.precision)
    assert set(losses) == {"L1", "G_GAN", "D"} and all(v.isfinite() for v in losses.values())


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_resnet_teacher_taps_three_depths_and_stays_frozen(setup, tmp_path):
    teacher, _ = setup
    c = resolve("distill", {"data": "d", "out": "r", "teacher": str(teacher), "ngf": 8}, None)
    t = trainer.build_trainer(c, World(), torch.device("cpu"), tmp_path)
    trainer.wrap_runners(t)
    net = distill.load_teacher_module(str(teacher))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert len(t.nets["M"]) == 2  # the teacher has 2 blocks, the student 9
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    losses = t.recipe.step(t.runners, t.optimizers, t.pools, x, x, c, t.precision)
    assert set(losses) == {"L1", "feat", "perc"}
    assert not list(t.fixed["T"].parameters()) and not t.fixed["T"].state_dict()
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_bad_teachers_are_one_line_errors(setup, tmp_path, capsys, train_cli):
    _, photos = setup
    (tmp_path / "notes.txt").write_text("not a generator")
    for teacher, expect in (
        (None, "distill needs --teacher"),
        (str(tmp_path / "missing.pth"), "missing.pth"),
        (str(tmp_path / "notes.txt"), "notes.txt"),
    ):
        out = tmp_path / "run"
        argv = ["distill", "--data", str(photos), "--out", str(out), *TINY]
        argv += ["--teacher", teacher] if teacher else []
        assert train_cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and expect in err, err
        assert not (out / "checkpoints").exists()
        shutil.rmtree(out, ignore_errors=True)
