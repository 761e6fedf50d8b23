"""The CLI's batch side of `img2img translate`: shards (--shard, torchrun), the manifest, the
output format (--format / --png-compress / --quality) and the photo pipeline (--io-threads).

Kept beside cli.py, which keeps the command's input and output-naming rules: this module adds
the flags and counts every input's outcome once (`Tally`: the summary's counts, the progress
bar, the message, the manifest line), from whichever thread finished it. What a shard is:
shards.py; how the pipeline overlaps decoding, the forward and encoding: pipeline.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import warnings
from pathlib import Path

from PIL import Image
from torch import nn
from tqdm import tqdm

from . import atomic, cli_args
from .atomic import Folders
from .errors import ConfigError, TruncatedImageWarning
from .inference import Translator
from .media.channels import BIT_DEPTHS, check_bits, model_channels
from .media.processing import open_image
from .outformat import FORMATS, PNG_COMPRESS, OutputFormat
from .pipeline import PhotoPipeline, Stages
from .shards import Manifest

IO_THREADS = 2  # decoders, and as many encoders/writers (docs/speed.md: the measured curve)


def add_flags(t: argparse.ArgumentParser) -> None:
    t.add_argument(
        "--format",
        choices=sorted(FORMATS),
        default="png",
        help="photos' output format (default png; clips keep their container)",
    )
    t.add_argument(
        "--png-compress",
        type=cli_args.png_level,
        default=PNG_COMPRESS,
        metavar="N",
        help=f"PNG zlib level 0-9 (default {PNG_COMPRESS}: 3-6x faster than 6, files ~10%% larger)",
    )
    t.add_argument(
        "--quality",
        type=cli_args.quality,
        default=None,
        metavar="Q",
        help="jpg / webp quality 1-100 (default: jpg 95; webp lossless)",
    )
    t.add_argument(
        "--bit-depth",
        type=int,
        choices=BIT_DEPTHS,
        default=8,
        help="bits per channel of PNG outputs: 16 writes 16-bit grey PNG, for 1-channel "
        "(grey) models only (default 8)",
    )
    t.add_argument(
        "--io-threads",
        type=cli_args.io_threads,
        default=IO_THREADS,
        metavar="N",
        help=f"photo decoders and as many writers beside the forward (default {IO_THREADS}; "
        "0: one thread, in turn)",
    )
    t.add_argument(
        "--shard",
        type=cli_args.shard,
        default=None,
        metavar="K/N",
        help="translate share K of N (0-based; e.g. SLURM_ARRAY_TASK_ID/N): the sorted "
        "inputs, every N-th from the K-th; under torchrun RANK/WORLD_SIZE say it",
    )
    t.add_argument(
        "--manifest",
        type=Path,
        default=None,
        metavar="PATH",
        help="append one JSON line per input (input, output, status, seconds, error) here "
        "(default with shards: OUT_DIR/.img2img-manifest/rank-K-of-N.jsonl)",
    )


def output_format(args: argparse.Namespace) -> OutputFormat:
    return OutputFormat(args.format, args.png_compress, args.quality)


def check_output(args: argparse.Namespace, model: nn.Module) -> None:
    """ConfigError for a --bit-depth the format or the loaded generator cannot take."""
    if args.bit_depth == 16 and args.format != "png":
        raise ConfigError(f"--bit-depth 16 writes PNG; --format {args.format} is 8-bit")
    check_bits(args.bit_depth, model_channels(model)[1])


class Tally:
    """Every input's outcome, counted once: written / failed / skipped counts, the progress
    bar, the message on stderr and the manifest line (thread-safe)."""

    def __init__(self, bar: tqdm | None = None, manifest: Manifest | None = None) -> None:
        self.counts = {"written": 0, "failed": 0, "skipped": 0}
        self.bar, self.manifest = bar, manifest
        self._lock = threading.Lock()

    def record(
        self, src: Path, dst: Path | None, status: str, seconds: float, why: str | None = None
    ) -> None:
        with self._lock:
            if self.bar is not None:  # not for inputs the plan left out (already reported)
                self.counts[status] += 1
                self.bar.update(1)
                if why:
                    tqdm.write(f"{status} {src}: {why}", file=sys.stderr)
            if self.manifest is not None:
                self.manifest.record(src, dst, status, seconds, why)


def _decode(path: Path, translator: Translator, official: bool) -> Image.Image:
    """open_image (thread-safe: the truncation warning is read from the image, not caught)."""
    img = open_image(path, translator.max_pixels, exif=not official)
    if img.info.get("img2img_truncated"):
        note = "the JPEG is truncated: its missing rows are decoded grey"
        tqdm.write(f"note: {path}: {note}", file=sys.stderr)
    return img


def save(img: Image.Image, target: Path, args: argparse.Namespace, folders: Folders) -> str | None:
    """Write `img` in the output format through a temporary file; None, or why not."""
    try:
        folders.make(target.parent)  # OUT_DIR, or a mirrored subfolder
        if not args.overwrite and os.path.lexists(target):  # appeared since the plan was made
            return f"cannot write {target}: it was created meanwhile; kept"
        with atomic.atomic_file(target) as f:
            output_format(args).save(img, f)
    except OSError as e:  # disk full, a file in the way: report it, keep going
        return f"cannot write {target}: {e.strerror or e}"
    except (ValueError, TypeError) as e:  # a mode this format cannot hold
        return f"cannot write {target}: {e}"
    return None


def run_photos(translator: Translator, model: nn.Module, jobs, args, folders, tally, translate):
    """Photos through the pipeline; `translate(images)` is the chunk forward (cli.py's)."""
    stages = Stages(
        decode=lambda path: _decode(path, translator, args.official),
        translate=translate,
        write=lambda img, target: save(img, target, args, folders),
        record=tally.record,
    )
    pipeline = PhotoPipeline(stages, threads=args.io_threads)
    with warnings.catch_warnings():  # set here, in the main thread, for the decoders
        warnings.simplefilter("ignore", TruncatedImageWarning)
        pipeline.run(jobs)
    return pipeline
