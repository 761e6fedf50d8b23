"""Input hygiene and the size policy: every PIL mode, EXIF, odd sizes, broken files."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from helpers.images import random_image
from helpers.models import tiny_generators
from PIL import Image
from torchvision import transforms

from img2img import ConfigError, ImageError, Translator, TruncatedImageWarning
from img2img.media.processing import (
    DEFAULT_MAX_PIXELS,
    MAX_LONG_SIDE,
    open_image,
    pad_to_multiple,
    prepare_official,
    split_alpha,
    to_image,
    to_tensor,
    working_size,
)
from img2img.models import ARCHITECTURES


def _mode_image(mode: str) -> Image.Image:
    base = random_image(45, 37)
    if mode in ("I;16", "I"):
        a = np.asarray(base.convert("L"), dtype=np.uint16) * 257  # full 16-bit range
        return Image.fromarray(a.astype(np.uint16 if mode == "I;16" else np.int32))
    if mode == "F":
        return Image.fromarray(np.asarray(base.convert("L"), dtype=np.float32) / 255)
    if mode in ("La", "RGBa", "PA"):  # premultiplied / palette+alpha, made from RGBA
        rgba = base.convert("RGBA")
        return rgba.convert("LA").convert("La") if mode == "La" else rgba.convert(mode)
    if mode == "P+transparency":
        p = base.convert("P")
        p.info["transparency"] = 0
        return p
    return base.convert(mode)


MODES = [
    "RGB",
    "RGBA",
    "LA",
    "L",
    "1",
    "P",
    "P+transparency",
    "CMYK",
    "YCbCr",
    "I;16",
    "I",
    "F",
    "PA",
    "RGBa",
    "La",
    "HSV",
    "LAB",
]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_translates(mode):
    img = _mode_image(mode)
    rgb, alpha = split_alpha(img)
    assert rgb.mode == "RGB" and rgb.size == img.size
    has_alpha = mode in ("RGBA", "LA", "P+transparency", "PA", "RGBa", "La")
    assert (alpha is not None) == has_alpha
    out = Translator(device="cpu").translate(tiny_generators()["resnet"], [img])[0]
    assert out.size == img.size
    assert out.mode == ("RGBA" if has_alpha else "RGB")
    if has_alpha:
        assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(alpha))


def test_sixteen_bit_is_scaled_not_clipped():
    a = np.array([[0, 65535], [32896, 257]], dtype=np.uint16)
    rgb, _ = split_alpha(Image.fromarray(a))
    assert np.asarray(rgb)[..., 0].tolist() == [[0, 255], [128, 1]]


@pytest.mark.parametrize(
    "orientation,expect", [(1, (60, 40)), (3, (60, 40)), (6, (40, 60)), (8, (40, 60))]
)
def test_exif_orientation(tmp_path, orientation, expect):
    img = random_image(60, 40)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    img.save(path, exif=exif.tobytes())
    upright = open_image(path)
    assert upright.size == expect
    assert open_image(path, exif=False).size == (60, 40)  # the classic path ignores EXIF
    out = Translator(device="cpu").translate(tiny_generators()["unet"], [upright])[0]
    assert out.size == expect


@pytest.mark.parametrize("size", [(1, 1), (3000, 17), (17, 3000), (257, 255), (2, 700)])
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_odd_sizes(size, arch):
    out = Translator(device="cpu").translate(tiny_generators()[arch], [random_image(*size)])[0]
    assert out.size == size


def test_native_size_keeps_detail():
    """size=None runs at the image's own resolution (no resize on the way in)."""
    t = Translator(device="cpu")
    img = random_image(100, 60)
    model = tiny_generators()["resnet"]
    a = t.translate(model, [img], size=None)[0]
    b = t.translate(model, [img], size=256)[0]
    assert a.size == b.size == (100, 60) and not np.array_equal(np.asarray(a), np.asarray(b))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_decompression_bomb_refused_before_decoding():
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IEND", b"")
    assert len(bomb) < 100
    with pytest.raises(ImageError, match="too large|limit"):
        open_image(bomb)
    with pytest.raises(ImageError, match="limit"):
        open_image(random_image(50, 50), max_pixels=1000)


