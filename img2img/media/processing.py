"""PIL <-> tensor, the value-range contract, and the size policy. Pure functions.

Contract: networks see float tensors (B, 3, H, W) in [-1, 1]; images are 8-bit PIL images.
`to_tensor` / `to_image` (and, on uint8 level tensors, `pixels` / `from_uint8` / `to_uint8`)
are the only places that convert between the two.

Size policy (ours): keep the aspect ratio, resize the long side to a working size, pad to the
architecture's multiple (reflect where possible), run, crop the padding off, resize back to
the original size and put the original alpha back. The "official" policy reproduces the
classic test pipeline: RGB, bicubic squash to 256x256, truncating uint8 conversion.
The working long side is at most MAX_LONG_SIDE (6144): the largest multiple of 256 whose
square (37.7 MP) stays under the 40 MP decode cap, so a working size never makes a bigger
image than the largest upload we accept would be at its own size.

High-bit-depth grey (PIL modes I;16*, I, F) is scaled linearly to 8 bits, never clipped. The
range that maps to 0..255 is the mode's own when it has one, else the smallest usual range
that holds every value, else the image's own min..max:
- I;16, I;16L, I;16B, I;16N (16-bit files): 0..65535, always (a dark 16-bit scan stays dark);
- I (32-bit int): 0..255 if every value fits (8-bit data widened, e.g. `L.convert("I")`),
  else 0..65535 if every value fits (16-bit data), else min..max;
- F (32-bit float): 0..1 if every finite value fits, else 0..255, else min..max; NaN is
  black, +inf white, -inf black.
A constant image outside those ranges becomes black. A tRNS transparent grey level (16-bit
or 8-bit grey, RGB, palette) becomes the alpha channel.

A JPEG whose data ends early decodes with its missing rows filled grey (libjpeg fills a block
it has no data for with zero coefficients: exactly 128, 127 for Adobe CMYK). open_image keeps
such an image but emits TruncatedImageWarning and sets `img.info["img2img_truncated"]`. The
test is that the bottom-right corner is exactly that fill: a JPEG whose corner really is flat
50 % grey is reported too (a warning, never a refusal). This finds the rows missing from a
sequential JPEG (what cameras and phones write) and from a progressive one cut in its first
scan; a progressive JPEG cut later decodes whole but blurred and is not reported.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ConfigError, ImageError, TruncatedImageWarning

# Decoded-size cap: a tiny file can declare a huge canvas (decompression bomb).
DEFAULT_MAX_PIXELS = 40_000_000
OFFICIAL_SIZE = 256
# Largest working long side: 6144, the largest multiple of 256 with 6144**2 <= 40 MP.
MAX_LONG_SIDE = math.isqrt(DEFAULT_MAX_PIXELS) // 256 * 256
# Smallest padded side: ResNet generators reflect-pad after two stride-2 convolutions.
MIN_SIDE = 16
ImageSource = str | os.PathLike | bytes | Image.Image


@dataclass(frozen=True)
class Prepared:
    """A network input and what is needed to undo the size policy on the output."""

    tensor: torch.Tensor  # (1, 3, H_pad, W_pad) in [-1, 1]
    content_size: tuple[int, int]  # (w, h) of the resized image inside the padding
    original_size: tuple[int, int]  # (w, h) of the upload
    alpha: Image.Image | None  # mode "L", original size


_READABLE = "What you can do: give a photo file (PNG, JPEG, WebP, TIFF, BMP or GIF)"


def open_image(
    source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS, exif: bool = True
) -> Image.Image:
    """Decode an image (path, bytes or PIL image), upright per EXIF, first frame only.

    `exif=False` keeps the stored orientation, as the classic pipeline does.
    Raises ImageError for empty, unreadable or truncated files and for images whose
    declared size exceeds `max_pixels` (checked before any pixel is decoded).
    """
    if isinstance(source, Image.Image):
        img = source
    else:
        if isinstance(source, bytes):
            if not source:
                raise ImageError("the image is empty (0 bytes)")
            fp, name = io.BytesIO(source), "upload"
        else:
            path = Path(source)
            if not path.is_file():
                raise ImageError(f"image not found: {path}")
            if path.stat().st_size == 0:
                raise ImageError(f"{path.name} is empty (0 bytes)")
            fp, name = path, path.name
        try:
            img = Image.open(fp)
        except Image.DecompressionBombError as e:
            raise ImageError(f"{name} is too large to decode safely: {e}") from e
        except UnidentifiedImageError as e:  # PIL's message repeats the (server) path
            raise ImageError(
                f"{name} is not an image we can read (not an image, or corrupt). {_READABLE}"
            ) from e
        except (OSError, SyntaxError, ValueError) as e:
            raise ImageError(
                f"{name} is not an image we can read (corrupt?): {e}. {_READABLE}"
            ) from e
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(f"image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ImageError(
            f"image is {w}x{h} = {w * h / 1e6:.0f} MP, over the {max_pixels / 1e6:.0f} MP "
            f"limit. What you can do: downscale it below {max_pixels / 1e6:.0f} MP first"
        )
    try:
        img.seek(0)  # animated GIF / multi-page TIFF: the first frame
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError) as e:
        raise ImageError(f"cannot decode the image (truncated or corrupt?): {e}") from e
    missing = missing_jpeg_rows(img)  # before EXIF rotation moves the bottom-right corner
    img = ImageOps.exif_transpose(img) if exif else img
    if missing is not None:
        img.info["img2img_truncated"] = True
        rows = f"the last {missing} of {h} rows" if missing else "parts of the bottom rows"
        warnings.warn(
            TruncatedImageWarning(f"the JPEG is truncated: {rows} are missing (decoded grey)"),
            stacklevel=2,
        )
    return img


# What libjpeg decodes a block without data to (all coefficients zero), per decoded mode.
_JPEG_FILL = {"L": 128, "RGB": 128, "CMYK": 127}  # Adobe CMYK is stored inverted


def missing_jpeg_rows(img: Image.Image) -> int | None:
    """None if `img` is not a JPEG cut short; else how many whole rows at its bottom are fill.

    A cut inside the last row of blocks leaves 0 whole rows missing but still returns 0.
    """
    fill = _JPEG_FILL.get(img.mode)
    if img.format not in ("JPEG", "MPO") or fill is None:
        return None
    w, h = img.size
    corner = np.asarray(img.crop((max(0, w - 4), max(0, h - 4), w, h)))
    if not np.all(corner == fill):
        return None
    missing = 0
    while missing < h:  # upwards in strips of 64 rows: bounded memory on a 40 MP image
        top = max(0, h - missing - 64)
        strip = np.asarray(img.crop((0, top, w, h - missing))).reshape(h - missing - top, -1)
        grey = np.all(strip == fill, axis=1)[::-1]  # bottom row first
        if not grey.all():
            return missing + int(grey.argmin())
        missing += len(grey)
    return missing


_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_HIGH_DEPTH = ("I", "F", *_SIXTEEN_BIT)


def gray_range(mode: str, a: np.ndarray) -> tuple[float, float]:
    """The values of a high-depth grey image (mode I;16*, I or F) that map to 0 and 255."""
    if mode in _SIXTEEN_BIT:
        return 0.0, 65535.0
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    usual = [(0.0, 1.0), (0.0, 255.0)] if mode == "F" else [(0.0, 255.0), (0.0, 65535.0)]
    for low, high in usual:
        if low <= lo and hi <= high:
            return low, high
    return lo, (hi if hi > lo else lo + 1.0)


def _to_8bit_gray(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """A high-depth grey image scaled (not clipped) to mode L, and its tRNS alpha or None."""
    a = np.asarray(img, dtype=np.float64)
    lo, hi = gray_range(img.mode, a)
    a = np.nan_to_num(a, nan=lo, posinf=hi, neginf=lo)
    levels = np.clip(np.round((a - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)
    gray = Image.fromarray(levels)
    key = img.info.get("transparency")  # tRNS: one grey level, in the file's own scale
    if isinstance(key, int | float) and not isinstance(key, bool):
        alpha = np.where(np.asarray(img) == key, 0, 255).astype(np.uint8)
        return gray, Image.fromarray(alpha)
    return gray, None


def split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(RGB image, alpha channel or None) for any PIL mode."""
    try:
        return _split_alpha(img)
    except (ValueError, OSError) as e:
        raise ImageError(f"cannot convert an image of mode {img.mode} to RGB: {e}") from e


