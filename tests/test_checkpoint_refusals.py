"""Checkpoints that parse but must not load: one that would take far more memory than its
size on disk (a compressed zip, an archive inside one, a file over the cap), and one whose
weights hold NaN or Inf (a black image). Each is refused before harm, naming the file and
what is wrong, in the library, the CLI and the app's "Your own model"."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest
import torch
from helpers.checkpoints import repacked, with_nan, zero_bomb, zip_bomb_bytes
from helpers.images import random_image
from helpers.models import tiny_generators
from helpers.paths import ROOT
from safetensors.torch import save_file

from img2img import CheckpointError, load_generator
from img2img.checkpoints.limits import check_size

PEAK = """
import json, resource, sys
from img2img import Img2ImgError, load_generator
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # bytes (Linux: kB)
before = rss()
try:
    load_generator(sys.argv[1])
    error = None
except Img2ImgError as e:
    error = str(e)
print(json.dumps({"grew": rss() - before, "error": error}))
"""


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=env,
    )  # fmt: skip


def test_a_compressed_torch_zip_is_refused_before_it_is_inflated(tmp_path):
    """200 MB of zeros in a 0.2 MB file: it used to be inflated (peak RSS +194 MB) before
    the loader looked at its tensors."""
    bomb = zero_bomb(tmp_path / "bomb.pth", mbytes=200)
    assert bomb.stat().st_size < 2 * 10**6
    proc = _run("-c", PEAK, str(bomb))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["grew"] < 30 * 10**6, out  # 200 MB inflated would be 200 MB more
    assert "bomb.pth" in out["error"] and "compressed" in out["error"], out
    assert "200.0 MB" in out["error"] and "re-save it" in out["error"], out


def test_a_compressed_copy_of_an_honest_checkpoint_is_refused(tmp_path):
    torch.save(tiny_generators()["unet"].state_dict(), tmp_path / "g.pth")
    assert load_generator(tmp_path / "g.pth").config["architecture"] == "unet"
    repacked(tmp_path / "g.pth", tmp_path / "zipped.pth")
    with pytest.raises(CheckpointError, match=r"zipped\.pth: \d+ of its \d+ members are compr"):
        load_generator(tmp_path / "zipped.pth")


def _tar_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 1000
        tar.addfile(info, io.BytesIO(bytes(1000)))
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_an_archive_inside_a_checkpoint_is_refused(tmp_path, kind):
    """Stored, so the outer zip is honest about its sizes; torch would never open it."""
    torch.save(tiny_generators()["resnet"].state_dict(), tmp_path / "g.pth")
    inner = zip_bomb_bytes(50) if kind == "zip" else _tar_bytes()
    nested = repacked(tmp_path / "g.pth", tmp_path / "nested.pth", zipfile.ZIP_STORED,
                      extra={"data/999": inner})  # fmt: skip
    with pytest.raises(CheckpointError, match=r"nested\.pth: its member .*data/999 is itself"):
        load_generator(nested)


def _saved(tmp_path, fmt: str):
    state = tiny_generators()["unet"].state_dict()
    path = tmp_path / f"g.{fmt}"
    if fmt == "safetensors":
        save_file(state, path)
    else:
        torch.save(state, path, _use_new_zipfile_serialization=fmt == "pth")
    return path, sum(v.numel() * v.element_size() for v in state.values())


@pytest.mark.parametrize("fmt", ["pth", "legacy", "safetensors"])
def test_the_cap_is_on_what_the_file_takes_in_memory(tmp_path, fmt):
    path, tensor_bytes = _saved(tmp_path, fmt)
    size = check_size(path)
    assert tensor_bytes <= size <= path.stat().st_size
    assert load_generator(path, max_bytes=size).config["architecture"] == "unet"
    with pytest.raises(CheckpointError, match=rf"g\.{fmt} would take .* over the limit of"):
        load_generator(path, max_bytes=size - 1)


def test_a_safetensors_header_declaring_more_than_the_file_holds(tmp_path):
    path, _ = _saved(tmp_path, "safetensors")
    path.write_bytes(path.read_bytes()[:-64])
    with pytest.raises(CheckpointError, match=r"g\.safetensors: its header declares"):
        load_generator(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, value):
    bad = with_nan(tmp_path / "nan.pth", value=value)
    key = next(k for k, v in torch.load(bad).items() if not torch.isfinite(v).all())
    with pytest.raises(CheckpointError, match=rf"nan\.pth holds NaN or Inf .*{key}"):
        load_generator(bad)


def test_integer_buffers_and_finite_weights_still_load(tmp_path):
    """BatchNorm's num_batches_tracked (int64) is not a weight; a BatchNorm U-Net loads."""
    state = tiny_generators()["unet"].state_dict()
    assert any(not v.is_floating_point() for v in state.values())
    torch.save(state, tmp_path / "g.pth")
    assert load_generator(tmp_path / "g.pth").config["architecture"] == "unet"


def test_the_cli_refuses_non_finite_weights_in_one_line(tmp_path):
    bad = with_nan(tmp_path / "nan.pth")
    random_image(16, 16).save(tmp_path / "x.png")
    proc = _run("-m", "img2img", "translate", str(tmp_path / "x.png"), "-o",
                str(tmp_path / "o"), "--checkpoint", str(bad))  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "nan.pth holds NaN or Inf weights" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "o" / "x.png").exists()


OWN_MODEL = """
import json, sys
from webui import own_model
statuses = [own_model.load_custom(None, path, progress=lambda *a, **k: None)[0]
            for path in sys.argv[1:]]
print(json.dumps(statuses))
"""


@pytest.mark.slow
def test_your_own_model_shows_both_refusals(tmp_path):
    """The app's cap (IMG2IMG_MAX_CHECKPOINT_MB) applies to the decompressed size too."""
    bomb = zero_bomb(tmp_path / "bomb.pth", mbytes=30)
    nan = with_nan(tmp_path / "nan.pth")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "IMG2IMG_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), IMG2IMG_PLAN="eager",
               IMG2IMG_MAX_CHECKPOINT_MB="20", GRADIO_ANALYTICS_ENABLED="False")  # fmt: skip
    proc = _run("-c", OWN_MODEL, str(bomb), str(nan), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    too_big, non_finite = json.loads(proc.stdout.splitlines()[-1])
    assert "30.0 MB" in too_big and "20.0 MB" in too_big, too_big
    assert "(IMG2IMG_MAX_CHECKPOINT_MB); refused before" in too_big, too_big
    key = next(k for k, v in torch.load(nan).items() if not torch.isfinite(v).all())
    assert "NaN or Inf" in non_finite and key in non_finite, non_finite


def test_a_stored_member_whose_sizes_disagree_is_refused(tmp_path):
    """The central directory says a stored member inflates: a forged directory."""
    torch.save(tiny_generators()["resnet"].state_dict(), tmp_path / "g.pth")
    data = bytearray(repacked(tmp_path / "g.pth", tmp_path / "s.pth", zipfile.ZIP_STORED)
                     .read_bytes())  # fmt: skip
    entry = data.rindex(b"PK\x01\x02")  # the last member's central directory entry
    size = int.from_bytes(data[entry + 24 : entry + 28], "little")  # its uncompressed size
    data[entry + 24 : entry + 28] = (size + 10**6).to_bytes(4, "little")
    (tmp_path / "forged.pth").write_bytes(data)
    with pytest.raises(CheckpointError, match=r"forged\.pth: its member .* declares \d+ bytes"):
        load_generator(tmp_path / "forged.pth")
