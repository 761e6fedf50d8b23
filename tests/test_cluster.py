"""The Ray Data recipe (img2img/cluster.py): a local Ray with two workers writes the PNGs one
`img2img translate` process writes (same names, same bytes), skipping what is not an image;
without Ray the error says how to install it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers.env import clean_env
from helpers.images import random_image
from helpers.paths import FIXTURES, ROOT

from img2img import cluster, errors

CHECKPOINT = str(FIXTURES / "junyanz_resnet9_instance_ngf8.pth")
# One thread per worker, the plan pinned (the default differs between CPU kinds).
ENV = {"OMP_NUM_THREADS": "1", "IMG2IMG_PLAN": "eager", "RAY_DISABLE_USAGE_STATS": "1"}


def run(module: str, args: list[str], cwd) -> subprocess.CompletedProcess:
    env = clean_env(PYTHONPATH=str(ROOT), **ENV)
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_two_ray_workers_write_what_one_translate_process_writes(tmp_path):
    pytest.importorskip("ray.data", reason="Ray Data is an optional extra: pip install ray[data]")
    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(8):  # three sizes: the workers' batches mix shapes, as translate's chunks do
        random_image(40 + 4 * (i % 3), 32, seed=i).save(pics / f"p{i}.png")
    (pics / "broken.png").write_bytes(b"not a picture")
    common = ["pics", "--checkpoint", CHECKPOINT, "--size", "32"]
    one = run("img2img", ["translate", *common, "-o", "one"], tmp_path)
    assert one.returncode == 1, one.stderr[-3000:]  # broken.png skipped
    ray = run("img2img.cluster", [*common, "-o", "ray", "--workers", "2", "--batch-size", "2"],
              tmp_path)  # fmt: skip
    if ray.returncode not in (0, 1) and "Failed to start" in ray.stderr:
        pytest.skip(f"Ray cannot start on this machine: {ray.stderr[-500:]}")
    assert ray.returncode == 1, ray.stderr[-3000:]
    assert "8 of 9 images written to ray; 1 skipped: 1 unreadable" in ray.stderr
    assert "skipped pics/broken.png" in ray.stderr
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == [f"p{i}.png" for i in range(8)]
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == names
    for name in names:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    again = run("img2img.cluster", [*common, "-o", "ray"], tmp_path)
    assert again.returncode == 1 and "8 already written" in again.stderr  # nothing started


def test_without_ray_the_error_says_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(errors.MissingDependencyError, match=r'pip install "ray\[data\]"'):
        cluster.require_ray()


def test_bad_options_and_no_inputs_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cluster.main([str(tmp_path), "-o", "o", "--checkpoint", CHECKPOINT, "--workers", "0"])
    assert stop.value.code == 2 and "--workers" in capsys.readouterr().err
    assert cluster.main([str(tmp_path), "-o", str(tmp_path / "o"), "--checkpoint", "x"]) == 2
    assert "no inputs" in capsys.readouterr().err