def _split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    if img.mode in _HIGH_DEPTH:
        gray, alpha = _to_8bit_gray(img)
        return gray.convert("RGB"), alpha
    if img.mode == "La":  # premultiplied gray+alpha converts only to LA
        img = img.convert("LA")
    if img.mode in ("P", "L", "RGB") and "transparency" in img.info:
        img = img.convert("RGBA")  # tRNS: a transparent colour becomes alpha 0
    if img.mode in ("PA", "LA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        return img.convert("RGB"), img.getchannel("A")
    return (img if img.mode == "RGB" else img.convert("RGB")), None


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> (1, 3, H, W) float32 in [-1, 1]; torchvision ToTensor + Normalize(0.5)."""
    return from_uint8(pixels(img))


def pixels(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> its (1, 3, H, W) uint8 levels."""
    if img.mode != "RGB":
        raise ImageError(f"expected an RGB image, got mode {img.mode}")
    x = torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1)
    return x.contiguous().unsqueeze(0)


def from_uint8(x: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, H, W) -> float32 in [-1, 1], the network's value range."""
    # Same ops, same order as the classic pipeline, so outputs match it bit for bit.
    return x.to(torch.float32).div(255).sub(0.5).div(0.5)


def to_uint8(t: torch.Tensor, truncate: bool = False) -> torch.Tensor:
    """Float (..., 3, H, W) in [-1, 1] -> uint8 levels (clamped), on the tensor's device.

    `truncate` reproduces the classic `((y + 1) / 2 * 255).astype(uint8)`; otherwise values
    are rounded to the nearest level.
    """
    y = t.detach().to(torch.float32).add(1).div(2).mul(255).clamp(0, 255)
    return (y if truncate else y.round()).to(torch.uint8)


