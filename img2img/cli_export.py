"""`img2img export REF --format onnx|openvino -o PATH`: a generator as a file other runtimes
run (img2img/export.py says what the graph computes and what the file carries).

Kept out of cli.py, which only registers the subcommand. Every option is checked before the
checkpoint loads: a refusal is one line on stderr and exit 2, like translate's. An existing
output is kept unless --overwrite; the files appear whole or not at all.

    img2img export cyclegan/horse2zebra --format onnx -o horse2zebra.onnx
    img2img export weights/custom/mine --format openvino -o weights/custom/mine
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import cli_args, export
from .atomic import Folders
from .cli_args import refuse
from .errors import Img2ImgError

EPILOG = """examples:
  img2img export cyclegan/horse2zebra --format onnx -o horse2zebra.onnx
  img2img export latest_net_G.pth --format openvino -o out/    (out/openvino_model.xml + .bin)

The graph takes (batch, 3, H, W) float32 in [-1, 1] at any H and W (it pads to the
generator's multiple and crops back) and keeps per-image statistics.
exit status: 0 written; 2 nothing written (a bad option, REF does not load, the model does
not export, the output cannot be written)."""


def add_parser(sub) -> None:
    e = sub.add_parser(
        "export",
        help="export a generator to ONNX or OpenVINO IR",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("checkpoint", metavar="REF", help="what translate --checkpoint takes")
    e.add_argument("--format", required=True, choices=export.FORMATS, dest="fmt")
    e.add_argument(
        "-o",
        "--out",
        required=True,
        type=Path,
        metavar="PATH",
        help="the file (.onnx / .xml, the .bin beside it), or a folder: model.onnx / "
        "openvino_model.xml in it",
    )
    e.add_argument(
        "--norm-stats",
        choices=("image", "running"),
        default="image",
        help="BatchNorm U-Nets: each image's own statistics (default, the pix2pix test "
        "semantics) or the running ones (eval mode)",
    )
    e.add_argument(
        "--fp16-weights",
        action="store_true",
        help="openvino: store the weights in float16 (half the size, slightly different "
        "results; default float32)",
    )
    e.add_argument("--overwrite", action="store_true", help="replace existing output files")


def add_push_flags(p: argparse.ArgumentParser) -> None:
    """push --export FORMAT: exports written into DIR and uploaded beside the weights."""
    p.add_argument(
        "--export",
        action="append",
        default=[],
        choices=export.FORMATS,
        metavar="FORMAT",
        help="also export to FORMAT (onnx, openvino) into DIR and upload it (repeatable); "
        "exports already in DIR are uploaded too, once checked to come from its weights",
    )


def outputs(args: argparse.Namespace) -> list[Path]:
    """The files the export will write."""
    path = export.target(args.out, args.fmt)
    return [path.with_suffix(".bin"), path] if args.fmt == "openvino" else [path]


def check(args: argparse.Namespace) -> str | None:
    """Why the export cannot run as asked (before the checkpoint loads), or None."""
    if args.fp16_weights and args.fmt != "openvino":
        return "--fp16-weights is an OpenVINO option (ONNX keeps float32 weights)"
    path = export.target(args.out, args.fmt)
    if path.suffix != export.SUFFIX[args.fmt]:
        return f"-o {path}: an {args.fmt} export is a {export.SUFFIX[args.fmt]} file"
    for file in outputs(args):
        problem = cli_args.check_file(file, "-o")
        if problem:
            return problem
        if os.path.lexists(file) and not args.overwrite:
            return f"{file} exists (--overwrite replaces it)"
    return None


def command(args: argparse.Namespace) -> int:
    problem = check(args)
    if problem:
        return refuse(problem)
    folders = Folders()  # made for the output, taken back if nothing is written
    try:
        folders.make(export.target(args.out, args.fmt).parent)
        written = export.export(
            args.checkpoint,
            args.fmt,
            args.out,
            norm_stats=args.norm_stats,
            fp16_weights=args.fp16_weights,
        )
    except (Img2ImgError, OSError) as e:
        folders.remove_empty()
        return refuse(str(e))
    for path in written:
        print(path)
    print(f"exported {args.checkpoint} to {args.fmt}", file=sys.stderr)
    return 0
