"""Image channels: what a network with 1, 3 or 4 channels reads, and what its output becomes.

A generator's config.json says its channels (`in_channels`, `out_channels`; 3 when absent):
1 is grey (PIL mode "L"), 3 is RGB, 4 is RGBA (the alpha is a channel the network sees or
makes). The value-range contract is processing.py's: networks see [-1, 1]; 8-bit levels map
exactly as `processing.from_uint8` does (so 3-channel models keep their bit-for-bit paths).

Grey at full precision: a high-depth grey image (modes I;16*, I, F: 16-bit PNG and TIFF)
given to a 1-channel network is read as mode "F" holding 0..1 (the range processing.gray_range
gives: 0..65535 for 16-bit files), never rounded to 8 bits; `bits=16` writes a 1-channel
output as a 16-bit grey PNG (mode "I;16"). Pillow's limits: it decodes a 16-bit RGB(A) PNG to
8 bits per channel and cannot write 16-bit RGB, so only grey is 16-bit end to end (a 16-bit
output of a 3- or 4-channel model is refused with ConfigError).

`prepare` / `finish` are processing.prepare / finish for any channel count: a 3-channel
model at 8 bits goes through processing's own functions unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..errors import ConfigError
from . import processing
from .processing import Prepared

COUNTS = (1, 3, 4)  # the channel counts a network may read or make
MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # 8-bit PIL mode of each count
BIT_DEPTHS = (8, 16)
_HIGH_DEPTH = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")


def model_channels(model: nn.Module | dict[str, Any]) -> tuple[int, int]:
    """(input, output) channels of a generator (or its config dict); 3 where not recorded."""
    config = model if isinstance(model, dict) else getattr(model, "config", None) or {}
    return int(config.get("in_channels", 3)), int(config.get("out_channels", 3))


def check_count(n: int, what: str) -> None:
    """ConfigError unless `n` is 1, 3 or 4 (`what` names the setting)."""
    if n not in COUNTS:
        raise ConfigError(f"{what} must be one of {COUNTS} (grey, RGB, RGBA), got {n!r}")


def check_bits(bits: int, out_channels: int) -> None:
    """ConfigError unless `bits` is 8, or 16 for a 1-channel output (Pillow's limit)."""
    if bits not in BIT_DEPTHS:
        raise ConfigError(f"the bit depth must be 8 or 16, got {bits!r}")
    if bits == 16 and out_channels != 1:
        raise ConfigError(
            f"16-bit output is for 1-channel (grey) models; this one makes {out_channels} "
            "channels, and Pillow cannot write 16-bit RGB PNG: use --bit-depth 8"
        )


def convert(img: Image.Image, channels: int) -> Image.Image:
    """`img` in the mode a `channels`-channel network reads: "L" (or "F" holding 0..1 for
    high-depth grey), "RGB" (plain convert, as the classic pipeline) or "RGBA" (opaque when
    the image has no alpha)."""
    check_count(channels, "the channel count")
    if channels == 3:
        return img if img.mode == "RGB" else img.convert("RGB")
    if channels == 1:
        if img.mode not in _HIGH_DEPTH:
            return img if img.mode == "L" else img.convert("L")
        a = np.asarray(img, dtype=np.float64)
        lo, hi = processing.gray_range(img.mode, a)
        a = np.nan_to_num(a, nan=lo, posinf=hi, neginf=lo)
        return Image.fromarray(((a - lo) / (hi - lo)).clip(0, 1).astype(np.float32), mode="F")
    rgb, alpha = processing.split_alpha(img)
    rgba = rgb.convert("RGBA")
    if alpha is not None:
        rgba.putalpha(alpha)
    return rgba


def to_tensor(img: Image.Image) -> torch.Tensor:
    """An image in one of convert's modes -> (1, C, H, W) float32 in [-1, 1]."""
    if img.mode == "RGB":
        return processing.to_tensor(img)
    if img.mode == "F":  # grey at full precision, 0..1 (bicubic may overshoot: clamped)
        x = torch.from_numpy(np.array(img, dtype=np.float32, copy=True)).clamp(0, 1)
        return x.sub(0.5).div(0.5)[None, None]
    if img.mode not in ("L", "RGBA"):
        raise ConfigError(f"expected an image of mode L, F, RGB or RGBA, got {img.mode}")
    levels = torch.from_numpy(np.array(img, dtype=np.uint8, copy=True))
    levels = levels[None] if levels.dim() == 2 else levels.permute(2, 0, 1)
    return processing.from_uint8(levels.contiguous()[None])


def to_image(t: torch.Tensor, bits: int = 8) -> Image.Image:
    """(C, H, W) or (1, C, H, W) in [-1, 1] -> "L" / "RGB" / "RGBA" (rounded), or "I;16"."""
    t = t[0] if t.dim() == 4 else t
    channels = int(t.shape[0])
    check_count(channels, "the output's channel count")
    check_bits(bits, channels)
    if bits == 16:
        y = t[0].detach().cpu().float().add(1).div(2).mul(65535).clamp(0, 65535).round()
        return Image.fromarray(y.numpy().astype(np.uint16))  # mode I;16
    if channels == 3:
        return processing.to_image(t)
    y = processing.to_uint8(t.detach().cpu())
    array = y[0].numpy() if channels == 1 else y.permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(array, mode=MODES[channels])


def prepare(img: Image.Image, long_side: int | None, multiple: int, channels: int) -> Prepared:
    """processing.prepare for a `channels`-channel network. The alpha of the upload is kept
    aside (put back by finish) unless the network reads it (4 channels)."""
    if channels == 3:
        return processing.prepare(img, long_side, multiple)
    processing.check_long_side(long_side)
    alpha = processing.split_alpha(img)[1] if channels == 1 else None
    work = convert(img, channels)
    content = processing.working_size(work.size, long_side)
    resized = work if content == work.size else work.resize(content, Image.BICUBIC)
    x = processing.pad_to_multiple(to_tensor(resized), multiple)
    return Prepared(x, content, work.size, alpha)


def finish(y: torch.Tensor, prep: Prepared, bits: int = 8) -> Image.Image:
    """processing.finish for any output channel count; `bits` 16 writes grey as "I;16"
    (resized back at full precision, in mode F)."""
    if y.shape[1] == 3 and bits == 8:
        return processing.finish(y, prep)
    check_bits(bits, int(y.shape[1]))
    w, h = prep.content_size
    y = y[..., :h, :w]
    if bits == 16:
        unit = y[0, 0].detach().cpu().float().add(1).div(2).clamp(0, 1).numpy()
        grey = Image.fromarray(unit, mode="F")
        if grey.size != prep.original_size:
            grey = grey.resize(prep.original_size, Image.BICUBIC)
        levels = (np.asarray(grey, dtype=np.float64).clip(0, 1) * 65535).round()
        return Image.fromarray(levels.astype(np.uint16))
    out = to_image(y)
    if out.size != prep.original_size:
        out = out.resize(prep.original_size, Image.BICUBIC)
    if prep.alpha is not None and out.mode != "RGBA":
        out.putalpha(prep.alpha)  # L -> LA, RGB -> RGBA
    return out