def to_image(t: torch.Tensor, truncate: bool = False) -> Image.Image:
    """(3, H, W) or (1, 3, H, W) tensor in [-1, 1] -> RGB PIL image.

    `truncate` reproduces the classic `((y + 1) / 2 * 255).astype(uint8)`; otherwise values
    are rounded to the nearest level.
    """
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"to_image takes one image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"to_image expects (3, H, W), got {tuple(t.shape)}")
    y = to_uint8(t.detach().cpu(), truncate)
    return Image.fromarray(y.permute(1, 2, 0).contiguous().numpy(), mode="RGB")


def working_size(size: tuple[int, int], long_side: int | None) -> tuple[int, int]:
    """(w, h) with the long side scaled to `long_side` (None: unchanged), each side >= 1."""
    w, h = size
    if long_side is None or max(w, h) == long_side:
        return w, h
    scale = long_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def check_long_side(long_side: int | None) -> None:
    """ConfigError unless `long_side` is None (the image's own size) or 1..MAX_LONG_SIDE."""
    if long_side is None:
        return
    if isinstance(long_side, bool) or not isinstance(long_side, numbers.Integral) or long_side < 1:
        raise ConfigError(f"the working size must be a positive integer, got {long_side!r}")
    if long_side > MAX_LONG_SIDE:
        raise ConfigError(
            f"the working size is at most {MAX_LONG_SIDE} px (a {MAX_LONG_SIDE}x{MAX_LONG_SIDE} "
            f"working image is as large as a {DEFAULT_MAX_PIXELS // 1_000_000} MP input), "
            f"got {long_side}"
        )


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (B, C, H, W) on the right/bottom up to multiples of `multiple` (>= MIN_SIDE).

    Reflection keeps the borders natural; when the pad exceeds what reflection allows (a
    thin strip) the edge is replicated instead.
    """
    h, w = x.shape[-2:]
    least = -(-MIN_SIDE // multiple) * multiple
    ph, pw = max(-h % multiple, least - h), max(-w % multiple, least - w)
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def prepare(img: Image.Image, long_side: int | None, multiple: int) -> Prepared:
    """Our size policy, forward half: image -> padded network input."""
    check_long_side(long_side)
    rgb, alpha = split_alpha(img)
    content = working_size(rgb.size, long_side)
    resized = rgb if content == rgb.size else rgb.resize(content, Image.BICUBIC)
    x = pad_to_multiple(to_tensor(resized), multiple)
    return Prepared(x, content, rgb.size, alpha)


def finish(y: torch.Tensor, prep: Prepared) -> Image.Image:
    """Our size policy, return half: (1, 3, H_pad, W_pad) output -> image of the input's size."""
    w, h = prep.content_size
    out = to_image(y[..., :h, :w])
    if out.size != prep.original_size:
        out = out.resize(prep.original_size, Image.BICUBIC)
    if prep.alpha is not None:
        out.putalpha(prep.alpha)
    return out


def prepare_official(img: Image.Image) -> torch.Tensor:
    """Classic test.py input: convert('RGB'), bicubic squash to 256x256, [-1, 1]."""
    rgb = img.convert("RGB")
    return to_tensor(rgb.resize((OFFICIAL_SIZE, OFFICIAL_SIZE), Image.BICUBIC))


def finish_official(y: torch.Tensor) -> Image.Image:
    """Classic tensor2im: 256x256 output, truncating uint8 conversion."""
    return to_image(y, truncate=True)
