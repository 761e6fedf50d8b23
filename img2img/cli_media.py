"""The CLI's native-resolution tiles, video clips and LeRobot datasets (`img2img translate
--tile`, `clip.mp4`, `DATASET_DIR`).

Kept beside cli.py so that the command's argument and output rules stay in one place there:
this module adds the flags, says which inputs are clips and what their outputs are called,
and runs the three kinds of job through img2img.media.tiles, .video and .lerobot.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from torch import nn
from tqdm import tqdm

from . import cli_args
from .errors import Img2ImgError
from .inference import Translator, size_multiple

# Clip suffixes (the containers img2img.media.video writes); listed here so that `--help` and
# folder expansion need no PyAV import.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
CODECS = ("av1", "h264", "hevc", "vp9", "mpeg4")  # = media.encoding.CODECS
UNSET = object()  # --size not given: 256, or the image's own size with --tile
TILE_STATS, CLIP_STATS = ("shared", "window"), ("shared", "running", "frame")


def add_flags(t: argparse.ArgumentParser) -> None:
    t.add_argument(
        "--tile",
        type=cli_args.tile,
        nargs="?",
        const=0,
        default=None,
        metavar="N",
        help="run at the image's own resolution (or --size) in overlapping NxN windows, "
        "blended without seams (N default: the model's training crop, 256)",
    )
    t.add_argument(
        "--stats",
        choices=("shared", "window", "running", "frame"),
        default=None,
        help="norm statistics: tiles 'shared' (default: measured once on the whole image) or "
        "'window'; clips 'shared' (default: from the first frames), 'running' or 'frame'",
    )
    t.add_argument(
        "--max-seconds",
        type=cli_args.seconds,
        default=None,
        help="refuse clips longer than this (default: no limit)",
    )
    t.add_argument(
        "--codec",
        choices=CODECS,
        default=None,
        help="clips' video codec (default: the input's, where this FFmpeg writes it into "
        "the container; else the container's usual one, with a note)",
    )
    t.add_argument(
        "--gop",
        type=_gop,
        default=None,
        metavar="N",
        help="clips: a keyframe every N frames (default: the input's spacing)",
    )
    t.add_argument(
        "--camera",
        action="append",
        default=None,
        metavar="KEY",
        help="a LeRobot dataset given as INPUT: translate only this camera's videos "
        "(repeatable; default: every camera)",
    )


def _gop(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number of frames, 1 or more, not {text!r}")
    return value


def check_stats(args: argparse.Namespace, paths: Sequence[Path]) -> str | None:
    """Why --stats (or --camera) does not apply to these inputs, or None (checked before any
    work)."""
    if getattr(args, "camera", None):  # datasets are translated before (translate_datasets)
        return "--camera applies to LeRobot datasets (a folder with meta/info.json)"
    if args.stats is None:
        return None
    clips = any(is_video(p) for p in paths)
    tiled = args.tile is not None and not all(is_video(p) for p in paths)
    if tiled and args.stats not in TILE_STATS:
        return (
            f"--stats {args.stats} applies to clips: the windows of a photo (--tile) take "
            f"{' or '.join(TILE_STATS)}"
        )
    if clips and args.stats not in CLIP_STATS:
        return f"--stats {args.stats} applies to --tile: clips take {', '.join(CLIP_STATS)}"
    return None


def check_model(args: argparse.Namespace, model: nn.Module) -> None:
    """ConfigError for a --tile the loaded generator cannot take (before any input runs)."""
    if args.tile:
        cli_args.check_tile(args.tile, size_multiple(model))


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def output_suffix(path: Path) -> str:
    """A clip keeps its container (clip.mp4 -> clip.mp4); an image becomes a PNG."""
    return path.suffix.lower() if is_video(path) else ".png"


def working_size(args: argparse.Namespace) -> int | None:
    """The working long side: as given, else 256 (the image's own size with --tile)."""
    if args.size is UNSET:
        return None if getattr(args, "tile", None) is not None else 256
    return args.size


def translate_images(
    translator: Translator, model: nn.Module, images: list[Image.Image], args: argparse.Namespace
) -> list[Image.Image]:
    """--tile: each image on its own, in windows (memory bounded by the window)."""
    from .media.tiles import translate_tiled

    stats = args.stats or "shared"
    return [
        translate_tiled(
            translator,
            model,
            img,
            tile=args.tile or None,
            size=working_size(args),
            stats=stats,
            progress=False,
        )  # fmt: skip
        for img in images
    ]


def translate_clip(
    translator: Translator, model: nn.Module, src: Path, dst: Path, args: argparse.Namespace
) -> str | None:
    """Translate one clip into `dst` (written atomically); None, or why it failed."""
    from .media.video import translate_video

    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        info = translate_video(
            translator, model, src, dst, size=working_size(args),
            stats=args.stats or "shared", progress=sys.stderr.isatty(),
            max_seconds=args.max_seconds, codec=args.codec, gop=args.gop,
        )  # fmt: skip
    except (Img2ImgError, OSError) as e:
        return f"failed {src}: {e}"
    for note in info.notes:
        tqdm.write(f"note: {dst}: {note}", file=sys.stderr)
    return None


def translate_datasets(args: argparse.Namespace) -> int | None:
    """INPUTs that are LeRobot dataset roots (meta/info.json): each written to OUT_DIR/<its
    name> with its camera videos translated (media/lerobot.py); the exit status. None when
    no INPUT is a dataset (cli.py then translates files as usual)."""
    roots = [Path(p) for p in args.inputs if (Path(p) / "meta" / "info.json").is_file()]
    if not roots:
        return None
    if len(roots) != len(args.inputs):
        return cli_args.refuse("a LeRobot dataset is translated on its own: give datasets only")
    from .media.lerobot import translate_dataset

    try:
        translator = Translator(device=args.device)
        model = translator.load(args.checkpoint)
    except Img2ImgError as e:
        return cli_args.refuse(str(e))
    failed = 0
    for root in roots:
        dst = args.out / root.resolve().name
        try:
            done = translate_dataset(
                translator, model, root, dst, cameras=args.camera, overwrite=args.overwrite,
                size=working_size(args), stats=args.stats or "shared",
                progress=sys.stderr.isatty(), max_seconds=args.max_seconds,
                codec=args.codec, gop=args.gop,
            )  # fmt: skip
        except (Img2ImgError, OSError) as e:
            failed += 1
            tqdm.write(f"failed {root}: {e}", file=sys.stderr)
            continue
        for note in done.notes:
            tqdm.write(f"note: {dst}: {note}", file=sys.stderr)
        for key, change in done.changed.items():
            tqdm.write(f"note: {dst}: meta/info.json {key} now says {change}", file=sys.stderr)
        print(
            f"{dst}: {done.videos} videos of {', '.join(done.cameras)} translated", file=sys.stderr
        )
    return 1 if failed else 0
