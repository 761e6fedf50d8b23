"""Your own model from a Hub repo (issue 11): hub.fetch_repo / load_repo against the loopback
fake Hub. Our format and HugGAN-style files load through the same strict loader; no weights
file, a file over the size cap, a bad id and no network are each a precise error, the cap
before any byte is downloaded. Each scenario is a fresh process (huggingface_hub reads
HF_ENDPOINT when it is imported)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers.blackhole import blackhole
from helpers.env import clean_env
from helpers.models import tiny_generators
from helpers.paths import ROOT
from helpers.servers import FakeHub, serving

from img2img import save_pretrained

SCRIPT = """
import json, sys
from img2img.checkpoints import hub
from img2img.errors import Img2ImgError
repo, cap = sys.argv[1], int(sys.argv[2]) or None
try:
    path = hub.fetch_repo(repo, cap)
    print(json.dumps({"path": str(path), "config": hub.load_repo(repo, cap).config}))
except Img2ImgError as e:
    print(json.dumps({"error": str(e), "type": type(e).__name__}))
"""


def fetch(repo: str, env: dict[str, str], cap: int = 0) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, repo, str(cap)], cwd=ROOT, env=clean_env(**env),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def ours(tmp_path) -> dict[tuple[str, str], bytes]:
    """A repo in our format (config.json + model.safetensors) and a HugGAN-style one."""
    model = tiny_generators()["unet"]
    save_pretrained(model, tmp_path / "release")
    names = ("config.json", "model.safetensors")
    return {("me/ours", n): (tmp_path / "release" / n).read_bytes() for n in names}


@pytest.mark.slow
def test_repos_in_our_format_and_huggan_style_load(ours, fixtures, tmp_path):
    files = dict(ours)
    files[("me/huggan", "pytorch_model.bin")] = (
        fixtures / "huggan_unet_div8.pytorch_model.bin"
    ).read_bytes()
    with serving(FakeHub(files)) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf")}
        mine = fetch("me/ours", env)
        assert mine["config"]["architecture"] == "unet" and mine["config"]["ngf"] == 8
        assert mine["path"].endswith("model.safetensors")
        theirs = fetch("me/huggan@main", env)
        assert theirs["path"].endswith("pytorch_model.bin")
        assert theirs["config"]["architecture"].startswith("huggan")


@pytest.mark.slow
def test_precise_errors_and_the_cap_comes_before_the_download(ours, tmp_path):
    with serving(FakeHub(dict(ours))) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf")}
        assert "has no model.safetensors or pytorch_model.bin" in fetch("me/empty", env)["error"]
        assert "not a Hub repo id" in fetch("not a repo!", env)["error"]
        size = len(ours[("me/ours", "model.safetensors")])
        capped = fetch("me/ours", env, cap=size - 1)
        assert capped["type"] == "CheckpointError" and "over the limit" in capped["error"]
        assert not [p for _, p, _ in hub.gets() if p.endswith("model.safetensors")]


@pytest.mark.slow
def test_no_network_fails_fast_and_a_cached_repo_still_loads(ours, tmp_path):
    """The Hub unreachable (a port that never answers): a repo never fetched fails in seconds
    with what to do; one fetched before loads from the cache."""
    env = {"HF_HOME": str(tmp_path / "hf")}
    with serving(FakeHub(dict(ours))) as hub:
        assert "config" in fetch("me/ours", {**env, "HF_ENDPOINT": hub.url})
    with blackhole() as dead:
        answer = fetch("me/other", {**env, "HF_ENDPOINT": dead})  # one probe, no HTTP retries
        assert answer["type"] == "WeightsUnavailableError" and "no network" in answer["error"]
        assert "upload the checkpoint file instead" in answer["error"]
        assert "config" in fetch("me/ours", {**env, "HF_ENDPOINT": dead})
