"""Checkpoints on this machine: what a file is (cheaply, remembered), whether it can serve a
catalog model, and your own models kept under <weights dir>/custom/<name>/.

`check(path)` answers "what will really happen if this file is loaded?" without loading it:
weights.read(lazy=True) reads a safetensors header or memory-maps a torch zip, CLEAN and
DETECT run as for a real load, and the generator is built on the meta device (no memory, no
init cost) to compare every key and shape. Only NaN / Inf weights are left to the real load.
The verdict is remembered per (file, size, mtime_ns) and the same for a config.json beside
it, so the picker can ask on every refresh and a replaced file is checked again.

`fits(entry, config)`: a catalog slot takes any generator we can load whose input and output
channels are the entry's, in any family's layout, loaded with its own detected architecture:
a CycleGAN ResNet-9 trained by another code base serves cyclegan/horse2zebra. One of another
kind than the catalog's (a U-Net where the catalog has a ResNet) is used too, and says so
(`kind_note`): the deployer put it there, and it translates the same photos.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError
from ..models.registry import build_generator
from .catalog import ModelEntry, custom_folder, custom_ids
from .weights import clean, describe_mismatch, detect, find_checkpoint_file, read

# Registry architecture -> the kind of generator it is, and how people name it.
KIND = {"resnet": "resnet", "huggan_resnet": "resnet", "unet": "unet", "huggan_unet": "unet"}
KIND_WORDS = {"resnet": "ResNet (CycleGAN-style)", "unet": "U-Net (pix2pix-style)"}
_CACHE_SIZE = 512


def short_name(config: dict[str, Any]) -> str:
    """A few words for a generator config: "HugGAN ResNet-9", "pix2pix U-Net-256"."""
    arch = config["architecture"]
    if arch in ("resnet", "huggan_resnet"):
        origin = "HugGAN" if arch == "huggan_resnet" else "CycleGAN"
        return f"{origin} ResNet-{config.get('n_blocks', 9)}"
    if arch == "unet":
        return f"pix2pix U-Net-{2 ** config.get('num_downs', 8)}"
    return "HugGAN U-Net" if arch == "huggan_unet" else arch


def describe_config(config: dict[str, Any]) -> str:
    """A generator config in words: "a HugGAN ResNet-9 generator (9 blocks, ngf 64)"."""
    arch, ngf = config["architecture"], config.get("ngf", 64)
    if arch in ("resnet", "huggan_resnet"):
        layout = f"{config.get('n_blocks', 9)} blocks"
        if arch == "resnet":
            layout = f"junyanz layout, {layout}"
    elif arch == "unet":
        layout = f"{config.get('norm', 'batch')} norm"
    else:
        layout = "HugGAN layout"
        arch = "huggan_unet"
    channels = config.get("in_channels", 3), config.get("out_channels", 3)
    io = f", {channels[0]} → {channels[1]} channels" if channels != (3, 3) else ""
    return f"a {short_name(config)} generator ({layout}, ngf {ngf}{io})"


@dataclass(frozen=True)
class Verdict:
    """What a checkpoint file or folder is: a generator config, or why it cannot load."""

    file: Path | None  # the checkpoint file (None: the folder has none, or several)
    config: dict[str, Any] | None  # the generator it holds (None: it cannot load)
    problem: str = ""  # the loader's full message
    brief: str = ""  # a few words of it, for a mark

    @property
    def ok(self) -> bool:
        return self.config is not None

    @property
    def what(self) -> str:
        """ "a HugGAN ResNet-9 generator (9 blocks, ngf 64) from <file>"."""
        return f"{describe_config(self.config)} from {self.file}" if self.ok else ""


# What a loader's message says, in a few words (first match wins).
_BRIEFS = (
    ("several checkpoints", "several checkpoint files, keep one"),
    ("no checkpoint in", "no checkpoint file in it"),
    ("refused to load", "an unsafe pickle"),
    ("in memory", "too large"),
    ("unrecognised checkpoint layout", "not a generator we know"),
    ("does not hold a state dict", "not a generator we know"),
    ("none has a generator layout", "not a generator we know"),
    ("generators:", "several generators in one file"),
    ("does not match", "its tensors do not fit its layout"),
    ("config", "its config.json is invalid"),
)


def _brief(message: str) -> str:
    return next((b for key, b in _BRIEFS if key in message), "unreadable (corrupt or cut short)")


def _inspect(path: Path) -> Verdict:
    file = None
    try:
        file = find_checkpoint_file(path) if path.is_dir() else path
        raw = read(file, lazy=True)
        state = clean(raw)
        detected = detect(state, raw)
        with torch.device("meta"):  # every key and shape compared, nothing allocated
            module = build_generator(detected.config)
        problems = describe_mismatch(module, state)
        if problems:
            raise CheckpointError(f"{file} does not match its layout: " + "; ".join(problems))
        return Verdict(file, dict(module.config))
    except ConfigError as e:
        return Verdict(file, None, f"invalid generator config in {file}: {e}", _brief("config"))
    except CheckpointError as e:
        return Verdict(file, None, str(e), _brief(str(e)))


_lock = threading.Lock()
_verdicts: dict[tuple, Verdict] = {}


def _stamp(path: Path) -> tuple:
    """What changes when a file is replaced: (path, size, mtime_ns), or None if it is gone."""
    try:
        st = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path), st.st_size, st.st_mtime_ns)


def check(path: str | os.PathLike) -> Verdict:
    """What the checkpoint file (or folder) at `path` holds, read cheaply (module docstring);
    remembered until the file, or the config.json beside it, changes. Never raises for a bad
    checkpoint: the verdict says why it cannot load."""
    path = Path(path)
    try:
        file = find_checkpoint_file(path) if path.is_dir() else path
    except CheckpointError as e:
        return Verdict(None, None, str(e), _brief(str(e)))
    key = (_stamp(file.absolute()), _stamp(file.absolute().parent / "config.json"))
    with _lock:
        if key in _verdicts:
            return _verdicts[key]
    verdict = _inspect(file)
    with _lock:
        if len(_verdicts) >= _CACHE_SIZE:
            _verdicts.clear()
        _verdicts[key] = verdict
    return verdict


def _kind_of(entry: ModelEntry) -> str:
    """How people name the kind of generator catalog model `entry` is."""
    return KIND_WORDS[KIND[entry.architecture["architecture"]]]


def fits(entry: ModelEntry, config: dict[str, Any]) -> str:
    """Why a generator `config` cannot serve catalog model `entry` ("" when it can): another
    kind of generator, or other input / output channels. Its family's layout does not matter."""
    want = entry.architecture
    have_io = config.get("in_channels", 3), config.get("out_channels", 3)
    want_io = want.get("in_channels", 3), want.get("out_channels", 3)
    if have_io != want_io:
        return (
            f"it is {describe_config(config)}, but {entry.id} takes {want_io[0]} and gives "
            f"{want_io[1]} channels"
        )
    return ""