def _encoded(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    random_image(64, 48).save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    "data,match",
    [
        (b"", "empty"),
        (b"hello, I am text", "not an image"),
        (_encoded("JPEG")[:300], "truncated|corrupt|Truncated"),
        (_encoded("PNG")[:-40], "truncated|corrupt"),
    ],
    ids=["empty", "text", "truncated-jpeg", "truncated-png"],
)
def test_broken_uploads(data, match):
    with pytest.raises(ImageError, match=match):
        open_image(data)


def test_bad_png_crc():
    data = bytearray(_encoded("PNG"))
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF  # damage compressed data; CRC no longer matches
    with pytest.raises(ImageError):
        open_image(bytes(data))


def test_multi_frame_uses_first_frame():
    frames = [Image.new("RGB", (20, 10), c) for c in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    img = open_image(buf.getvalue())
    assert img.size == (20, 10)
    assert split_alpha(img)[0].getpixel((0, 0))[0] > 200  # red


def test_tensor_contract_round_trip():
    img = random_image(31, 17)
    x = to_tensor(img)
    assert x.shape == (1, 3, 17, 31) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert np.array_equal(np.asarray(to_image(x)), np.asarray(img))
    with pytest.raises(ImageError):
        to_tensor(img.convert("L"))
    assert to_image(torch.full((3, 2, 2), 5.0)).getpixel((0, 0)) == (255, 255, 255)  # clamped


def test_official_input_equals_torchvision_transforms():
    img = random_image(300, 177)
    tv = transforms.Compose(
        [
            transforms.Resize([256, 256], transforms.InterpolationMode.BICUBIC),
            transforms.ToTensor(),
            transforms.Normalize((0.5,) * 3, (0.5,) * 3),
        ]
    )
    assert torch.equal(prepare_official(img), tv(img).unsqueeze(0))


def test_size_helpers():
    assert working_size((3000, 17), 256) == (256, 1)
    assert working_size((100, 50), None) == (100, 50)
    assert working_size((100, 50), 256) == (256, 128)
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    assert pad_to_multiple(x, 4).shape == (1, 1, 16, 16)  # MIN_SIDE
    assert pad_to_multiple(torch.zeros(1, 1, 20, 37), 4).shape == (1, 1, 20, 40)
    thin = pad_to_multiple(torch.zeros(1, 3, 1, 256), 256)  # reflection impossible here
    assert thin.shape == (1, 3, 256, 256)


def _gray(values, dtype) -> list[list[int]]:
    rgb, alpha = split_alpha(Image.fromarray(np.array(values, dtype=dtype)))
    assert alpha is None
    return np.asarray(rgb)[..., 0].tolist()


@pytest.mark.parametrize(
    "values,dtype,expect",
    [
        # float: 0..1 -> x255; else 0..255 as levels; else the image's own min..max
        ([[0, 0.5], [1, 0.25]], np.float32, [[0, 128], [255, 64]]),
        ([[0, 100], [255, 3]], np.float32, [[0, 100], [255, 3]]),
        ([[0, 250], [500, 1000]], np.float32, [[0, 64], [128, 255]]),
        ([[-1, 0], [1, 0.5]], np.float32, [[0, 128], [255, 191]]),
        ([[np.nan, np.inf], [-np.inf, 0.5]], np.float32, [[0, 255], [0, 128]]),
        # 32-bit int: 0..255 as levels; else 0..65535 (16-bit data); else min..max
        ([[0, 255], [7, 128]], np.int32, [[0, 255], [7, 128]]),
        ([[0, 65535], [32896, 257]], np.int32, [[0, 255], [128, 1]]),
        ([[0, 70000], [-70000, 35000]], np.int32, [[128, 255], [0, 191]]),
        ([[100_000, 100_000]], np.int32, [[0, 0]]),  # constant, outside every range: black
        # 16-bit: always its own range, so a dark 16-bit image stays dark
        ([[0, 255], [200, 65]], np.uint16, [[0, 1], [1, 0]]),
        ([[0, 65535], [32896, 257]], np.uint16, [[0, 255], [128, 1]]),
    ],
    ids=["f-unit", "f-levels", "f-wide", "f-negative", "f-nonfinite"]
    + ["i-levels", "i-16bit", "i-wide", "i-constant", "i16-dark", "i16-full"],
)
def test_high_depth_grey_is_scaled_never_clipped(values, dtype, expect):
    assert _gray(values, dtype) == expect


def _png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


@pytest.mark.parametrize("depth", ["16-bit grey", "8-bit RGB"])
def test_trns_transparency_becomes_alpha(depth):
    a = (np.arange(48 * 40).reshape(40, 48) * 27).astype(np.uint16)
    if depth == "16-bit grey":
        img, key, hidden = Image.fromarray(a), int(a[5, 7]), a == a[5, 7]
    else:
        img = random_image(48, 40)
        key = img.getpixel((7, 5))
        hidden = np.all(np.asarray(img) == key, axis=-1)
    decoded = open_image(_png_bytes(img, transparency=key))
    assert decoded.info["transparency"] == key
    rgb, alpha = split_alpha(decoded)
    assert alpha is not None and rgb.mode == "RGB"
    assert np.array_equal(np.asarray(alpha) == 0, hidden) and hidden.any()
    out = Translator(device="cpu").translate(tiny_generators()["resnet"], [decoded])[0]
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out.getchannel("A")), alpha)


