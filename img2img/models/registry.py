"""The one table of generator architectures: name -> class and checkpoint knowledge.

Each architecture module is self-contained and provides, beside its class:
    size_multiple(config) -> int       what input sides must be a multiple of
    matches(state) -> bool             whether a (cleaned) state dict has its key layout
    config_from_state(state) -> dict   its constructor arguments, read off the tensors
and optionally
    near_miss(state) -> str | None     why a state dict that resembles it is still not one
                                       (asked only when no architecture matched)
Adding a family is one new module plus one line in ARCHITECTURES. Everything else (loading,
conversion, train.py's choices, the Translator's padding, the tests) reads this table.
Matchers are exclusive (tests/test_families.py checks every family and variant), so the
order of the table does not decide anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from torch import nn

from ..errors import ConfigError
from . import cut_resnet, huggan_resnet, huggan_unet, mobile_resnet, pix2pixhd, resnet, unet
from .configurable import defaults_of


@dataclass(frozen=True)
class Architecture:
    name: str  # config.json "architecture"
    cls: type[nn.Module]
    size_multiple: Callable[[dict[str, Any]], int]
    matches: Callable[[dict[str, Any]], bool]
    config_from_state: Callable[[dict[str, Any]], dict[str, Any]]
    about: str  # one line for error messages: the family and its telltale keys
    near_miss: Callable[[dict[str, Any]], str | None]


def _no_near_miss(state: dict[str, Any]) -> str | None:
    return None


def _entry(module: ModuleType, cls: type[nn.Module], about: str) -> Architecture:
    return Architecture(
        cls.architecture,
        cls,
        module.size_multiple,
        module.matches,
        module.config_from_state,
        about,
        getattr(module, "near_miss", _no_near_miss),
    )


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        _entry(huggan_unet, huggan_unet.HugGANUNetGenerator, "HugGAN U-Net (down1..down8, final)"),
        _entry(unet, unet.UNetGenerator, "pix2pix U-Net (model.model.0, nested model.model.1)"),
        _entry(resnet, resnet.ResnetGenerator, "junyanz ResNet (model.1 7x7, conv_block, ConvT)"),
        _entry(
            huggan_resnet,
            huggan_resnet.HugGANResnetGenerator,
            "HugGAN/community ResNet (model.1 7x7; block, Upsample+Conv or affine IN)",
        ),
        _entry(
            mobile_resnet,
            mobile_resnet.MobileResnetGenerator,
            "distilled mobile ResNet (stem.1 7x7, blocks.N.conv separable, head.1 7x7)",
        ),
        _entry(
            cut_resnet,
            cut_resnet.CutResnetGenerator,
            "CUT ResNet (model.1 7x7, anti-aliasing model.N.filt buffers)",
        ),
        _entry(
            pix2pixhd,
            pix2pixhd.Pix2PixHDGenerator,
            "pix2pixHD Global/LocalEnhancer (model.1 7x7 biased, N downsamplings, model1_1)",
        ),
    )
}


def get_architecture(name: str | None) -> Architecture:
    if name not in ARCHITECTURES:
        raise ConfigError(
            f"unknown generator architecture {name!r}; known: {sorted(ARCHITECTURES)}"
        )
    return ARCHITECTURES[name]


def complete_config(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with every constructor argument it leaves out set to its default."""
    arch = get_architecture(config.get("architecture"))
    unknown = sorted(set(config) - {"architecture"} - set(defaults_of(arch.cls)))
    if unknown:
        raise ConfigError(f"{arch.name} generators take no {', '.join(unknown)}")
    return {"architecture": arch.name, **defaults_of(arch.cls), **config}


def build_generator(config: dict[str, Any]) -> nn.Module:
    """Instantiate a generator from its config dict (the contents of config.json)."""
    kwargs = dict(config)
    arch = get_architecture(kwargs.pop("architecture", None))
    try:
        return arch.cls(**kwargs)
    except TypeError as e:  # an argument the constructor does not take
        raise ConfigError(f"invalid {arch.name} config {config}: {e}") from e


def size_multiple(config: dict[str, Any]) -> int:
    """What input sides must be a multiple of for the generator `config` describes."""
    return get_architecture(config.get("architecture")).size_multiple(config)
