"""`img2img evaluate`: quality numbers for any generator on any test split.

    img2img evaluate --checkpoint C (--data DIR | --dataset NAME) [--split test]
        [--direction AtoB|BtoA] [--size N] [--metrics l1,psnr,ssim,lpips,fid,kid]
        [--json OUT] [--report DIR] [--device DEV]

Which metrics exist, which need targets and which are the defaults is the metric table's
(metrics.py). Paired data (DIR/<split>/ holding A|B images side by side): each A is
translated and compared with its B (the image metrics: L1, PSNR, SSIM by default, LPIPS),
and the set metrics (FID/KID) between the outputs and the Bs on request. Unpaired data
(DIR/<split>A/ + DIR/<split>B/): the set metrics between the translated A images and the
real B images.

By default the papers' protocol: the `--official` pipeline (256x256 bicubic squash of the
input, per-image BatchNorm statistics, dropout off, truncating uint8 output), compared with
the target squashed to 256x256 the same way. `--size N` runs our size policy at working
size N instead (output at the input's size) and compares at the target's size. Generators
always run in fp32 (the eager plan), so scores do not depend on the hardware's bf16 support.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from .. import __version__, data
from ..atomic import write_text
from ..checkpoints.catalog import load_catalog
from ..errors import DatasetError, EvaluationError, Img2ImgError
from ..inference import Translator
from ..media.processing import OFFICIAL_SIZE, pixels
from . import metrics as table
from . import perceptual, quality
from .metrics import KID_SUBSET_SIZE, KID_SUBSETS
from .report import Report

CHUNK = 8  # images translated together


@dataclass(frozen=True)
class Split:
    """The images of one test split, in evaluation order."""

    kind: str  # "paired" or "unpaired"
    inputs: list[data.ImageRef]  # what the generator translates
    targets: list[data.ImageRef]  # paired: the i-th input's target; unpaired: real images
    names: list[str]  # per input, relative to the split folder


@dataclass
class Settings:
    """What an evaluation ran with (written into the JSON and the report)."""

    checkpoint: str
    data: str
    split: str
    direction: str
    protocol: str  # "official" or "size N" / "size native"
    metrics: list[str]
    device: str = ""
    kid_subsets: int = KID_SUBSETS
    kid_subset_size: int = KID_SUBSET_SIZE
    versions: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- the split


def _relative(ref: data.ImageRef, folder: Path) -> str:
    return ref[0].relative_to(folder).as_posix()


def find_split(root: Path, split: str, direction: str) -> Split:
    """`root/<split>/` (aligned A|B) or `root/<split>A/` + `root/<split>B/` (unpaired)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    aligned, a_dir, b_dir = root / split, root / f"{split}A", root / f"{split}B"
    if aligned.is_dir():
        files = data.list_images(aligned)
        a, b = [(f, "left") for f in files], [(f, "right") for f in files]
        a, b = (b, a) if direction == "BtoA" else (a, b)
        return Split("paired", a, b, [_relative(r, aligned) for r in a])
    if a_dir.is_dir() and b_dir.is_dir():
        a_dir, b_dir = (b_dir, a_dir) if direction == "BtoA" else (a_dir, b_dir)
        a = [(f, "full") for f in data.list_images(a_dir)]
        b = [(f, "full") for f in data.list_images(b_dir)]
        return Split("unpaired", a, b, [_relative(r, a_dir) for r in a])
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    raise DatasetError(
        f"{root} has no split {split!r}: expected {split}/ (A|B pairs) or {split}A/ + "
        f"{split}B/ (unpaired); folders there: {found or 'none'}"
    )


def choose_metrics(requested: str | None, kind: str) -> list[str]:
    """The comma-separated `--metrics` (validated against the table) or the table's
    defaults for the split's kind."""
    if not requested:
        return table.defaults(kind)
    names = [m.strip().lower() for m in requested.split(",") if m.strip()]
    unknown = [m for m in names if m not in table.METRICS]
    if unknown or not names:
        known = ", ".join(table.METRICS)
        raise EvaluationError(f"unknown metrics {unknown}; choose from {known}")
    wrong = [m for m in names if "target" in table.METRICS[m].needs]
    if kind == "unpaired" and wrong:
        usable = ",".join(m.name for m in table.METRICS.values() if "target" not in m.needs)
        raise EvaluationError(
            f"{', '.join(wrong)} compare each output with its target, and this split is "
            f"unpaired (no targets): use {usable}"
        )
    return list(dict.fromkeys(names))


