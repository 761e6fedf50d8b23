"""Checkpoint loading: our format round trips, strict-key errors, unsafe and broken files."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from helpers.models import tiny_generators
from safetensors.torch import save_file

from img2img import CheckpointError, load_generator, save_pretrained
from img2img.checkpoints.weights import read_state_dict
from img2img.models import ARCHITECTURES


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_round_trip_our_format(tmp_path, arch):
    model = tiny_generators()[arch]
    save_pretrained(model, tmp_path / arch, card="# card\n", metadata={"dataset": "facades"})
    files = sorted(p.name for p in (tmp_path / arch).iterdir())
    assert files == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((tmp_path / arch / "config.json").read_text())
    assert config["architecture"] == arch and config["_dataset"] == "facades"
    loaded = load_generator(tmp_path / arch)
    assert loaded.config == model.config and not loaded.training
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    # the weights file alone also works (config.json beside it is found)
    assert load_generator(tmp_path / arch / "model.safetensors").config == model.config


def test_save_unwraps_compiled_and_parallel(tmp_path):
    model = tiny_generators()["resnet"]
    save_pretrained(torch.nn.DataParallel(model), tmp_path / "m")
    keys = set(read_state_dict(tmp_path / "m" / "model.safetensors"))
    assert keys == set(model.state_dict())


def test_config_json_is_authoritative_for_ambiguous_settings(tmp_path):
    """Dropout cannot be read off tensors; our config keeps it."""
    from img2img.models import UNetGenerator

    save_pretrained(UNetGenerator(ngf=8, dropout=False), tmp_path / "m")
    assert load_generator(tmp_path / "m").config["dropout"] is False


def test_bare_safetensors_and_wrapped_keys(tmp_path):
    model = tiny_generators()["unet"]
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    save_file(state, tmp_path / "bare.safetensors")
    assert load_generator(tmp_path / "bare.safetensors").config == model.config
    torch.save({"state_dict": state}, tmp_path / "nested.pth")
    assert load_generator(tmp_path / "nested.pth").config == model.config


def test_missing_and_unexpected_keys_are_named(tmp_path):
    state = tiny_generators()["resnet"].state_dict()
    state.pop("model.11.conv_block.5.weight")
    state["model.11.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError) as e:
        load_generator(tmp_path / "broken.pth")
    msg = str(e.value)
    assert "model.11.conv_block.5.weight" in msg and "model.11.extra.weight" in msg
    assert '"architecture": "resnet"' in msg and "broken.pth" in msg


def test_shape_mismatch_against_config(tmp_path):
    save_pretrained(tiny_generators()["unet"], tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["ngf"] = 16
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="shape keys: model.model.0.weight"):
        load_generator(tmp_path / "m")


def test_unknown_layout_and_bad_config(tmp_path):
    torch.save({"encoder.weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="unrecognised checkpoint layout.*encoder.weight"):
        load_generator(tmp_path / "other.pth")
    save_pretrained(tiny_generators()["resnet"], tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text('{"architecture": "resnet", "depth": 3}')
    with pytest.raises(CheckpointError, match="invalid generator config"):
        load_generator(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json"):
        load_generator(tmp_path / "m")


class Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickles_with_foreign_globals_are_refused(tmp_path, capsys):
    torch.save({"x": Payload()}, tmp_path / "evil.pth")
    with open(tmp_path / "evil.bin", "wb") as f:
        pickle.dump({"w": Payload()}, f, protocol=2)
    for name in ("evil.pth", "evil.bin"):
        with pytest.raises(CheckpointError, match="refused"):
            load_generator(tmp_path / name)
    assert "pwned" not in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated", b"\x80\x02garbage", b"{}"])
def test_broken_files(tmp_path, content):
    (tmp_path / "x.pth").write_bytes(content)
    with pytest.raises(CheckpointError):
        load_generator(tmp_path / "x.pth")


def test_safetensors_whose_header_length_starts_with_0x80(tmp_path):
    """Was: read as a legacy pickle (first byte 0x80) and refused, for 1 header size in 256."""
    state = tiny_generators()["resnet"].state_dict()
    for pad in range(256):
        save_file(state, tmp_path / "m.safetensors", metadata={"pad": "x" * pad})
        if (tmp_path / "m.safetensors").read_bytes()[0] == 0x80:
            break
    assert (tmp_path / "m.safetensors").read_bytes()[0] == 0x80
    assert load_generator(tmp_path / "m.safetensors").config["architecture"] == "resnet"


def test_truncated_safetensors(tmp_path):
    save_pretrained(tiny_generators()["resnet"], tmp_path / "m")
    f = tmp_path / "m" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_generator(tmp_path / "m")


def test_directory_rules(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_generator(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "nope")
    g = tiny_generators()
    torch.save(g["resnet"].state_dict(), tmp_path / "a.pth")
    assert load_generator(tmp_path).config["architecture"] == "resnet"  # the only file
    torch.save(g["unet"].state_dict(), tmp_path / "b.pth")
    with pytest.raises(CheckpointError, match="several checkpoints"):
        load_generator(tmp_path)
    torch.save(g["huggan_unet"].state_dict(), tmp_path / "pytorch_model.bin")
    assert load_generator(tmp_path).config["architecture"] == "huggan_unet"  # preferred name


def test_legacy_fixture_drops_instance_norm_buffers(fixtures):
    raw = read_state_dict(fixtures / "junyanz_resnet9_instance_ngf8.legacy.pth")
    assert any(k.endswith("running_mean") for k in raw)
    model = load_generator(fixtures / "junyanz_resnet9_instance_ngf8.legacy.pth")
    assert not any("running" in k for k in model.state_dict())
