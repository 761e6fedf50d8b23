"""Every exception the library raises on purpose; one base class, all exported.

Only app.py turns them into user-facing gr.Error; the CLIs print them without a traceback.
Each also derives from the built-in its callers would otherwise catch (ValueError, KeyError,
OSError), so generic handlers keep working. The one warning the library emits lives here too:
it is an Img2ImgError as well, so under `-W error` it is handled like the errors.
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


class SeedError(ConfigError):
    """A dropout seed that is not an integer from 0 to 2**32 - 1 (inference.MAX_SEED)."""


class ImageError(Img2ImgError, ValueError):
    """An input image cannot be decoded, is empty, or is too large to process safely."""


class VideoError(Img2ImgError, ValueError):
    """A video cannot be read (missing, corrupt, no video stream), is over a limit, or
    cannot be written in the requested container."""


class VideoLimitError(VideoError):
    """A clip over a length or frame-size limit: found from its header before any work, or
    while decoding (a header that declares no duration, or too short a one)."""


class Cancelled(Img2ImgError):
    """The caller asked a long computation to stop (its `should_stop` said so); whatever it
    was writing is removed. Not a failure of the input: the app raises it when the client
    that asked for the work has gone."""


class JobTooLongError(Img2ImgError):
    """A job whose estimated time (img2img.speed) is over the limit it was given: refused
    before any work, with what to do instead."""


class DownloadError(Img2ImgError, OSError):
    """A download failed for good (after retries), or its checksum did not match."""


class DatasetError(Img2ImgError, ValueError):
    """A dataset cannot be fetched, extracted or read."""


class MissingDependencyError(Img2ImgError, ImportError):
    """An optional package a feature needs is not installed; the message says what to
    `pip install` (e.g. `datasets` for Hugging Face datasets in and out)."""


class EvaluationError(Img2ImgError, ValueError):
    """An evaluation cannot run as asked: unknown metric, unmatched images, too few samples."""


class NothingScored(EvaluationError):
    """Too few test images could be read to give the scores asked for (exit 1)."""


class OutputError(EvaluationError):
    """An evaluation output (the report, the JSON) could not be written: named as given,
    never as a temporary file (exit 1: the run itself was done)."""


class PushError(Img2ImgError):
    """Publishing to the Hub failed; what was to be published is still on disk."""


class ExportError(Img2ImgError, RuntimeError):
    """A generator could not be exported (ONNX / OpenVINO, img2img.export), or an exported
    file could not be written or read back."""


class TruncatedImageWarning(Img2ImgError, UserWarning):
    """A warning, not an error: the image decoded, but its data ended early (a JPEG cut short
    whose missing rows the decoder filled with grey). processing.open_image also marks such an
    image with `img.info["img2img_truncated"] = True`."""


__all__ = [
    "Cancelled",
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "DownloadError",
    "EvaluationError",
    "ExportError",
    "ImageError",
    "Img2ImgError",
    "JobTooLongError",
    "MissingDependencyError",
    "NothingScored",
    "OutputError",
    "PushError",
    "SeedError",
    "TruncatedImageWarning",
    "UnknownModelError",
    "VideoError",
    "VideoLimitError",
    "WeightsUnavailableError",
]
