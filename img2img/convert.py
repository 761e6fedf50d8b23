"""Foreign checkpoint formats -> (config, state dict) for our modules.

Three families are recognised from the tensors alone:

- junyanz U-Net (`model.model.0.weight`, nested `model.model.1.model.3...`)
- junyanz ResNet (`model.1.weight` 7x7, `model.N.conv_block...`)
- HugGAN U-Net (`down1.model.0.weight` ... `final.2.bias`)

Width (ngf), depth, in/out channels, norm and (for ResNets) dropout are read off the shapes.
Our own modules use the classic key layout, so conversion is key hygiene: strip wrapper
prefixes (`module.`, `_orig_mod.`) and drop the InstanceNorm buffers that PyTorch < 0.4
wrote into old CycleGAN files. Anything else that does not match is left for the strict
load to report.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from .errors import CheckpointError

StateDict = dict[str, torch.Tensor]
_STAT_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def strip_prefixes(state: StateDict) -> StateDict:
    """Remove DataParallel / torch.compile prefixes from every key."""
    out = {}
    for key, value in state.items():
        while key.startswith(_WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def drop_legacy_instance_norm_stats(state: StateDict) -> StateDict:
    """Drop running stats that belong to no affine norm layer (pre-0.4 InstanceNorm buffers).

    A BatchNorm layer always has `weight` next to its running stats; a stat without a
    sibling `weight` can only come from InstanceNorm(track_running_stats) in old files.
    """
    out = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf in _STAT_SUFFIXES and f"{prefix}.weight" not in state:
            continue
        out[key] = value
    return out


def detect_family(state: StateDict) -> str:
    """'huggan_unet', 'unet' (junyanz) or 'resnet' (junyanz), from the key names."""
    if "down1.model.0.weight" in state and "final.2.weight" in state:
        return "huggan_unet"
    if "model.model.0.weight" in state:
        return "unet"
    w = state.get("model.1.weight")
    if w is not None and w.dim() == 4 and w.shape[-1] == 7:
        return "resnet"
    sample = ", ".join(list(state)[:5]) or "(no tensors)"
    raise CheckpointError(
        "unrecognised checkpoint layout: expected a pix2pix U-Net (model.model.0.weight), "
        f"a CycleGAN ResNet (model.1.weight) or a HugGAN U-Net (down1.model.0.weight); "
        f"first keys: {sample}"
    )


def _unet_config(state: StateDict) -> dict[str, Any]:
    first = state["model.model.0.weight"]  # (ngf, in_channels, 4, 4)
    last = state.get("model.model.3.weight")  # ConvTranspose: (2 ngf, out_channels, 4, 4)
    if last is None:
        raise CheckpointError("junyanz U-Net checkpoint has no outermost up-conv model.model.3")
    num_downs, prefix = 1, "model.model.1"
    while f"{prefix}.model.1.weight" in state:  # each nested level has a down-conv at .1
        num_downs += 1
        prefix += ".model.3"
    if "model.model.1.model.2.weight" in state:  # affine norm after the level-1 down-conv
        norm = "batch"
    elif "model.model.1.model.1.bias" in state:  # convs carry a bias only with instance norm
        norm = "instance"
    else:
        norm = "none"
    return dict(
        architecture="unet",
        in_channels=int(first.shape[1]),
        out_channels=int(last.shape[1]),
        num_downs=num_downs,
        ngf=int(first.shape[0]),
        norm=norm,
        dropout=True,  # dropout has no weights; pix2pix generators are trained with it
    )


def _resnet_config(state: StateDict) -> dict[str, Any]:
    first = state["model.1.weight"]  # (ngf, in_channels, 7, 7)
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
    n_blocks = len(blocks)
    last = state.get(f"model.{10 + n_blocks + 7}.weight")  # final 7x7 conv
    if last is None:
        raise CheckpointError(f"ResNet checkpoint with {n_blocks} blocks lacks its output conv")
    if "model.2.weight" in state:
        norm = "batch"
    elif "model.1.bias" in state:
        norm = "instance"
    else:
        norm = "none"
    # With dropout the second conv of each block sits at index 6 (a norm or nothing without).
    dropout = any(k.endswith("conv_block.6.weight") and v.dim() == 4 for k, v in state.items())
    return dict(
        architecture="resnet",
        in_channels=int(first.shape[1]),
        out_channels=int(last.shape[0]),
        n_blocks=n_blocks,
        ngf=int(first.shape[0]),
        norm=norm,
        dropout=dropout,
    )


def _huggan_config(state: StateDict) -> dict[str, Any]:
    first = state["down1.model.0.weight"]  # (ngf, in_channels, 4, 4)
    return dict(
        architecture="huggan_unet",
        in_channels=int(first.shape[1]),
        out_channels=int(state["final.2.weight"].shape[0]),
        ngf=int(first.shape[0]),
    )


_CONFIG_READERS = {"unet": _unet_config, "resnet": _resnet_config, "huggan_unet": _huggan_config}


def infer_config(state: StateDict) -> dict[str, Any]:
    """Architecture config (as in config.json) of a generator state dict in any family."""
    try:
        return _CONFIG_READERS[detect_family(state)](state)
    except (KeyError, IndexError) as e:
        raise CheckpointError(f"checkpoint is missing a tensor needed to infer it: {e}") from e


def clean_state_dict(state: StateDict) -> StateDict:
    """Key hygiene common to every family (see module docstring)."""
    return drop_legacy_instance_norm_stats(strip_prefixes(state))
