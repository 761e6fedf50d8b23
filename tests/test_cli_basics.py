"""What a newcomer meets first in the CLI, run as a subprocess: --version, the examples in
`translate --help`, a missing input, the two words of the summary (skipped = not attempted,
failed = attempted and errored) and `evaluate` with FID / LPIPS on a machine without network."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys

import pytest
import torch
from helpers.env import clean_env
from helpers.images import random_image
from helpers.paths import ROOT

from img2img import __version__, save_pretrained
from img2img.cli import TRANSLATE_EPILOG, build_parser
from img2img.eval import perceptual
from img2img.models import ResnetGenerator


def img2img(*args: str, cwd=ROOT, **env: str) -> subprocess.CompletedProcess:
    """`python -m img2img ARGS` in `cwd`, the checkout importable (installed or not)."""
    env.setdefault("PYTHONPATH", str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "img2img", *args],
        cwd=cwd,
        env=clean_env(OMP_NUM_THREADS="1", **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tiny(tmp_path):
    torch.manual_seed(0)
    save_pretrained(ResnetGenerator(ngf=8, n_blocks=2), tmp_path / "G")
    return tmp_path / "G"


def test_version_is_the_distributions():
    done = img2img("--version")
    pyproject = (ROOT / "pyproject.toml").read_text()
    [version] = re.findall(r'^version = "([^"]+)"$', pyproject, flags=re.M)
    assert done.returncode == 0 and done.stdout.split()[:2] == ["img2img-gan", version]
    assert __version__ == version


def test_translate_help_shows_examples_that_parse():
    done = img2img("translate", "--help")
    assert done.returncode == 0 and "examples:" in done.stdout
    examples = [line.split() for line in TRANSLATE_EPILOG.splitlines() if "img2img " in line]
    assert 3 <= len(examples) <= 5
    for words in examples:
        assert words[0] == "img2img" and " ".join(words) in done.stdout
        assert shlex.split(" ".join(words)) == words
        build_parser().parse_args(words[1:])  # every example is a valid command line
    for word in ("skipped:", "failed:", "exit status:"):
        assert word in done.stdout


def test_a_single_missing_input_is_no_inputs_exit_2(tmp_path, tiny):
    done = img2img("translate", "does-not-exist.jpg", "-o", "out", "--checkpoint", str(tiny),
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: no inputs: does-not-exist.jpg: no such file or folder"
    assert not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()
    done = img2img("translate", "empty", "-o", "out", "--checkpoint", str(tiny), cwd=tmp_path)
    assert done.returncode == 2 and "no inputs: no image or clip files in empty" in done.stderr


@pytest.mark.slow
def test_skipped_is_not_attempted_failed_is_attempted(tmp_path, tiny):
    random_image(40, 30).save(tmp_path / "good.png")
    random_image(40, 30).save(tmp_path / "kept.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "out").mkdir()
    random_image(8, 8).save(tmp_path / "out" / "kept.png")  # done already
    (tmp_path / "out" / "blocked.png").mkdir()  # a folder in the way: attempted, fails
    random_image(40, 30).save(tmp_path / "blocked.png")
    names = ["good.png", "kept.png", "broken.jpg", "missing.png", "blocked.png"]
    done = img2img("translate", *names, "-o", "out", "--checkpoint", str(tiny), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = [line.strip() for line in done.stderr.replace("\r", "\n").splitlines()]
    for name in ("kept.png", "broken.jpg", "missing.png"):
        assert any(line.startswith(f"skipped {name}: ") for line in lines), done.stderr
    assert any(line.startswith("failed blocked.png: cannot write") for line in lines)
    assert lines[-1] == (
        "1 of 5 images written to out; 3 skipped: 1 missing, 1 unreadable, "
        "1 already written (--overwrite replaces them); 1 failed"
    )


def _refusing_url() -> str:
    """A loopback port nobody listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/weights.pth"


@pytest.mark.slow
@pytest.mark.parametrize(("metric", "weights"), [("fid", "INCEPTION"), ("lpips", "ALEXNET")])
def test_evaluate_without_network_fails_at_once_with_what_to_do(tmp_path, tiny, metric, weights):
    data = tmp_path / "data"  # lpips: a paired test/ of A|B; fid: unpaired testA/ + testB/
    sides = {"test": (64, 32)} if metric == "lpips" else {"testA": (32, 32), "testB": (32, 32)}
    for side, size in sides.items():
        (data / side).mkdir(parents=True)
        for i in range(2):
            random_image(*size, seed=i + len(side)).save(data / side / f"{i}.png")
    url = _refusing_url()
    env = {"IMG2IMG_CACHE": str(tmp_path / "cache"), f"IMG2IMG_{weights}_URL": url}
    args = ["evaluate", "--checkpoint", str(tiny), "--data", str(data), "--metrics", metric]
    done = img2img(*args, "--device", "cpu", **env)
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip()
    assert message.count("\n") == 0 and "cannot be reached" in message, message
    filename = getattr(perceptual, weights).filename
    cache = tmp_path / "cache" / "metrics"
    assert f"{url} elsewhere and put it in {cache}/" in message
    assert filename in message and "HF_HUB_OFFLINE=1" in message
    assert "--metrics l1,psnr,ssim" in message
    assert not cache.joinpath(filename + ".part").exists()
    offline = img2img(*args, "--device", "cpu", HF_HUB_OFFLINE="1", **env)
    assert offline.returncode == 2 and "HF_HUB_OFFLINE is set" in offline.stderr
