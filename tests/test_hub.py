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
from helpers.catalog import (
    HUGGAN,
    PROJECT,
    RESNET,
    UNET,
    hub_file,
    hub_source_text,
    mirror_path,
    source_type,
)
from helpers.env import clean_env
from helpers.images import random_image
from helpers.models import tiny_config, tiny_generators
from helpers.paths import ROOT
from helpers.servers import FakeHub, FileServer, serving

from img2img import save_pretrained
from img2img.checkpoints.catalog import (
    ModelEntry,
    get_entry,
    is_available,
    load_catalog,
    remote_sources,
)
from img2img.models.registry import build_generator

SCRIPT = """
import json, sys
from img2img.checkpoints import hub
from img2img.errors import Img2ImgError
try:
    path = hub.resolve(sys.argv[1], progress=False)
    model = hub.load_model(sys.argv[1], progress=False)
    print(json.dumps({"path": str(path), "config": model.config}))
except Img2ImgError as e:
    print(json.dumps({"error": str(e), "type": type(e).__name__}))
"""


def run_python(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """`python ARGS` in a fresh process whose HF_* / IMG2IMG_* environment is exactly `env`
    (plus the run-wide IMG2IMG_BF16 / IMG2IMG_PLAN, helpers.env)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
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


# The classic (junyanz) originals: Berkeley's folder and the architecture, per family.
BERKELEY_FOLDER = {"pix2pix": "pix2pix/models-pytorch", "cyclegan": "cyclegan/pretrained_models"}
ARCHITECTURE = {"pix2pix": "unet", "cyclegan": "resnet"}


def mirror_repo(namespace: str, entry: ModelEntry) -> str:
    """The documented mirror naming scheme: <namespace>/img2img-<family>-<name>."""
    return f"{namespace}/img2img-{entry.id.replace('/', '-')}"


def test_catalog_is_consistent():
    for entry in load_catalog().values():
        _check_entry(entry)


def _check_entry(entry: ModelEntry) -> None:
    family, name = entry.id.split("/")
    assert entry.label and entry.expects and entry.dataset and entry.license_id
    assert entry.train.startswith(f"python train.py {entry.family} ")
    assert entry.project == (entry.format == "img2img") == (family == "img2img")
    assert entry.project or entry.sources
    if entry.reverse:  # pairs point at each other, and are trained together
        assert get_entry(entry.reverse).reverse == entry.id
        assert get_entry(entry.reverse).dataset == entry.dataset
    if entry.format == "junyanz":  # Berkeley's files are named after the model
        assert family == entry.family and source_type(entry) == "url"
        assert mirror_path(entry) == f"{BERKELEY_FOLDER[family]}/{name}.pth"
        assert entry.architecture["architecture"] == ARCHITECTURE[family]
    if entry.format == "huggan":  # the HugGAN community event's scripts: one per family
        repo, filename = hub_file(entry)
        assert filename == "pytorch_model.bin"
        want = {"pix2pix": "huggan_unet", "cyclegan": "huggan_resnet"}[entry.family]
        assert entry.architecture["architecture"] == want


def test_availability_and_source_order(tmp_path, monkeypatch):
    """The app labels a model "not yet published" exactly when resolution has nowhere to
    look; the deployer's repo comes before the catalog's sources."""
    for key in [k for k in os.environ if k.startswith("IMG2IMG_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("IMG2IMG_WEIGHTS_DIR", str(tmp_path))
    project, classic = PROJECT, RESNET
    assert project.env_var == "IMG2IMG_REPO_" + project.id.replace("/", "_").upper()
    assert not is_available(project) and remote_sources(project) == []
    assert is_available(classic) and remote_sources(classic) == list(classic.sources)
    (tmp_path / project.id).mkdir(parents=True)  # a local folder counts
    assert is_available(project)
    (tmp_path / project.id).rmdir()
    monkeypatch.setenv("IMG2IMG_HUB_NAMESPACE", "me")
    assert is_available(project)
    assert remote_sources(project)[0].repo_id == mirror_repo("me", project)
    assert remote_sources(classic)[0].repo_id == mirror_repo("me", classic)
    assert remote_sources(classic)[1:] == list(classic.sources)


@pytest.mark.slow
def test_hub_source_huggan_format(fixtures, env):
    data = (fixtures / "huggan_unet_div8.pytorch_model.bin").read_bytes()
    repo, filename = hub_file(HUGGAN)
    with serving(FakeHub({(repo, filename): data})) as hub:
        env["HF_ENDPOINT"] = hub.url
        out = run_resolve(HUGGAN.id, env)
        paths = [p for method, p, _ in hub.log]
    assert out["config"]["architecture"] == "huggan_unet"
    assert out["path"].startswith(env["HF_HOME"])  # in the HF cache
    assert f"/{repo}/resolve/main/{filename}" in paths
    # The Hub now unreachable (nothing listens on port 9): the cached file still serves.
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    assert run_resolve(HUGGAN.id, env)["config"]["architecture"] == "huggan_unet"
    env["HF_HUB_OFFLINE"] = "1"
    assert run_resolve(HUGGAN.id, env)["config"]["architecture"] == "huggan_unet"


@pytest.mark.slow
def test_url_source_junyanz_format_with_mirror(fixtures, env):
    data = (fixtures / "junyanz_resnet9_instance_ngf8.legacy.pth").read_bytes()
    with serving(FileServer({mirror_path(RESNET): data})) as server:
        env["IMG2IMG_URL_MIRROR"] = server.url
        out = run_resolve(RESNET.id, env)
        assert len(server.gets()) == 1
        assert run_resolve(RESNET.id, env)["config"]["n_blocks"] == 9
        assert len(server.gets()) == 1  # second load: verified cache, no download
    assert out["config"]["architecture"] == "resnet"
    assert Path(out["path"] + ".sha256").is_file()
    cached = Path(out["path"])
    cached.write_bytes(cached.read_bytes()[:-10] + b"0123456789")  # corrupt the cache
    env["HF_HUB_OFFLINE"] = "1"
    out = run_resolve(RESNET.id, env)
    assert out["type"] == "WeightsUnavailableError"
    assert "not in the cache" in out["error"] and "unset HF_HUB_OFFLINE" in out["error"]


def test_local_weights_dir_wins(fixtures, env):
    target = Path(env["IMG2IMG_WEIGHTS_DIR"]) / UNET.id
    target.mkdir(parents=True)
    (target / "latest_net_G.pth").write_bytes(
        (fixtures / "junyanz_unet256_batch_ngf8.pth").read_bytes()
    )
    out = run_resolve(UNET.id, env)
    assert out["path"] == str(target) and out["config"]["norm"] == "batch"


@pytest.mark.slow
def test_project_model_via_override_repo_in_our_format(tmp_path, env):
    model = tiny_generators()["resnet"]
    save_pretrained(model, tmp_path / "ours")
    files = {
        ("me/n2d", name): (tmp_path / "ours" / name).read_bytes()
        for name in ("config.json", "model.safetensors")
    }
    out = run_resolve(PROJECT.id, env)
    assert out["type"] == "WeightsUnavailableError"
    assert PROJECT.env_var in out["error"]
    with serving(FakeHub(files)) as hub:
        env.update({"HF_ENDPOINT": hub.url, PROJECT.env_var: "me/n2d@v1"})
        out = run_resolve(PROJECT.id, env)
        assert any("/me/n2d/resolve/v1/config.json" in p for _, p, _ in hub.log)
    assert out["config"] == model.config
    # IMG2IMG_HUB_NAMESPACE covers every id with the mirror naming scheme
    files = {(mirror_repo("org", RESNET), k[1]): v for k, v in files.items()}
    with serving(FakeHub(files)) as hub:
        env.pop(PROJECT.env_var)
        env.update(HF_ENDPOINT=hub.url, IMG2IMG_HUB_NAMESPACE="org")
        assert run_resolve(RESNET.id, env)["config"] == model.config


@pytest.mark.slow
def test_every_source_failing_is_explained(env):
    out = run_resolve(HUGGAN.id, env)
    assert out["type"] == "WeightsUnavailableError"
    msg = out["error"]
    assert "local folder" in msg and hub_source_text(HUGGAN) in msg
    assert "What you can do" in msg
    out = run_resolve("pix2pix/nope", env)
    assert out["type"] == "UnknownModelError"
    assert all(model_id in out["error"] for model_id in load_catalog())  # the valid ids


def test_wrong_architecture_for_the_catalog_entry(fixtures, env):
    """The message names the file, what it holds, what the catalog model is and what to do,
    in words (it used to print Python dicts: {'architecture': 'unet'})."""
    target = Path(env["IMG2IMG_WEIGHTS_DIR"]) / RESNET.id
    target.mkdir(parents=True)
    config = {**tiny_config("unet"), "in_channels": 1}
    torch.save(build_generator(config).state_dict(), target / "g.pth")  # a grayscale U-Net
    out = run_resolve(RESNET.id, env)
    assert out["type"] == "CheckpointError" and str(target / "g.pth") in out["error"]
    assert "it is a pix2pix U-Net-256 generator" in out["error"] and "{" not in out["error"]
    assert f"but {RESNET.id} takes 3 and gives 3 channels" in out["error"]
    assert "What you can do: replace" in out["error"]
    assert f"img2img translate --checkpoint {target / 'g.pth'}" in out["error"]


def test_tokens_never_in_errors(env):
    env["HF_TOKEN"] = "hf_SECRETSECRETSECRET"
    out = run_resolve(HUGGAN.id, env)
    assert "SECRET" not in json.dumps(out)


def test_cli_accepts_catalog_ids(fixtures, env, tmp_path):
    target = Path(env["IMG2IMG_WEIGHTS_DIR"]) / RESNET.id
    target.mkdir(parents=True)
    (target / "m.pth").write_bytes((fixtures / "junyanz_resnet9_instance_ngf8.pth").read_bytes())
    random_image(50, 40).save(tmp_path / "p.png")
    args = ["translate", str(tmp_path / "p.png"), "-o", str(tmp_path / "o")]
    proc = run_python(["-m", "img2img", *args, "--checkpoint", RESNET.id], env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "p.png").is_file()


@pytest.mark.slow
def test_push_and_mirror_through_the_cli(fixtures, env, tmp_path):
    """`push` uploads our format with a card; `mirror` converts an original and publishes it;
    the published repo then resolves through IMG2IMG_HUB_NAMESPACE."""
    save_pretrained(tiny_generators()["resnet"], tmp_path / "run")
    data = (fixtures / "junyanz_resnet9_instance_ngf8.pth").read_bytes()
    with (
        serving(FakeHub()) as hub,
        serving(FileServer({mirror_path(RESNET): data})) as berkeley,
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
        proc = run_python(["-m", "img2img", "mirror", RESNET.id], env)
        assert proc.returncode == 0, proc.stderr
        card = hub.files[(mirror_repo("org", RESNET), "README.md")].decode()
        assert f"license: {RESNET.license_id}" in card
        # a fresh machine (empty cache, Berkeley gone) now loads it from the mirror repo
        env.update(HF_HOME=str(tmp_path / "hf2"), IMG2IMG_URL_MIRROR="http://127.0.0.1:9")
        out = run_resolve(RESNET.id, env)
        assert out["config"]["architecture"] == "resnet" and out["config"]["ngf"] == 8


def test_model_cards_carry_hub_metadata():
    """Cards are built with ModelCardData: our library name, the catalog's licence and a
    base_model for mirrors of Hub repos; exports get this project's licence."""
    from huggingface_hub import ModelCard

    from img2img.checkpoints.publish import catalog_card
    from img2img.checkpoints.release import LIBRARY_NAME, LICENSE_ID, model_card

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
