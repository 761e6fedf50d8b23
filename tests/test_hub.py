"""Catalog resolution for real: a fake Hub (HF_ENDPOINT) and a fake Berkeley server on loopback.

huggingface_hub reads HF_ENDPOINT / HF_HOME / HF_HUB_OFFLINE when it is imported, so each
scenario runs in a fresh Python process with its environment, as a user's would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, tiny_generators
from servers import FakeHub, FileServer, serving

from img2img import save_pretrained
from img2img.catalog import get_entry, is_available, load_catalog, remote_sources

SCRIPT = """
import json, sys
from img2img import hub
from img2img.errors import Img2ImgError
try:
    path = hub.resolve(sys.argv[1], progress=False)
    model = hub.load_model(sys.argv[1], progress=False)
    print(json.dumps({"path": str(path), "config": model.config}))
except Img2ImgError as e:
    print(json.dumps({"error": str(e), "type": type(e).__name__}))
"""


def run_python(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """`python ARGS` in a fresh process whose HF_* / IMG2IMG_* environment is exactly `env`."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "IMG2IMG_"))}
    full.update(env)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=120
    )


def run_resolve(model_id: str, env: dict[str, str]) -> dict:
    proc = run_python(["-c", SCRIPT, model_id], env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def env(tmp_path):
    """A clean user environment whose Hub and Berkeley server are empty loopback fakes."""
    (tmp_path / "weights").mkdir()
    with serving(FakeHub()) as hub, serving(FileServer({})) as berkeley:
        yield {
            "HF_HOME": str(tmp_path / "hf"),
            "IMG2IMG_WEIGHTS_DIR": str(tmp_path / "weights"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_ENDPOINT": hub.url,
            "IMG2IMG_URL_MIRROR": berkeley.url,
        }


def test_catalog_is_complete_and_consistent():
    catalog = load_catalog()
    junyanz_cyclegan = [
        e
        for e in catalog.values()
        if "/cyclegan/pretrained_models/" in (e.sources[0].url if e.sources else "")
    ]
    assert len(junyanz_cyclegan) == 18
    pix2pix_urls = {
        Path(e.sources[0].url).stem
        for e in catalog.values()
        if e.sources and "/pix2pix/models-pytorch/" in e.sources[0].url
    }
    assert pix2pix_urls == {"edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night"}
    huggan = {e.sources[0].repo_id for e in catalog.values() if e.format == "huggan"}
    assert huggan == {
        "huggan/pix2pix-night2day",
        "huggan/pix2pix-maps",
        "huggan/pix2pix-edge2shoes",
        "huggan/sim2real_cyclegan",
        "Chris1/real2sim-512",
    }
    for entry in catalog.values():
        assert entry.label and entry.expects and entry.dataset and entry.license_id
        assert entry.train.startswith("python train.py ")
        assert entry.project or entry.sources
        if entry.reverse:
            assert get_entry(entry.reverse).reverse == entry.id  # pairs point at each other
    assert get_entry("cyclegan/horse2zebra").reverse == "cyclegan/zebra2horse"


def test_availability_and_source_order(tmp_path, monkeypatch):
    """The app labels a model "not yet published" exactly when resolution has nowhere to
    look; the deployer's repo comes before the catalog's sources."""
    for key in [k for k in os.environ if k.startswith("IMG2IMG_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("IMG2IMG_WEIGHTS_DIR", str(tmp_path))
    project, classic = get_entry("img2img/night2day"), get_entry("cyclegan/horse2zebra")
    assert not is_available(project) and remote_sources(project) == []
    assert is_available(classic) and remote_sources(classic) == list(classic.sources)
    (tmp_path / "img2img" / "night2day").mkdir(parents=True)  # a local folder counts
    assert is_available(project)
    (tmp_path / "img2img" / "night2day").rmdir()
    monkeypatch.setenv("IMG2IMG_HUB_NAMESPACE", "me")
    assert is_available(project)
    assert remote_sources(project)[0].repo_id == "me/img2img-img2img-night2day"
    assert remote_sources(classic)[0].repo_id == "me/img2img-cyclegan-horse2zebra"
    assert remote_sources(classic)[1:] == list(classic.sources)


def test_hub_source_huggan_format(fixtures, env):
    data = (fixtures / "huggan_unet_div8.pytorch_model.bin").read_bytes()
    with serving(FakeHub({("huggan/pix2pix-night2day", "pytorch_model.bin"): data})) as hub:
        env["HF_ENDPOINT"] = hub.url
        out = run_resolve("pix2pix/night2day", env)
        paths = [p for method, p, _ in hub.log]
    assert out["config"]["architecture"] == "huggan_unet"
    assert out["path"].startswith(env["HF_HOME"])  # in the HF cache
    assert "/huggan/pix2pix-night2day/resolve/main/pytorch_model.bin" in paths
    # The Hub now unreachable (nothing listens on port 9): the cached file still serves.
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    assert run_resolve("pix2pix/night2day", env)["config"]["architecture"] == "huggan_unet"
    env["HF_HUB_OFFLINE"] = "1"
    assert run_resolve("pix2pix/night2day", env)["config"]["architecture"] == "huggan_unet"


def test_url_source_junyanz_format_with_mirror(fixtures, env):
    data = (fixtures / "junyanz_resnet9_instance_ngf8.legacy.pth").read_bytes()
    files = {"cyclegan/pretrained_models/horse2zebra.pth": data}
    with serving(FileServer(files)) as server:
        env["IMG2IMG_URL_MIRROR"] = server.url
        out = run_resolve("cyclegan/horse2zebra", env)
        assert len(server.gets()) == 1
        assert run_resolve("cyclegan/horse2zebra", env)["config"]["n_blocks"] == 9
        assert len(server.gets()) == 1  # second load: verified cache, no download
    assert out["config"]["architecture"] == "resnet"
    assert Path(out["path"] + ".sha256").is_file()
    cached = Path(out["path"])
    cached.write_bytes(cached.read_bytes()[:-10] + b"0123456789")  # corrupt the cache
    env["HF_HUB_OFFLINE"] = "1"
    out = run_resolve("cyclegan/horse2zebra", env)
    assert out["type"] == "WeightsUnavailableError"
    assert "not in the cache" in out["error"] and "unset HF_HUB_OFFLINE" in out["error"]


def test_local_weights_dir_wins(fixtures, env):
    target = Path(env["IMG2IMG_WEIGHTS_DIR"]) / "pix2pix" / "facades_label2photo"
    target.mkdir(parents=True)
    (target / "latest_net_G.pth").write_bytes(
        (fixtures / "junyanz_unet256_batch_ngf8.pth").read_bytes()
    )
    out = run_resolve("pix2pix/facades_label2photo", env)
    assert out["path"] == str(target) and out["config"]["norm"] == "batch"


def test_project_model_via_override_repo_in_our_format(tmp_path, env):
    model = tiny_generators()["resnet"]
    save_pretrained(model, tmp_path / "ours")
    files = {
        ("me/n2d", name): (tmp_path / "ours" / name).read_bytes()
        for name in ("config.json", "model.safetensors")
    }
    out = run_resolve("img2img/night2day", env)
    assert out["type"] == "WeightsUnavailableError"
    assert "IMG2IMG_REPO_IMG2IMG_NIGHT2DAY" in out["error"]
    with serving(FakeHub(files)) as hub:
        env.update(HF_ENDPOINT=hub.url, IMG2IMG_REPO_IMG2IMG_NIGHT2DAY="me/n2d@v1")
        out = run_resolve("img2img/night2day", env)
        assert any("/me/n2d/resolve/v1/config.json" in p for _, p, _ in hub.log)
    assert out["config"] == model.config
    # IMG2IMG_HUB_NAMESPACE covers every id with the mirror naming scheme
    files = {("org/img2img-cyclegan-horse2zebra", k[1]): v for k, v in files.items()}
    with serving(FakeHub(files)) as hub:
        env.pop("IMG2IMG_REPO_IMG2IMG_NIGHT2DAY")
        env.update(HF_ENDPOINT=hub.url, IMG2IMG_HUB_NAMESPACE="org")
        assert run_resolve("cyclegan/horse2zebra", env)["config"] == model.config


def test_every_source_failing_is_explained(env):
    out = run_resolve("pix2pix/sat2map-huggan", env)
    assert out["type"] == "WeightsUnavailableError"
    msg = out["error"]
    assert "local folder" in msg and "Hub huggan/pix2pix-maps/pytorch_model.bin@main" in msg
    assert "What you can do" in msg
    out = run_resolve("pix2pix/nope", env)
    assert out["type"] == "UnknownModelError" and "pix2pix/night2day" in out["error"]


def test_wrong_architecture_for_the_catalog_entry(fixtures, env):
    target = Path(env["IMG2IMG_WEIGHTS_DIR"]) / "cyclegan" / "horse2zebra"
    target.mkdir(parents=True)
    torch.save(tiny_generators()["unet"].state_dict(), target / "g.pth")
    out = run_resolve("cyclegan/horse2zebra", env)
    assert out["type"] == "CheckpointError" and "'resnet'" in out["error"]


def test_tokens_never_in_errors(env):
    env["HF_TOKEN"] = "hf_SECRETSECRETSECRET"
    out = run_resolve("pix2pix/night2day", env)
    assert "SECRET" not in json.dumps(out)


def test_cli_accepts_catalog_ids(fixtures, env, tmp_path):
    target = Path(env["IMG2IMG_WEIGHTS_DIR"]) / "cyclegan" / "style_monet"
    target.mkdir(parents=True)
    (target / "m.pth").write_bytes((fixtures / "junyanz_resnet9_instance_ngf8.pth").read_bytes())
    from conftest import random_image

    random_image(50, 40).save(tmp_path / "p.png")
    args = ["translate", str(tmp_path / "p.png"), "-o", str(tmp_path / "o")]
    proc = run_python(["-m", "img2img", *args, "--checkpoint", "cyclegan/style_monet"], env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "p.png").is_file()


def test_push_and_mirror_through_the_cli(fixtures, env, tmp_path):
    """`push` uploads our format with a card; `mirror` converts an original and publishes it;
    the published repo then resolves through IMG2IMG_HUB_NAMESPACE."""
    save_pretrained(tiny_generators()["resnet"], tmp_path / "run")
    data = (fixtures / "junyanz_resnet9_instance_ngf8.pth").read_bytes()
    with (
        serving(FakeHub()) as hub,
        serving(FileServer({"cyclegan/pretrained_models/style_monet.pth": data})) as berkeley,
    ):
        env.update(HF_ENDPOINT=hub.url, IMG2IMG_URL_MIRROR=berkeley.url, HF_TOKEN="hf_x")
        proc = run_python(
            ["-m", "img2img", "push", str(tmp_path / "run"), "--repo-id", "me/mine"], env
        )
        assert proc.returncode == 0, proc.stderr
        assert {"config.json", "model.safetensors", "README.md"} == {
            f for repo, f in hub.files if repo == "me/mine"
        }
        card = hub.files[("me/mine", "README.md")].decode()
        assert "pipeline_tag: image-to-image" in card
        env["IMG2IMG_HUB_NAMESPACE"] = "org"
        proc = run_python(["-m", "img2img", "mirror", "cyclegan/style_monet"], env)
        assert proc.returncode == 0, proc.stderr
        repo = "org/img2img-cyclegan-style_monet"
        assert "license: bsd-2-clause" in hub.files[(repo, "README.md")].decode()
        # a fresh machine (empty cache, Berkeley gone) now loads it from the mirror repo
        env.update(HF_HOME=str(tmp_path / "hf2"), IMG2IMG_URL_MIRROR="http://127.0.0.1:9")
        out = run_resolve("cyclegan/style_monet", env)
        assert out["config"]["architecture"] == "resnet" and out["config"]["ngf"] == 8


def test_model_cards_carry_hub_metadata():
    """Cards are built with ModelCardData: our library name, the catalog's licence and a
    base_model for mirrors of Hub repos; exports get this project's licence."""
    from huggingface_hub import ModelCard

    from img2img.publish import catalog_card
    from img2img.weights import LIBRARY_NAME, LICENSE_ID, model_card

    catalog = load_catalog()
    for entry in (
        next(e for e in catalog.values() if e.reverse),  # a CycleGAN pair (Berkeley URL)
        next(e for e in catalog.values() if any(s.type == "hub" for s in e.sources)),
    ):
        card = ModelCard(catalog_card({"architecture": "resnet"}, entry))
        data = card.data.to_dict()
        assert data["library_name"] == LIBRARY_NAME != "img2img"
        assert data["pipeline_tag"] == "image-to-image"
        assert data["license"] == entry.license_id
        assert entry.family in data["tags"]
        hub = [s.repo_id for s in entry.sources if s.type == "hub"]
        assert data.get("base_model") == (hub[0] if hub else None)
        assert "datasets" not in data  # only real Hub dataset ids go there
        assert entry.train in card.text
    export = ModelCard(model_card({"architecture": "unet"}, title="t", family="pix2pix"))
    assert export.data.license == LICENSE_ID == "bsd-3-clause"
