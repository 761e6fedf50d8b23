"""What comes in from a visitor: photos (and how large they may be) and seeds.

Every way in meets the same caps before anything is decoded (issue 10): photos at most
MAX_UPLOAD bytes and MAX_PIXELS decoded, request bodies at most MAX_BODY (serving.BodyCap),
seeds whole numbers from 0 to MAX_SEED.
"""

from __future__ import annotations

import base64
import binascii
import os

import gradio as gr

MAX_UPLOAD = 20 * 1024**2  # bytes: photos, however they come in (checkpoints: their own cap)
# Decoded-size cap handed to open_image: room for the 48-50 MP photos that fit MAX_UPLOAD, at
# most ~200 MB of RGBA per decode, and only IMG2IMG_CONCURRENCY decodes run at once.
MAX_PIXELS = 50_000_000
# Request bodies other than Gradio's multipart upload: a MAX_UPLOAD image as base64, plus room.
MAX_BODY = 4 * -(-MAX_UPLOAD // 3) + 64 * 1024
MAX_SEED = 2**32 - 1  # = img2img.inference.MAX_SEED (torch keeps 32 bits; torch-free here)
TOO_LARGE = f"Request too large: images are limited to {MAX_UPLOAD // 2**20} MB."


class Refused(str):
    """An upload refused by `raw_upload`: its message, raised by the event (`photo_or_error`)
    inside its own error handling, so that it shows in the status area with the rest, not
    as a toast from the preprocess step."""


def photo_or_error(upload):
    """The upload as `raw_upload` passed it on; a refused one raises its message."""
    if isinstance(upload, Refused):
        raise gr.Error(str(upload))
    return upload


def _too_big(size: int) -> Refused:
    return Refused(
        f"The photo is too large: {size / 2**20:.1f} MB, over the {MAX_UPLOAD / 2**20:.0f} MB "
        "upload limit."
    )


def raw_upload(payload):
    """Image preprocess that hands the upload to our decoder untouched.

    Stock gr.Image opens every upload with PIL before the event function runs, so a corrupt
    file or a decompression bomb becomes an opaque "could not preprocess" error. We return
    the uploaded file's path (or the bytes of a webcam/clipboard data URL) and let
    img2img.media.processing.open_image decode it, with its size cap and precise messages.
    The byte cap holds for every way in, checked before anything is decoded: Gradio's upload
    route enforces max_file_size, but an inline data URL in the event's JSON, or a URL that
    Gradio fetches for the caller, would not meet it. A refusal is passed on as `Refused`
    (the event raises it: one place for errors, the status area).
    """
    if payload is None:
        return None
    if payload.url and payload.url.startswith("data:"):
        header, _, encoded = payload.url.partition(",")
        if len(encoded) * 3 // 4 > MAX_UPLOAD:  # base64: 4 characters per 3 bytes
            return _too_big(len(encoded) * 3 // 4)
        if not header.endswith(";base64"):
            return Refused("An inline image must be a base64 data URL.")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return Refused("The inline image is not valid base64.")
    if payload.path and os.path.isfile(payload.path):
        if (size := os.path.getsize(payload.path)) > MAX_UPLOAD:
            return _too_big(size)
    return payload.path


def _seed_as_sent(payload):
    """Seed preprocess: the value as sent, so that _seed() gives the one clear message
    (stock gr.Number fails on text, and on huge numbers only at torch.manual_seed)."""
    return payload


def raw_image(**kwargs) -> gr.Image:
    component = gr.Image(**kwargs)
    # An instance override, not a subclass: Gradio writes a .pyi stub beside the module of
    # every Component subclass, which would fail in a read-only app directory.
    component.preprocess = raw_upload
    return component


def seed_number(value: int, **kwargs) -> gr.Number:
    component = gr.Number(value, precision=0, **kwargs)
    component.preprocess = _seed_as_sent  # an instance override, as in raw_image
    return component


def parse_seed(value, none_below_zero: bool) -> int | None:
    """The seed as an int in 0 .. MAX_SEED (negative: None, where the API allows it)."""
    if isinstance(value, str):  # a client may send the number as text
        try:
            value = float(value)
        except ValueError:
            pass
    if value is None and none_below_zero:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and value == value and abs(value) != float("inf") and value == int(value):
        seed = int(value)
        if seed < 0 and none_below_zero:
            return None
        if 0 <= seed <= MAX_SEED:
            return seed
    low = "-1 (none) or 0" if none_below_zero else "0"
    raise gr.Error(f"The seed must be a whole number from {low} to 2^32 - 1 ({MAX_SEED}).")
