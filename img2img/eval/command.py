"""The `img2img evaluate` command: its options, the run they describe, its outputs.

Every option and the --json / --report targets are checked before the run (cli_args.py). A
test image that cannot be read is skipped, listed in the JSON and the report, and the run
goes on: exit 1 at its end. A failed or stopped run takes back what it wrote: no half-written
report, no folder it made. The scores themselves: evaluate.py.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from .. import __version__, cli_args, data
from ..atomic import Folders, write_text
from ..checkpoints.catalog import load_catalog
from ..errors import EvaluationError, Img2ImgError, OutputError
from ..inference import check_device
from ..media.processing import OFFICIAL_SIZE
from . import metrics as table
from .evaluate import NothingScored, Settings, choose_metrics, evaluate, find_split
from .report import Report


def _size(value: str) -> int | str:
    n = cli_args.size(value)
    return "native" if n is None else n


def _metric_names(value: str) -> str:
    """--metrics: names from the table (whether they suit the split is checked once it is
    found: choose_metrics)."""
    try:
        choose_metrics(value or ",", "paired")
    except EvaluationError as e:
        raise argparse.ArgumentTypeError(f"--metrics {value!r}: {e}") from None
    return value


def add_parser(subparsers) -> None:
    """Register `evaluate` on the img2img command line's subparsers."""
    e = subparsers.add_parser("evaluate", help="score a generator on a test split")
    e.add_argument("--checkpoint", required=True, help="checkpoint file or folder, or catalog id")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, metavar="DIR", help="dataset folder")
    src.add_argument("--dataset", metavar="NAME", help="public dataset (facades, pix2pix/maps...)")
    e.add_argument("--split", default="test", type=cli_args.split_name,
                   help="split folder name (default: test)")  # fmt: skip
    e.add_argument("--direction", choices=("AtoB", "BtoA"), default=None,
                   help="default: the catalog entry's, else AtoB")  # fmt: skip
    e.add_argument("--size", type=_size, default=None,
                   help="working long side (or 'native') instead of the official 256x256 "
                   "protocol; compared at the target's size")  # fmt: skip
    paired, unpaired = (",".join(table.defaults(k)) for k in ("paired", "unpaired"))
    e.add_argument("--metrics", default=None, type=_metric_names,
                   help=f"comma-separated from {','.join(table.METRICS)} (default: {paired} "
                   f"for paired data, {unpaired} for unpaired)")  # fmt: skip
    e.add_argument("--json", type=Path, metavar="OUT", help="write scores and settings here")
    e.add_argument("--report", type=Path, metavar="DIR", help="write an HTML results page")
    e.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best)")


def _direction(checkpoint: str, given: str | None) -> str:
    """--direction, else the catalog entry's, else AtoB."""
    entry = load_catalog().get(checkpoint)
    default = entry.preprocessing.get("direction", "AtoB") if entry is not None else "AtoB"
    return given or default


def _fetch(name: str) -> Path:
    """A public dataset by name. One that both sources publish (facades, maps) is taken from
    the pix2pix archive: the same images, aligned with their targets, so every metric
    applies; `cyclegan/maps` asks for the unpaired one."""
    family = "pix2pix" if name in data.DATASETS["pix2pix"] else "cyclegan"
    return data.fetch_dataset(name, family)


def _finite(value):
    """JSON has no inf/NaN: they are written as the strings "inf", "-inf", "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"img2img": __version__, "torch": torch.__version__}
    for name in ("torchmetrics", "torch-fidelity"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def run(args: argparse.Namespace, report: Report | None = None) -> dict[str, object]:
    """The evaluation `args` describe (its thumbnails and page into `report`); raises
    Img2ImgError subclasses for what to fix."""
    direction = _direction(args.checkpoint, args.direction)
    root = args.data if args.data is not None else _fetch(args.dataset)
    split = find_split(root, args.split, direction)
    metrics = choose_metrics(args.metrics, split.kind)
    official = args.size is None
    protocol = "official" if official else f"size {args.size}"
    settings = Settings(args.checkpoint, str(root), args.split, direction, protocol, metrics)
    settings.versions = _versions()
    if report is not None:
        report.columns = ("input", "output", "target") if split.kind == "paired" else report.columns
    size = OFFICIAL_SIZE if official else None if args.size == "native" else args.size
    doc = evaluate(args.checkpoint, split, metrics, settings, size, official, args.device, report)
    if report is not None:
        title = f"{Path(args.checkpoint).name} on {Path(root).name}/{args.split} ({direction})"
        report.write(title, doc["mean"], doc["settings"], doc["skipped"])
    return doc


def _check(args: argparse.Namespace) -> str | None:
    """What refuses the run before it starts: the device, the --json and --report targets."""
    if args.device is not None:
        try:
            check_device(args.device)
        except Img2ImgError as e:
            return str(e)
    if args.json is not None and (problem := cli_args.check_file(args.json, "--json")):
        return problem
    return args.report is not None and cli_args.check_folder(args.report, "--report") or None


def _write_json(path: Path, doc: dict, folders: Folders) -> None:
    text = json.dumps(_finite(doc), indent=2, allow_nan=False)
    try:
        folders.make(path.parent)
        write_text(path, text + "\n")
    except OSError as e:  # named as given (the error itself names the temporary)
        raise OutputError(f"--json {path} cannot be written: {e.strerror or e}") from e


def command(args: argparse.Namespace) -> int:
    """`img2img evaluate`: 0 on success; 1 if test images were skipped (or too few could be
    read); 2 (one line) when it cannot run. A failed run takes back what it wrote."""
    if problem := _check(args):
        return cli_args.refuse(problem)
    folders = Folders()
    report = Report(args.report, folders=folders) if args.report is not None else None
    try:
        doc = run(args, report)
        if args.json is not None:
            _write_json(args.json, doc, folders)
    except BaseException as e:  # a failure, or a stop signal: nothing half-done is left
        if report is not None:
            report.discard()
        folders.remove_empty()
        if not isinstance(e, Img2ImgError):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1 if isinstance(e, NothingScored | OutputError) else 2
    means = ", ".join(f"{k} {v:.4f}" for k, v in doc["mean"].items())
    print(f"{doc['images']} images: {means}")
    if doc["skipped"]:
        tests = sum(s["side"] == "test image" for s in doc["skipped"])
        print(f"{doc['images']} of {doc['images'] + tests} test images scored; "
              f"{len(doc['skipped'])} skipped (unreadable: listed above, in the JSON and the "
              "report)", file=sys.stderr)  # fmt: skip
        return 1
    return 0