def fits_brief(entry: ModelEntry, config: dict[str, Any]) -> str:
    """`fits` in a few words, for a mark ("" when it fits)."""
    return "other input / output channels" if fits(entry, config) else ""


def kind_note(entry: ModelEntry, config: dict[str, Any]) -> str:
    """ "" when the generator is of the catalog entry's kind, else a note that says it is not
    (it is used as it is: `fits`)."""
    if KIND.get(config["architecture"]) == KIND.get(entry.architecture["architecture"]):
        return ""
    return f"not the catalog's kind ({_kind_of(entry)}): used as it is"


def advice(entry: ModelEntry, file: Path | str) -> str:
    """What a person can do about a local file that cannot serve `entry`, in their words."""
    return (
        f"What you can do: replace {file} with a {_kind_of(entry)} checkpoint of {entry.id}; "
        "or remove it to use the catalog's own download; or use the file as it is: as "
        f'"Your own model" in the app, or with `img2img translate --checkpoint {file}`'
    )


@dataclass(frozen=True)
class StoredModel:
    """One of your own models kept on disk: <weights dir>/custom/<name>/."""

    id: str  # custom/<name>: what the CLI's --checkpoint and the app's picker take
    name: str
    folder: Path
    verdict: Verdict


def stored_models() -> list[StoredModel]:
    """Your own models, by name, each with what it holds or why it cannot load (cached)."""
    out = []
    for model_id in custom_ids():
        folder = custom_folder(model_id)
        if folder is not None:
            out.append(StoredModel(model_id, model_id.split("/", 1)[1], folder, check(folder)))
    return out