# ----------------------------------------------------------------------------- the run


class _Scorer:
    """Per-image scores and the feature sets for the set metrics, accumulated image by image."""

    def __init__(self, metrics: list[str], device: torch.device) -> None:
        rows = [table.get(m) for m in metrics]
        self.per_image = [m for m in rows if m.scope == "image"]
        # per-image scores in the order asked, set metrics in the table's (fid before kid)
        self.set_level = [m for m in table.of_scope("set") if m.name in metrics]
        self.nets = table.load_networks(rows, device)  # each network once, table order
        wanted = any("features" in m.needs for m in rows)
        self.inception = self.nets["inception"] if wanted else None
        self.fake: list[torch.Tensor] = []
        self.real: list[torch.Tensor] = []

    def pair(self, out: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """uint8 (1, 3, H, W) output and target -> this image's scores."""
        scores = table.image_scores(self.per_image, out, target, self.nets)
        return {k: v.item() for k, v in scores.items()}

    def features(self, image: torch.Tensor, real: bool) -> None:
        if self.inception is not None:
            feats = perceptual.inception_features(self.inception, image)
            (self.real if real else self.fake).append(feats)

    def distribution(self) -> tuple[dict[str, float], dict[str, float]]:
        """The set metrics between the collected feature sets: ({name: value}, {name: std})
        (a std over subsets where the metric gives one: KID)."""
        if self.inception is None:
            return {}, {}
        real, fake = torch.cat(self.real), torch.cat(self.fake)
        values: dict[str, float] = {}
        stds: dict[str, float] = {}
        for m in self.set_level:
            values[m.name], std = table.set_score(m, real, fake)
            if std is not None:
                stds[m.name] = std
        return values, stds


def _reference(img: Image.Image, official: bool) -> Image.Image:
    """A target or real image as compared: squashed to 256x256 under the official protocol."""
    size = (OFFICIAL_SIZE, OFFICIAL_SIZE)
    return img.resize(size, Image.BICUBIC) if official and img.size != size else img


def evaluate(
    checkpoint: str,
    split: Split,
    metrics: list[str],
    settings: Settings,
    size: int | None = OFFICIAL_SIZE,
    official: bool = True,
    device: str | None = None,
    report: Report | None = None,
) -> dict[str, object]:
    """Translate the split's inputs with `checkpoint` and score them; the JSON document."""
    on_sets = [m.upper() for m in metrics if "features" in table.get(m).needs]
    if split.kind == "unpaired" or on_sets:
        if len(split.inputs) < 2 or len(split.targets) < 2:
            raise EvaluationError(
                f"{'/'.join(on_sets)} need{'s' if len(on_sets) == 1 else ''} at least 2 "
                f"images on each side: {len(split.inputs)} inputs, "
                f"{len(split.targets)} real images"
            )
    # fp32 eager always: scores must not depend on whether a CPU or GPU has fast bf16.
    translator = Translator(device=device, plan="eager")
    model = translator.load(checkpoint)
    settings.device = str(translator.device)
    scorer = _Scorer(metrics, translator.device)
    rows: list[dict[str, object]] = []
    bar = tqdm(total=len(split.inputs), unit="img", desc="evaluate", file=sys.stderr)
    for start in range(0, len(split.inputs), CHUNK):
        refs = split.inputs[start : start + CHUNK]
        images = [data.load_rgb(r) for r in refs]
        outs = translator.translate(model, images, size=size, official=official)
        for i, img, out in zip(range(start, start + len(refs)), images, outs, strict=True):
            row, shown = {"name": split.names[i]}, {"input": img, "output": out}
            if split.kind == "paired":
                target = _reference(data.load_rgb(split.targets[i]), official)
                if out.size != target.size:  # --size: compare at the target's size
                    out = out.resize(target.size, Image.BICUBIC)
                row |= scorer.pair(pixels(out), pixels(target))
                scorer.features(pixels(target), real=True)
                shown["target"] = target
            scorer.features(pixels(out), real=False)
            rows.append(row)
            if report is not None:
                report.add(split.names[i], shown, {m: v for m, v in row.items() if m != "name"})
            bar.update(1)
    bar.close()
    if split.kind == "unpaired" and scorer.inception is not None:
        for ref in tqdm(split.targets, unit="img", desc="real images", file=sys.stderr):
            scorer.features(pixels(_reference(data.load_rgb(ref), official)), real=True)
    settings.kid_subset_size = min(KID_SUBSET_SIZE, len(split.inputs), len(split.targets))
    values, stds = scorer.distribution()
    return _document(rows, [m.name for m in scorer.per_image], values, stds, split, settings)


def _document(rows, per_image, values, stds, split: Split, settings: Settings) -> dict:
    mean = {m: quality.mean([r[m] for r in rows]) for m in per_image} | values
    doc = {"mean": mean, "per_image": rows, "images": len(rows)}
    doc |= {f"{name}_std": std for name, std in stds.items()}  # kid_std
    if split.kind == "unpaired":
        doc["real_images"] = len(split.targets)
    doc["settings"] = asdict(settings)
    if "kid" not in settings.metrics:
        for key in ("kid_subsets", "kid_subset_size"):
            del doc["settings"][key]
    return doc


# ----------------------------------------------------------------------------- the CLI


def _size(value: str) -> int | str:
    if value == "native":
        return value
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"--size takes a positive integer or 'native': {value}")
    return int(value)


