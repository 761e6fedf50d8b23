"""Offline first use: no weights and no network fail in seconds with advice; which models
are ready is known without downloading; typos get suggestions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers.blackhole import blackhole
from helpers.catalog import HUGGAN, RESNET, hub_file, mirror_path
from helpers.env import clean_env
from helpers.paths import ROOT
from helpers.servers import FakeHub, FileServer, serving

from img2img import UnknownModelError
from img2img.checkpoints.catalog import get_entry

SCRIPT = """
import json, sys, time
from img2img.checkpoints import hub
from img2img.errors import Img2ImgError
out = []
for model_id in sys.argv[1:]:
    start = time.perf_counter()
    try:
        hub.load_model(model_id, progress=False)
        out.append({"id": model_id, "ok": True})
    except Img2ImgError as e:
        out.append({"id": model_id, "error": str(e), "type": type(e).__name__})
    out[-1]["seconds"] = time.perf_counter() - start
print(json.dumps(out))
"""


def run(env: dict[str, str], *ids: str) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *ids], cwd=ROOT, env=clean_env(**env),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_no_weights_and_no_network_fails_fast_with_advice(tmp_path):
    """Was: 23.5 s per request for a Hub model (client timeouts and retries), every time.
    The Hub and the Berkeley mirror here are a port that never answers."""
    with blackhole() as dead:
        env = {
            "HF_HOME": str(tmp_path / "hf"),
            "IMG2IMG_WEIGHTS_DIR": str(tmp_path / "weights"),
            "HF_ENDPOINT": dead,
            "IMG2IMG_URL_MIRROR": dead,
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        first_hub, first_url, again_hub, again_url = run(env, HUGGAN.id, RESNET.id) * 1 + run(
            env, HUGGAN.id, RESNET.id
        )
    for answer in (first_hub, first_url, again_hub, again_url):
        assert answer["type"] == "WeightsUnavailableError"
        assert answer["seconds"] < 6, answer
        assert answer["id"] in answer["error"] and "What you can do" in answer["error"]
        assert "no network" in answer["error"] and "cannot be reached" in answer["error"]
        assert "put a checkpoint file in" in answer["error"]


@pytest.mark.slow
def test_unreachable_network_uses_the_cache_at_once(fixtures, tmp_path):
    """Weights cached on an earlier, online run load without waiting for the dead network."""
    hub_data = (fixtures / "huggan_unet_div8.pytorch_model.bin").read_bytes()
    url_data = (fixtures / "junyanz_resnet9_instance_ngf8.pth").read_bytes()
    env = {
        "HF_HOME": str(tmp_path / "hf"),
        "IMG2IMG_WEIGHTS_DIR": str(tmp_path / "weights"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    with (
        serving(FakeHub({hub_file(HUGGAN): hub_data})) as hub,
        serving(FileServer({mirror_path(RESNET): url_data})) as berkeley,
    ):
        online = {**env, "HF_ENDPOINT": hub.url, "IMG2IMG_URL_MIRROR": berkeley.url}
        assert all(a.get("ok") for a in run(online, HUGGAN.id, RESNET.id))
    with blackhole() as dead:
        offline = {**env, "HF_ENDPOINT": dead, "IMG2IMG_URL_MIRROR": dead}
        answers = run(offline, HUGGAN.id, RESNET.id)
    for answer in answers:
        assert answer.get("ok"), answer
        assert answer["seconds"] < 6, answer


def test_availability_says_where_weights_would_come_from(fixtures, tmp_path, monkeypatch):
    from img2img import save_pretrained
    from img2img.checkpoints import hub
    from img2img.checkpoints.catalog import load_catalog
    from img2img.checkpoints.weights import load_generator

    monkeypatch.setenv("IMG2IMG_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("IMG2IMG_CACHE", str(tmp_path / "cache"))
    states = {e.id: hub.availability(e).state for e in load_catalog().values()}
    assert set(states.values()) <= {"download", "unpublished"}
    assert all((s == "unpublished") == load_catalog()[i].project for i, s in states.items())
    model = load_generator(fixtures / "junyanz_resnet9_instance_ngf8.pth")
    save_pretrained(model, tmp_path / "weights" / RESNET.id)
    local = hub.availability(RESNET)
    assert local.state == "local" and local.ready
    reverse = get_entry(RESNET.reverse)
    data = (fixtures / "junyanz_resnet9_instance_ngf8.pth").read_bytes()
    with serving(FileServer({mirror_path(reverse): data})) as berkeley:
        monkeypatch.setenv("IMG2IMG_URL_MIRROR", berkeley.url)
        assert hub.availability(reverse).state == "download"
        hub.resolve(reverse.id, progress=False)
        assert hub.availability(reverse).state == "cached"


def test_a_typo_gets_suggestions():
    with pytest.raises(UnknownModelError, match=f"did you mean {RESNET.id}"):
        get_entry(RESNET.id[:-1])
    with pytest.raises(UnknownModelError, match=f"did you mean {RESNET.id}"):
        get_entry(RESNET.id.split("/")[1])  # the name without its family
