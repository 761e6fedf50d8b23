"""Command line for img2img.

    img2img translate INPUT [INPUT ...] -o OUT_DIR --checkpoint ID_OR_PATH
    img2img push DIR --repo-id NS/NAME
    img2img mirror MODEL_ID --repo-id NS/NAME
    img2img models

(`python -m img2img ...` is the same program.)

translate: each output is OUT_DIR/<input stem>.png. Unreadable inputs are reported and
skipped; the exit status is 1 if any input failed, 2 if nothing could run at all (bad
checkpoint, no inputs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from . import evaluate, publish
from .catalog import load_catalog
from .errors import Img2ImgError
from .inference import Translator
from .processing import open_image

CHUNK = 8  # images decoded and translated together (bounded memory for big folders)


def _size(value: str) -> int | None:
    if value == "native":
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--size takes a positive integer or 'native': {value}")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="img2img", description="img2img command line")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("translate", help="translate image files or folders with a generator")
    t.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    t.add_argument("-o", "--out", required=True, type=Path, metavar="OUT_DIR")
    t.add_argument(
        "--checkpoint", required=True, help="checkpoint file or directory, or a catalog id"
    )
    t.add_argument(
        "--official",
        action="store_true",
        help="reproduce the classic test.py pipeline bit for bit (256x256 squash, fp32)",
    )
    t.add_argument(
        "--size",
        type=_size,
        default=256,
        help="working long side in pixels, or 'native' (default 256); output keeps input size",
    )
    t.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best)")
    t.add_argument(
        "--seed",
        type=int,
        default=None,
        help="dropout variation with this seed (ignored with --official: dropout stays off)",
    )
    p = sub.add_parser("push", help="upload a folder in our format to the Hub")
    p.add_argument("directory", type=Path, metavar="DIR")
    p.add_argument("--repo-id", required=True, metavar="NS/NAME")
    p.add_argument("--private", action="store_true")
    m = sub.add_parser("mirror", help="convert a catalog model to our format and publish it")
    m.add_argument("model_id", metavar="MODEL_ID")
    m.add_argument(
        "--repo-id",
        default=None,
        metavar="NS/NAME",
        help="default: $IMG2IMG_HUB_NAMESPACE/img2img-<family>-<name>",
    )
    m.add_argument("--private", action="store_true")
    sub.add_parser("models", help="list the catalog ids")
    evaluate.add_parser(sub)
    return parser


def expand_inputs(inputs: Sequence[str]) -> Iterator[Path]:
    """Files as given; folders expanded to their image files (sorted, not recursive)."""
    extensions = {ext.lower() for ext in Image.registered_extensions()}
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and not child.name.startswith("."):
                    if child.suffix.lower() in extensions:
                        yield child
        else:
            yield path


def output_paths(paths: Sequence[Path], out_dir: Path) -> list[Path]:
    """OUT_DIR/<stem>.png; a repeated stem gets its extension appended (a.jpg -> a.jpg.png)."""
    seen: set[str] = set()
    result = []
    for p in paths:
        name = p.stem if p.stem not in seen else p.name
        seen.add(name)
        result.append(out_dir / f"{name}.png")
    return result


def translate_command(args: argparse.Namespace) -> int:
    paths = list(expand_inputs(args.inputs))
    if not paths:
        print("error: no input images found", file=sys.stderr)
        return 2
    translator = Translator(device=args.device, plan="eager" if args.official else None)
    try:
        model = translator.load(args.checkpoint)
    except Img2ImgError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = list(zip(paths, output_paths(paths, args.out), strict=True))
    seed = None if args.official else args.seed
    failed = 0
    bar = tqdm(total=len(paths), unit="img", desc="translate", file=sys.stderr)
    for start in range(0, len(jobs), CHUNK):
        batch, outs = [], []
        for path, target in jobs[start : start + CHUNK]:
            try:
                batch.append(open_image(path, translator.max_pixels, exif=not args.official))
                outs.append(target)
            except Img2ImgError as e:
                failed += 1
                tqdm.write(f"skipped {path}: {e}", file=sys.stderr)
                bar.update(1)
        if not batch:
            continue
        results = translator.translate(
            model, batch, size=args.size, seed=seed, official=args.official
        )
        for img, target in zip(results, outs, strict=True):
            try:
                img.save(target, format="PNG")
            except OSError as e:  # disk full, a folder in the way: report it, keep going
                failed += 1
                if target.is_file():  # no truncated PNG left behind
                    target.unlink()
                tqdm.write(f"cannot write {target}: {e.strerror or e}", file=sys.stderr)
            bar.update(1)
    bar.close()
    done = len(paths) - failed
    print(f"{done} of {len(paths)} images written to {args.out}", file=sys.stderr)
    return 1 if failed else 0


def publish_command(args: argparse.Namespace) -> int:
    """push / mirror: errors from the Hub are reported without a traceback."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        if args.command == "push":
            url = publish.push(args.directory, args.repo_id, private=args.private)
        else:
            repo_id = args.repo_id or publish.default_mirror_repo(args.model_id)
            url = publish.mirror(args.model_id, repo_id, private=args.private)
    except (Img2ImgError, HfHubHTTPError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(url)
    return 0


def models_command() -> int:
    for entry in load_catalog().values():
        note = "  (not yet published)" if entry.project else ""
        print(f"{entry.id:36s} {entry.label}{note}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "translate":
        return translate_command(args)
    if args.command in ("push", "mirror"):
        return publish_command(args)
    if args.command == "evaluate":
        return evaluate.command(args)
    return models_command()


if __name__ == "__main__":
    sys.exit(main())