def add_parser(subparsers) -> None:
    """Register `evaluate` on the img2img command line's subparsers."""
    e = subparsers.add_parser("evaluate", help="score a generator on a test split")
    e.add_argument("--checkpoint", required=True, help="checkpoint file or folder, or catalog id")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, metavar="DIR", help="dataset folder")
    src.add_argument("--dataset", metavar="NAME", help="public dataset (facades, pix2pix/maps...)")
    e.add_argument("--split", default="test", help="split folder name (default: test)")
    e.add_argument("--direction", choices=("AtoB", "BtoA"), default=None,
                   help="default: the catalog entry's, else AtoB")  # fmt: skip
    e.add_argument("--size", type=_size, default=None,
                   help="working long side (or 'native') instead of the official 256x256 "
                   "protocol; compared at the target's size")  # fmt: skip
    paired, unpaired = (",".join(table.defaults(k)) for k in ("paired", "unpaired"))
    e.add_argument("--metrics", default=None,
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


def run(args: argparse.Namespace) -> dict[str, object]:
    """The evaluation `args` describe; raises Img2ImgError subclasses for what to fix."""
    direction = _direction(args.checkpoint, args.direction)
    root = args.data if args.data is not None else _fetch(args.dataset)
    split = find_split(root, args.split, direction)
    metrics = choose_metrics(args.metrics, split.kind)
    official = args.size is None
    protocol = "official" if official else f"size {args.size}"
    settings = Settings(args.checkpoint, str(root), args.split, direction, protocol, metrics)
    settings.versions = _versions()
    columns = ("input", "output", "target") if split.kind == "paired" else ("input", "output")
    report = Report(args.report, columns) if args.report is not None else None
    size = OFFICIAL_SIZE if official else None if args.size == "native" else args.size
    doc = evaluate(args.checkpoint, split, metrics, settings, size, official, args.device, report)
    if report is not None:
        title = f"{Path(args.checkpoint).name} on {Path(root).name}/{args.split} ({direction})"
        report.write(title, doc["mean"], doc["settings"])
    return doc


def command(args: argparse.Namespace) -> int:
    """`img2img evaluate`: 0 on success, 2 (one-line message) when it cannot run."""
    try:
        doc = run(args)
        if args.json is not None:
            text = json.dumps(_finite(doc), indent=2, allow_nan=False)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            write_text(args.json, text + "\n")
    except Img2ImgError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the JSON or report folder cannot be written
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    means = ", ".join(f"{k} {v:.4f}" for k, v in doc["mean"].items())
    print(f"{doc['images']} images: {means}")
    return 0
