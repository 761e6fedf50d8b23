"""Exceptions raised by the library. Only app.py turns them into user-facing gr.Error."""

from __future__ import annotations


class Img2ImgError(Exception):
    """Base class of every error this library raises on purpose."""


class CheckpointError(Img2ImgError, ValueError):
    """A checkpoint file is missing, unreadable, of an unknown family, or does not match."""


class ImageError(Img2ImgError, ValueError):
    """An input image cannot be decoded, is empty, or is too large to process safely."""