def _jpeg(mode: str = "RGB", size: tuple[int, int] = (64, 48), **kw) -> bytes:
    buf = io.BytesIO()
    random_image(*size).convert(mode).save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


def _cut_in_first_scan(data: bytes) -> bytes:
    """A progressive JPEG cut 300 bytes into its first (DC) scan, with its end marker."""
    return data[: data.index(b"\xff\xda") + 300] + b"\xff\xd9"


@pytest.mark.parametrize(
    "data",
    [
        _jpeg()[:1200] + b"\xff\xd9",
        _jpeg(subsampling=0)[: len(_jpeg(subsampling=0)) * 3 // 4] + b"\xff\xd9",
        _jpeg("L")[:900] + b"\xff\xd9",
        _jpeg("CMYK")[:3000] + b"\xff\xd9",
        _cut_in_first_scan(_jpeg(size=(256, 192), progressive=True)),
    ],
    ids=["rgb-420", "rgb-444", "grey", "cmyk", "progressive"],
)
def test_jpeg_with_missing_rows_warns_and_is_flagged(data):
    with pytest.warns(TruncatedImageWarning, match="truncated") as caught:
        img = open_image(data)
    assert img.info["img2img_truncated"] is True
    assert "rows" in str(caught[0].message)
    assert split_alpha(img)[0].size == img.size  # still usable


@pytest.mark.parametrize(
    "data",
    [_jpeg(), _jpeg("L"), _jpeg("CMYK"), _jpeg(progressive=True), _png_bytes(random_image(8, 8))],
    ids=["rgb", "grey", "cmyk", "progressive", "png"],
)
def test_complete_images_do_not_warn(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = open_image(data)
    assert "img2img_truncated" not in img.info


def test_working_size_is_capped():
    model, img = tiny_generators()["resnet"], random_image(8, 8)
    for size in (MAX_LONG_SIDE + 1, 0, -5, 2.5):
        with pytest.raises(ConfigError, match="working size"):
            Translator(device="cpu").translate(model, [img], size=size)
    assert MAX_LONG_SIDE % 256 == 0 and MAX_LONG_SIDE**2 <= DEFAULT_MAX_PIXELS
    assert (MAX_LONG_SIDE + 256) ** 2 > DEFAULT_MAX_PIXELS
