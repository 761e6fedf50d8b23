"""PIL <-> tensor, the value-range contract, and the size policy. Pure functions.

Contract: networks see float tensors (B, 3, H, W) in [-1, 1]; images are 8-bit PIL images.
`to_tensor` / `to_image` (and, on uint8 level tensors, `pixels` / `from_uint8` / `to_uint8`)
are the only places that convert between the two.

Size policy (ours): keep the aspect ratio, resize the long side to a working size, pad to the
architecture's multiple (reflect where possible), run, crop the padding off, resize back to
the original size and put the original alpha back. The "official" policy reproduces the
classic test pipeline: RGB, bicubic squash to 256x256, truncating uint8 conversion.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

# Decoded-size cap: a tiny file can declare a huge canvas (decompression bomb).
DEFAULT_MAX_PIXELS = 40_000_000
OFFICIAL_SIZE = 256
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
                f"{name} is not an image we can read (not an image, or corrupt)"
            ) from e
        except (OSError, SyntaxError, ValueError) as e:
            raise ImageError(f"{name} is not an image we can read (corrupt?): {e}") from e
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(f"image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ImageError(
            f"image is {w}x{h} = {w * h / 1e6:.0f} MP, over the {max_pixels / 1e6:.0f} MP limit"
        )
    try:
        img.seek(0)  # animated GIF / multi-page TIFF: the first frame
        img.load()
        return ImageOps.exif_transpose(img) if exif else img
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError) as e:
        raise ImageError(f"cannot decode the image (truncated or corrupt?): {e}") from e


def _to_8bit_gray(img: Image.Image) -> Image.Image:
    """High-bit-depth or float single-channel images scaled (not clipped) to 8 bits."""
    a = np.asarray(img, dtype=np.float64)
    if img.mode == "F":
        scale = 255.0 if a.size and np.nanmax(a) <= 1.0 else 1.0
    else:  # I;16*, I: 16-bit data when anything exceeds 8 bits
        scale = 1 / 257 if a.size and a.max() > 255 else 1.0
    a = np.clip(np.nan_to_num(a * scale), 0, 255)
    return Image.fromarray(np.round(a).astype(np.uint8))


def split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(RGB image, alpha channel or None) for any PIL mode."""
    try:
        return _split_alpha(img)
    except (ValueError, OSError) as e:
        raise ImageError(f"cannot convert an image of mode {img.mode} to RGB: {e}") from e


def _split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    if img.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        img = _to_8bit_gray(img)
    if img.mode == "La":  # premultiplied gray+alpha converts only to LA
        img = img.convert("LA")
    if img.mode == "P" and "transparency" in img.info or img.mode in ("PA", "LA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "L" and "transparency" in img.info:
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
