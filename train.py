"""Train pix2pix or CycleGAN, resume exactly, export generators in the img2img format.

    python train.py pix2pix --dataset facades --direction BtoA --out runs/facades
    python train.py cyclegan --dataset horse2zebra --out runs/horse2zebra
    python train.py pix2pix --data DIR --out RUN --steps 20000     # later: ... --resume
    torchrun --nproc_per_node 4 train.py cyclegan --dataset maps --out runs/maps
    python train.py distill --teacher REF --data PHOTOS --out RUN [--student NAME] [--ngf N]
    python train.py cut --data DIR --out RUN [--fast] [--nce-layers 0,4,8,12,16] [--no-nce-idt]

config -> data -> nets -> loop(step functions) -> checkpoints -> export / push
(img2img/training/trainer.py; each family's recipe in img2img/training/recipes.py).
RUN_DIR gets config.json, checkpoints/last.pt (the whole training state), weights/ (each
generator: config.json + model.safetensors + README.md), metrics.jsonl, tb/ (TensorBoard)
and train.lock (one train.py per RUN_DIR). SIGTERM or Ctrl-C: the current step ends, a
checkpoint and the generators are saved, exit 0 (--resume continues exactly); a second
signal aborts at once (exit 143 / 130).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from typing import Any

from img2img import sigstack
from img2img.errors import Img2ImgError
from img2img.training.config import add_config_flags
from img2img.training.recipes import RECIPES
from img2img.training.trainer import run


def parse_args(argv: list[str]) -> tuple[str, dict[str, Any], bool]:
    """(family, the config flags that were given, --resume)."""
    parser = argparse.ArgumentParser(
        prog="train.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "family", choices=tuple(RECIPES), help="what to train (its preset's defaults)"
    )
    add_config_flags(parser, skip=("family",))
    parser.add_argument(
        "--epochs", type=int, default=argparse.SUPPRESS, metavar="N",
        help="total epochs: sets --n-epochs N - N//2 and --n-epochs-decay N//2",
    )  # fmt: skip
    parser.add_argument(
        "--student", default=argparse.SUPPRESS, metavar="NAME",
        help="distill: the student's architecture (sets --generator; default mobile_resnet)",
    )  # fmt: skip
    parser.add_argument(
        "--fast", action="store_true", default=argparse.SUPPRESS,
        help="cut: FastCUT (sets --preset fastcut: NCE x10, no identity NCE, flips)",
    )  # fmt: skip
    parser.add_argument(
        "--resume", action="store_true", help="continue RUN_DIR/checkpoints/last.pt"
    )
    args = vars(parser.parse_args(argv))
    family, resume = args.pop("family"), args.pop("resume")
    if "student" in args:
        if "generator" in args:
            parser.error("--student is the distill name of --generator: give one of them")
        args["generator"] = args.pop("student")
    if args.pop("fast", False):
        if family != "cut" or "preset" in args:
            parser.error("--fast is train.py cut's --preset fastcut: give one of them, for cut")
        args["preset"] = "fastcut"
    if "epochs" in args:
        total = args.pop("epochs")
        if total < 1 or {"n_epochs", "n_epochs_decay"} & args.keys():
            parser.error("--epochs takes N >= 1 and replaces --n-epochs / --n-epochs-decay")
        args.update(n_epochs=total - total // 2, n_epochs_decay=total // 2)
    return family, args, resume


def error_message(e: BaseException) -> str:
    """Our message; a DataLoader worker re-raises ours with its traceback in front of it."""
    text = str(e)
    if "Original Traceback" in text:
        text = text.strip().splitlines()[-1].split(": ", 1)[-1]
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sigstack.off_altstack(signal.SIGINT)  # Ctrl-C after OpenVINO freed a model (sigstack.py)
    family, given, resume = parse_args(argv)
    try:
        return run(family, given, resume, "python train.py " + shlex.join(argv))
    except Img2ImgError as e:
        print(f"error: {error_message(e)}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full while logging, unreadable folder, ...: no traceback
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before training started (then it stops cleanly)
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
