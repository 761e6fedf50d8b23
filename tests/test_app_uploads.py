"""Every kind of bad or unusual upload through the real app: a clear message or a correct
result, and the server keeps serving (issue: reliability)."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from helpers.catalog import RESNET
from helpers.images import random_image
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
from gradio_client import Client, handle_file  # noqa: E402


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _bad_crc_png() -> bytes:
    data = bytearray(_save(random_image(64, 48), "PNG"))
    data[data.index(b"IDAT") + 10] ^= 0xFF
    return bytes(data)


def _bomb() -> bytes:  # 120 bytes that declare a 100000 x 100000 RGB canvas
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: stored 60x40, shown 40x60
    return _save(random_image(60, 40), "JPEG", exif=exif.tobytes())


def _palette_transparent() -> bytes:
    p = random_image(40, 30).convert("P")
    return _save(p, "PNG", transparency=0)


def _frames(fmt: str) -> bytes:
    frames = [random_image(50, 30, seed=i) for i in range(3)]
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:])


def _gray16() -> bytes:
    a = (np.arange(40 * 30).reshape(30, 40) * 50).astype(np.uint16)
    return _save(Image.fromarray(a), "PNG")


# (name, file name, bytes, expected: ("error", regex) or ("ok", (w, h), mode or None))
CASES = [
    ("empty", "empty.png", lambda: b"", ("error", "empty")),
    ("text", "notes.png", lambda: b"hello, this is not a picture", ("error", "not an image")),
    (
        "truncated-jpeg",
        "cut.jpg",
        lambda: _save(random_image(200, 150), "JPEG")[:700],
        ("error", "corrupt|truncated|Truncated"),
    ),
    ("bad-crc-png", "crc.png", _bad_crc_png, ("error", "corrupt|not an image")),
    ("bomb", "bomb.png", _bomb, ("error", "limit|too large")),
    ("1x1", "dot.png", lambda: _save(random_image(1, 1), "PNG"), ("ok", (1, 1), "RGB")),
    (
        "20000x20",
        "strip.png",
        lambda: _save(random_image(20000, 20), "PNG"),
        ("ok", (1024, 1), "RGB"),
    ),  # capped to IMG2IMG_MAX_SIDE, aspect kept
    ("gray16", "gray16.png", _gray16, ("ok", (40, 30), "RGB")),
    (
        "cmyk-jpeg",
        "cmyk.jpg",
        lambda: _save(random_image(48, 32).convert("CMYK"), "JPEG"),
        ("ok", (48, 32), "RGB"),
    ),
    ("palette-alpha", "pal.png", _palette_transparent, ("ok", (40, 30), "RGBA")),
    ("animated-gif", "anim.gif", lambda: _frames("GIF"), ("ok", (50, 30), "RGB")),
    ("multi-tiff", "pages.tiff", lambda: _frames("TIFF"), ("ok", (50, 30), "RGB")),
    ("exif-rotated", "rot.jpg", _exif_rotated, ("ok", (40, 60), "RGB")),
]


@pytest.fixture(scope="module")
def client(app_servers):
    """A client of the standard offline app, shared with the other modules that ask for it."""
    return Client(app_servers.get().url, analytics_enabled=False, verbose=False)


@pytest.mark.parametrize("name,filename,make,expect", CASES, ids=[c[0] for c in CASES])
def test_upload(client, tmp_path, name, filename, make, expect):
    path = tmp_path / filename
    path.write_bytes(make())

    def call():
        return client.predict(handle_file(path), RESNET.id, api_name="/translate")

    if expect[0] == "error":
        with pytest.raises(Exception, match=expect[1]) as e:
            call()
        assert "Traceback" not in str(e.value) and str(tmp_path) not in str(e.value)
    else:
        out = Image.open(call())
        assert out.size == expect[1] and out.mode == expect[2]
    ok = tmp_path / "ok.png"
    random_image(24, 24).save(ok)  # the server still serves
    assert Image.open(client.predict(handle_file(ok), RESNET.id, api_name="/translate")).size == (
        24,
        24,
    )


def test_upload_over_the_size_limit(client, tmp_path):
    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG" + os.urandom(21 * 1024 * 1024))  # app limit: 20 MB
    with pytest.raises(Exception, match="(?i)size|large|413"):
        client.predict(handle_file(big), RESNET.id, api_name="/translate")
