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

A test image that cannot be read (or translated) is skipped, named with the reason and listed
in the document (`skipped`); the command line (eval/command.py) exits 1 for it at the end.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from .. import data
from ..errors import DatasetError, EvaluationError, Img2ImgError, NothingScored
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
    skipped: list[dict[str, str]] = []
    bar = tqdm(total=len(split.inputs), unit="img", desc="evaluate", file=sys.stderr)
    for start in range(0, len(split.inputs), CHUNK):
        chunk = _readable(split, range(start, min(start + CHUNK, len(split.inputs))), skipped)
        outs = _translated(translator, model, chunk, (size, official), skipped, split.names)
        for (i, img, target), out in zip(chunk, outs, strict=True):
            if out is None:
                continue
            row, shown = {"name": split.names[i]}, {"input": img, "output": out}
            if target is not None:
                target = _reference(target, official)
                if out.size != target.size:  # --size: compare at the target's size
                    out = out.resize(target.size, Image.BICUBIC)
                row |= scorer.pair(pixels(out), pixels(target))
                scorer.features(pixels(target), real=True)
                shown["target"] = target
            scorer.features(pixels(out), real=False)
            rows.append(row)
            if report is not None:
                report.add(split.names[i], shown, {m: v for m, v in row.items() if m != "name"})
        bar.update(min(CHUNK, len(split.inputs) - start))
    bar.close()
    reals = len(split.targets) if split.kind == "unpaired" else len(rows)
    if split.kind == "unpaired" and scorer.inception is not None:
        reals = 0
        for ref in tqdm(split.targets, unit="img", desc="real images", file=sys.stderr):
            try:
                real = data.load_rgb(ref, "real (target) image")
            except DatasetError as e:
                skipped.append(_skip(ref[0].name, str(e), "real image"))
                continue
            scorer.features(pixels(_reference(real, official)), real=True)
            reals += 1
    _enough(rows, reals, on_sets, len(split.inputs))
    settings.kid_subset_size = min(KID_SUBSET_SIZE, len(rows), reals)
    values, stds = scorer.distribution()
    doc = _document(rows, [m.name for m in scorer.per_image], values, stds, split, settings)
    doc["skipped"] = skipped
    return doc


def _skip(name: str, reason: str, side: str = "test image") -> dict[str, str]:
    tqdm.write(f"skipped {side} {name}: {reason}", file=sys.stderr)
    return {"name": name, "reason": reason, "side": side}


def _readable(split: Split, indices: range, skipped: list) -> list[tuple]:
    """(index, input, target or None) of the images of `indices` that can be read."""
    chunk = []
    for i in indices:
        try:
            img = data.load_rgb(split.inputs[i], "test image (input)")
            paired = split.kind == "paired"
            target = data.load_rgb(split.targets[i], "test image (target)") if paired else None
        except DatasetError as e:
            skipped.append(_skip(split.names[i], str(e)))
            continue
        chunk.append((i, img, target))
    return chunk


def _translated(translator, model, chunk, protocol, skipped, names) -> list:
    """Outputs of the chunk's inputs; None for an image that cannot be translated."""
    kwargs = {"size": protocol[0], "official": protocol[1]}
    try:
        return translator.translate(model, [img for _, img, _ in chunk], **kwargs)
    except Img2ImgError:  # one odd image: find it, keep the rest
        pass
    outs = []
    for i, img, _ in chunk:
        try:
            outs.append(translator.translate(model, [img], **kwargs)[0])
        except Img2ImgError as e:
            outs.append(None)
            skipped.append(_skip(names[i], f"cannot translate it: {e}"))
    return outs


def _enough(rows: list, reals: int, on_sets: list[str], total: int) -> None:
    """NothingScored when the images left after skipping cannot give the scores."""
    if not rows:
        raise NothingScored(f"none of the {total} test images could be read")
    if on_sets and (len(rows) < 2 or reals < 2):
        raise NothingScored(
            f"{'/'.join(on_sets)} need at least 2 images on each side: {len(rows)} inputs "
            f"and {reals} real images could be read"
        )


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
