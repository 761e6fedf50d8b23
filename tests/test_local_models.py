"""Checkpoints on this machine (issue 20): a local file in a catalog slot is used when it is a
generator of the right kind and channels in any family's layout, its mark tells what will
really happen (checked cheaply, remembered per size and time); your own models kept in
<weights>/custom/<name>/ load as custom/<name> and `img2img models` lists them; remote
models are marked by what the network probe found."""

from __future__ import annotations

import os

import pytest
import torch
from helpers.blackhole import blackhole
from helpers.catalog import PROJECT, RESNET, first
from helpers.env import clean_env
from helpers.models import tiny_generators
from helpers.paths import ROOT

from img2img import CheckpointError, save_pretrained
from img2img.checkpoints import hub, local, network
from img2img.models import build_generator

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def weights(tmp_path, monkeypatch):
    monkeypatch.setenv("IMG2IMG_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("IMG2IMG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path / "weights"


def _slot(weights, entry=RESNET):
    folder = weights / entry.id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_huggan_resnet_in_a_resnet_slot_is_used_and_named(weights):
    """Was: "✓ ready (local file)", then "are a huggan_resnet generator, but the catalog
    expects a resnet generator". Both are CycleGAN ResNets: it loads with its own layout."""
    model = tiny_generators()["huggan_resnet"]
    torch.save(model.state_dict(), _slot(weights) / "x.pth")
    found = hub.availability(RESNET)
    assert found.state == "local" and found.ready, found
    assert found.brief == "HugGAN ResNet-2"
    assert found.detail.startswith("a HugGAN ResNet-2 generator (2 blocks, ngf 8) from ")
    assert found.detail.endswith(os.path.join(RESNET.id, "x.pth"))
    loaded = hub.load_model(RESNET.id)
    assert loaded.config == model.config
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(loaded(x), model(x))


def test_the_reference_fixtures_serve_their_own_kind(weights, fixtures):
    unet = first(lambda e: e.architecture["architecture"] == "huggan_unet")
    (_slot(weights, unet) / "g.pth").write_bytes(
        (fixtures / "junyanz_unet256_batch_ngf8.pth").read_bytes()
    )  # a classic U-Net in a HugGAN U-Net slot: the same kind
    (_slot(weights) / "m.pth").write_bytes(
        (fixtures / "junyanz_resnet9_instance_ngf8.legacy.pth").read_bytes()
    )
    assert hub.availability(unet).brief == "pix2pix U-Net-256"
    assert hub.availability(RESNET).brief == "CycleGAN ResNet-9"
    assert hub.load_model(unet.id).config["architecture"] == "unet"


def test_another_kind_with_the_right_channels_is_used_and_says_so(weights):
    """A U-Net in a ResNet slot: a recognised generator with the right channels is used, and
    its mark and card say what it is (the deployer put it there)."""
    torch.save(tiny_generators()["unet"].state_dict(), _slot(weights) / "x.pth")
    found = hub.availability(RESNET)
    assert found.state == "local" and found.ready
    assert found.brief == "pix2pix U-Net-256"
    assert "not the catalog's kind (ResNet (CycleGAN-style)): used as it is" in found.detail
    assert hub.load_model(RESNET.id).config["architecture"] == "unet"


@pytest.mark.parametrize("case", ["channels", "corrupt", "not a generator"])
def test_a_file_that_cannot_serve_is_marked_so_with_advice(weights, case):
    target = _slot(weights) / "x.pth"
    if case == "channels":
        config = {"architecture": "resnet", "ngf": 8, "n_blocks": 2, "in_channels": 1}
        torch.save(build_generator(config).state_dict(), target)
    elif case == "corrupt":
        target.write_bytes(b"PK\x03\x04 cut short")
    else:
        torch.save({"conv.weight": torch.zeros(2, 2)}, target)
    found = hub.availability(RESNET)
    assert found.state == "unusable" and not found.ready
    brief = {
        "channels": "other input / output channels",
        "corrupt": "unreadable (corrupt or cut short)",
        "not a generator": "not a generator we know",
    }[case]
    assert found.brief == brief
    for advice in ("remove it", '"Your own model"', f"img2img translate --checkpoint {target}"):
        assert advice in found.detail
    with pytest.raises(CheckpointError) as e:
        hub.load_model(RESNET.id)
    if case == "channels":  # the loader's own words otherwise
        assert f"the weights found for {RESNET.id} in {target} cannot serve it" in str(e.value)
        assert f"--checkpoint {target}" in str(e.value)


def test_the_verdict_is_remembered_until_the_file_changes(weights, monkeypatch):
    target = _slot(weights) / "x.pth"
    torch.save(tiny_generators()["resnet"].state_dict(), target)
    assert hub.availability(RESNET).state == "local"
    calls = []
    monkeypatch.setattr(local, "_inspect", lambda p: calls.append(p) or local.Verdict(p, None))
    hub.availability(RESNET)
    assert calls == []  # same size and mtime: not read again
    target.write_bytes(b"PK\x03\x04 replaced")
    hub.availability(RESNET)
    assert calls == [target]


def test_your_models_load_by_name_and_a_catalog_id_wins(weights, tmp_path, monkeypatch):
    model = tiny_generators()["huggan_unet"]
    save_pretrained(model, weights / "custom" / "mine")
    (weights / "custom" / "broken").mkdir()
    (weights / "custom" / "broken" / "g.pth").write_bytes(b"nonsense")
    (weights / "custom" / "empty").mkdir()
    stored = {m.id: m for m in local.stored_models()}
    assert list(stored) == ["custom/broken", "custom/mine"]  # empty folders are not listed
    assert stored["custom/mine"].verdict.ok and not stored["custom/broken"].verdict.ok
    assert hub.load_model("custom/mine").config == model.config
    with pytest.raises(CheckpointError, match="did you mean custom/mine"):
        hub.load_model("mine")
    with pytest.raises(CheckpointError, match="your model custom/broken cannot be loaded"):
        hub.load_model("custom/broken")
    # A catalog id is never a path or one of your models, even if such a folder exists.
    monkeypatch.chdir(tmp_path)
    (tmp_path / RESNET.id).mkdir(parents=True)
    torch.save(model.state_dict(), tmp_path / RESNET.id / "g.pth")
    with pytest.raises(Exception, match=RESNET.id):
        hub.load_model(RESNET.id)  # no weights for the catalog model here
    assert hub.load_model(f"./{RESNET.id}").config == model.config


def test_remote_models_are_marked_by_what_the_probe_found(weights, monkeypatch):
    network.forget()
    assert hub.availability(RESNET).state == "download"  # never probed: may download
    with blackhole() as dead:
        monkeypatch.setenv("IMG2IMG_URL_MIRROR", dead)
        monkeypatch.setenv("HF_ENDPOINT", dead)  # read by huggingface_hub at import only
        monkeypatch.setenv("IMG2IMG_PROBE_TIMEOUT", "0.3")
        hub.probe_sources([RESNET])
        found = hub.availability(RESNET)
    network.forget()
    assert found.state == "offline" and found.brief == "no network", found
    assert "cannot be reached" in found.detail
    assert hub.availability(PROJECT).state == "unpublished"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.availability(RESNET).brief == "offline"


def test_img2img_models_lists_your_models(tmp_path):
    import subprocess
    import sys

    weights = tmp_path / "weights"
    save_pretrained(tiny_generators()["resnet"], weights / "custom" / "zebras")
    torch.save(tiny_generators()["huggan_resnet"].state_dict(), _slot(weights) / "x.pth")
    env = {**clean_env(), "IMG2IMG_WEIGHTS_DIR": str(weights), "HF_HUB_OFFLINE": "1"}
    env["IMG2IMG_CACHE"] = str(tmp_path / "cache")
    proc = subprocess.run(
        [sys.executable, "-m", "img2img", "models"], cwd=ROOT, env=env, capture_output=True
    )
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode()
    assert f"Your models (each a folder in {weights / 'custom'}/" in out
    row = next(line for line in out.splitlines() if line.startswith("custom/zebras"))
    assert "ready" in row and "a CycleGAN ResNet-2 generator" in row
    assert f"{RESNET.id}: a HugGAN ResNet-2 generator (2 blocks, ngf 8) from" in out


@pytest.mark.slow
def test_a_model_kept_after_the_app_started_translates_and_a_typo_is_explained(fixtures, tmp_path):
    """The pickers take values the page did not have when it was built (a folder added to
    weights/custom/ while the app runs); the handlers check every value themselves."""
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
    from helpers.images import random_image

    standard_layout(tmp_path, fixtures)
    with running_app(app_env(tmp_path, free_port())) as (url, _):
        late = tmp_path / "weights" / "custom" / "late"
        late.mkdir(parents=True)
        (late / "g.pth").write_bytes((fixtures / "junyanz_resnet9_instance_ngf8.pth").read_bytes())
        photo = io.BytesIO()
        random_image(40, 30).save(photo, format="PNG")
        event = fn_index(url, "translate_ui")
        for model, expect in (("custom/late", "px in"), ("cyclegan/hrose2zebra", "did you mean")):
            data = [data_url_value(photo.getvalue()), model, "fast", False, 0, False, None]
            result = queue_call(url, event, data)
            assert result.success, result
            status = result.output["data"][3]
            assert expect in status.replace("\\", ""), status
