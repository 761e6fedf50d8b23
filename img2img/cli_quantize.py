"""`img2img quantize REF --photos DIR`: calibrate the `openvino-int8` plan for one generator.

The plan (img2img/plans/int8.py) never calibrates by itself: this command is the explicit step.
It reads the photos of DIR (sorted by name; the input domain the model will translate, never
the request images), holds out every fifth one (at least one), calibrates NNCF on the rest at
the working size the app and `translate` use (long side --size, padded to the architecture's
multiple), caches the int8 model in the OpenVINO disk cache under the weights' key, then
measures the plan on the held-out photos against the eager fp32 forward and prints the PSNR,
so the user sees what int8 costs on their own pictures before choosing it
(`IMG2IMG_PLAN=openvino-int8`).

Kept out of cli.py, which only registers the subcommand. A refusal is one line on stderr and
exit 2, like translate's; unreadable photos are skipped with a line each.

    img2img quantize cyclegan/horse2zebra --photos horses/
    IMG2IMG_PLAN=openvino-int8 img2img translate horses/ -o out/ --checkpoint cyclegan/horse2zebra
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from pathlib import Path

from .cli_args import refuse
from .errors import Img2ImgError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
HOLD_OUT_EVERY = 5  # every fifth photo measures, the others calibrate

EPILOG = """examples:
  img2img quantize cyclegan/horse2zebra --photos horses/
  img2img quantize weights/custom/mine --photos photos/ --count 64 --size 512
  IMG2IMG_PLAN=openvino-int8 img2img translate photos/ -o out/ --checkpoint weights/custom/mine

Needs openvino and nncf (pip install 'img2img[int8]'). The int8 model is cached under
IMG2IMG_CACHE (or IMG2IMG_OPENVINO_CACHE); the plan finds it by the weights' key.
exit status: 0 cached and measured; 2 nothing cached (a bad option, REF does not load, no
readable photos, openvino or nncf missing)."""


def add_parser(sub) -> None:
    q = sub.add_parser(
        "quantize",
        help="calibrate the openvino-int8 plan for a generator on your photos",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("checkpoint", metavar="REF", help="what translate --checkpoint takes")
    q.add_argument(
        "--photos", required=True, type=Path, metavar="DIR",
        help="a folder of photos of the model's input domain (not the ones it will translate)",
    )  # fmt: skip
    q.add_argument(
        "--count", type=int, default=40, metavar="N",
        help="use at most N photos of DIR, in name order (default 40: 32 calibrate, 8 measure)",
    )  # fmt: skip
    q.add_argument(
        "--size", type=int, default=256, metavar="PX",
        help="the long side the photos are calibrated at (default 256, the app's Fast size)",
    )  # fmt: skip


def _photos(folder: Path, count: int) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:count]


def psnr(y, ref) -> float:
    """PSNR of y against ref, both in [-1, 1] (peak-to-peak 2)."""
    mse = float(((y.float() - ref.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(4.0 / mse)


def command(args: argparse.Namespace) -> int:
    if not args.photos.is_dir():
        return refuse(f"--photos {args.photos}: no such folder")
    if args.count < 2:
        return refuse("--count must be at least 2 (photos to calibrate on and to measure)")
    if not 32 <= args.size <= 4096:
        return refuse("--size must be from 32 to 4096 px")
    files = _photos(args.photos, args.count)
    if len(files) < 2:
        return refuse(f"--photos {args.photos}: fewer than 2 photos ({', '.join(IMAGE_SUFFIXES)})")

    import torch

    from . import Translator
    from .checkpoints.hub import load_model
    from .media.processing import open_image, prepare
    from .models.registry import size_multiple
    from .plans import int8

    try:
        model = load_model(args.checkpoint).eval()
        if model.config.get("in_channels", 3) != 3:
            return refuse("quantize calibrates RGB generators only (this one reads "
                          f"{model.config['in_channels']} channels)")  # fmt: skip
        multiple = size_multiple(model.config)
        tensors = []
        for path in files:
            try:
                tensors.append(prepare(open_image(path), args.size, multiple).tensor)
            except Img2ImgError as e:
                print(f"skipped {path}: {e}", file=sys.stderr)
        if len(tensors) < 2:
            return refuse(f"--photos {args.photos}: fewer than 2 readable photos")
        held = tensors[HOLD_OUT_EVERY - 1 :: HOLD_OUT_EVERY] or tensors[-1:]
        calibration = [x for x in tensors if not any(x is h for h in held)]
        with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars: stdout is ours
            entry = int8.quantize(model, calibration)
        translator = Translator(device="cpu", plan="openvino-int8")
        scores = []
        with torch.no_grad():
            for x in held:
                scores.append(psnr(translator.forward(model, x), model(x)))
    except Img2ImgError as e:
        return refuse(str(e))
    mean = sum(scores) / len(scores)
    print(entry)
    print(
        f"int8 model cached for {args.checkpoint}: calibrated on {len(calibration)} photos at "
        f"{args.size} px; on {len(held)} held-out photos the openvino-int8 plan is {mean:.1f} dB "
        f"PSNR from eager fp32 (worst {min(scores):.1f} dB). Use it with "
        "IMG2IMG_PLAN=openvino-int8.",
        file=sys.stderr,
    )
    return 0
