"""Library contracts: the architecture registry, one preparation path for every module,
catalog ids before paths, per-model locks, and the catalog shipped as package data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from helpers.models import tiny_config
from PIL import Image

from img2img import Translator, errors, load_generator, save_pretrained
from img2img.checkpoints.catalog import load_catalog
from img2img.checkpoints.hub import load_model
from img2img.checkpoints.weights import infer_config
from img2img.models import ARCHITECTURES, build_generator, complete_config, size_multiple
from img2img.models.configurable import defaults_of

ROOT = Path(__file__).resolve().parents[1]
CODE = "import img2img.checkpoints.catalog as c; print(c.CATALOG_PATH, c.weights_dir())"


def tiny(name: str) -> torch.nn.Module:
    """A small generator of registry architecture `name` (ngf 8, few blocks)."""
    torch.manual_seed(0)
    return build_generator(tiny_config(name))


def photo(w: int = 64, h: int = 48) -> Image.Image:
    g = torch.Generator().manual_seed(1)
    return Image.fromarray((torch.rand(h, w, 3, generator=g) * 255).byte().numpy(), "RGB")


# --- the registry ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_is_recognised_from_its_own_tensors(name):
    model = tiny(name)
    state = model.state_dict()
    assert ARCHITECTURES[name].matches(state)
    others = [a.name for a in ARCHITECTURES.values() if a.name != name and a.matches(state)]
    assert not others, f"{name} checkpoints are also claimed by {others}"
    assert infer_config(state) == model.config == complete_config(model.config)
    assert size_multiple(model.config) >= 4


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_constructors_record_their_arguments(name):
    model = tiny(name)
    assert set(model.config) == {"architecture", *defaults_of(type(model))}
    assert build_generator(model.config).config == model.config


def test_bad_architecture_values_are_config_errors():
    with pytest.raises(errors.ConfigError, match="architecture"):
        build_generator({"architecture": "vit"})
    with pytest.raises(errors.ConfigError, match="norm"):
        build_generator({"architecture": "unet", "norm": "group"})
    with pytest.raises(errors.ConfigError, match="take no n_blocks"):
        complete_config({"architecture": "huggan_unet", "n_blocks": 3})


def test_unrecognised_checkpoints_say_what_was_found_and_tried(tmp_path):
    from safetensors.torch import save_file

    save_file({"encoder.conv.weight": torch.zeros(8, 3, 3, 3)}, tmp_path / "x.safetensors")
    with pytest.raises(errors.CheckpointError) as info:
        load_generator(tmp_path / "x.safetensors")
    text = str(info.value)
    assert "encoder.conv.weight (8, 3, 3, 3)" in text
    for arch in ARCHITECTURES.values():
        assert arch.about in text


# --- one preparation path ----------------------------------------------------------------


def test_a_module_passed_in_is_prepared_and_never_changed():
    """Was: translate(image, module) skipped eval() and image statistics, so two calls on a
    fresh (train-mode) U-Net differed and bumped the caller's BatchNorm counters."""
    model = tiny("unet").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    t = Translator(device="cpu", plan="eager")
    img = photo(256, 256)
    first, second = (t.translate(model, [img])[0] for _ in range(2))
    assert first.tobytes() == second.tobytes()
    assert model.training and all(p.requires_grad for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    # The same as loading it: per-image statistics, dropout off.
    assert first.tobytes() == t.translate(t.prepare(model).model, [img])[0].tobytes()


def test_a_module_without_a_registry_config_is_refused():
    with pytest.raises(errors.ConfigError, match="no .config"):
        Translator(device="cpu").translate(torch.nn.Conv2d(3, 3, 1), [photo()])


# --- catalog ids before paths ------------------------------------------------------------


def test_a_catalog_id_is_never_hijacked_by_a_folder_of_the_same_name(tmp_path, monkeypatch):
    """Was: a folder ./cyclegan/horse2zebra holding a U-Net won over the catalog id and
    skipped its architecture check."""
    entry = next(e for e in load_catalog().values() if e.architecture["architecture"] == "resnet")
    impostor = tmp_path / "cwd" / entry.id
    save_pretrained(tiny("unet"), impostor)
    save_pretrained(tiny("resnet"), tmp_path / "weights" / entry.id)
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("IMG2IMG_WEIGHTS_DIR", str(tmp_path / "weights"))
    assert load_model(entry.id).config["architecture"] == "resnet"
    assert load_model(f"./{entry.id}").config["architecture"] == "unet"  # a path is a path
    # The catalog's check still holds for the id: a generator with other channels cannot serve.
    gray = build_generator({**tiny_config("unet"), "in_channels": 1})
    save_pretrained(gray, tmp_path / "weights" / entry.id)
    with pytest.raises(errors.CheckpointError, match=f"weights found for {entry.id} in"):
        load_model(entry.id)


def test_neither_id_nor_path_says_so(tmp_path):
    with pytest.raises(errors.CheckpointError, match="neither a catalog id nor an existing"):
        load_model(str(tmp_path / "nothing"))


# --- concurrency -------------------------------------------------------------------------


def test_two_models_translate_at_the_same_time():
    """Was: one lock around every forward of every model. Each model's forward waits here
    until the other model's forward has started too: under one global lock it never does."""
    meeting = threading.Barrier(2, timeout=20)

    def wait_for_the_other(module, args):
        meeting.wait()

    models = {}
    for name in ("a", "b"):
        models[name] = tiny("resnet")
        models[name].register_forward_pre_hook(wait_for_the_other)
    t = Translator(device="cpu", plan="eager", loader=models.__getitem__)
    for name in models:
        t.load(name)
    results, failures = {}, []

    def work(name):
        try:
            results[name] = t.translate(name, [photo()])[0]
        except threading.BrokenBarrierError as e:
            failures.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures and set(results) == {"a", "b"}


# --- errors ------------------------------------------------------------------------------


def test_every_library_exception_lives_in_errors_and_is_exported():
    import img2img

    classes = {
        obj
        for module in list(sys.modules.values())
        if getattr(module, "__name__", "").startswith("img2img")
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Exception)
        and obj.__module__.startswith("img2img")
        and not obj.__name__.startswith("_")  # private control flow, never raised to users
    }
    assert classes, "no library exceptions found"
    for cls in classes:
        assert cls.__module__ == "img2img.errors", cls
        assert issubclass(cls, errors.Img2ImgError), cls
        assert getattr(img2img, cls.__name__) is cls, cls


# --- packaging ---------------------------------------------------------------------------


@pytest.mark.slow
def test_installed_package_ships_its_catalog_and_command(tmp_path):
    """`pip install .` gives a working `img2img models` outside the checkout."""
    source, target = tmp_path / "src", tmp_path / "site"
    source.mkdir()  # a copy: building in place would leave build/ in the checkout
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "img2img", source / "img2img", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HOME": str(tmp_path / "hf")}
    env.pop("IMG2IMG_WEIGHTS_DIR", None)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for command in (
        [str(target / "bin" / "img2img"), "models"],
        [sys.executable, "-m", "img2img", "models"],
    ):
        proc = subprocess.run(
            command, cwd=outside, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        catalog_block = proc.stdout.split("\n\n")[0]  # then "Your models" (none here)
        ids = [line.split()[0] for line in catalog_block.splitlines() if line.strip()]
        assert ids == list(load_catalog()), command
        assert "Your models" in proc.stdout
    where = subprocess.run(
        [sys.executable, "-c", CODE],
        cwd=outside, env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout.split()  # fmt: skip
    assert where[0].startswith(str(target)) and where[1] == str(
        tmp_path / "hf" / "img2img" / "weights"
    )
