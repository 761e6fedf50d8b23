"""Every exception the library raises on purpose; one base class, all exported.

Only app.py turns them into user-facing gr.Error; the CLIs print them without a traceback.
Each also derives from the built-in its callers would otherwise catch (ValueError, KeyError,
OSError), so generic handlers keep working.
"""

from __future__ import annotations


class Img2ImgError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigError(Img2ImgError, ValueError):
    """A configuration value that cannot work: a generator argument, a train.py flag, a plan."""


class CheckpointError(Img2ImgError, ValueError):
    """A checkpoint file is missing, unreadable, of an unknown family, or does not match."""


class WeightsUnavailableError(CheckpointError):
    """No source of a catalog model could provide its weights."""


class UnknownModelError(Img2ImgError, KeyError):
    """A model id that is not in the catalog."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class ImageError(Img2ImgError, ValueError):
    """An input image cannot be decoded, is empty, or is too large to process safely."""


class VideoError(Img2ImgError, ValueError):
    """A video cannot be read (missing, corrupt, no video stream), is over a limit, or
    cannot be written in the requested container."""


class DownloadError(Img2ImgError, OSError):
    """A download failed for good (after retries), or its checksum did not match."""


class DatasetError(Img2ImgError, ValueError):
    """A dataset cannot be fetched, extracted or read."""


class PushError(Img2ImgError):
    """Publishing to the Hub failed; what was to be published is still on disk."""


__all__ = [
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "DownloadError",
    "ImageError",
    "Img2ImgError",
    "PushError",
    "UnknownModelError",
    "VideoError",
    "WeightsUnavailableError",
]
