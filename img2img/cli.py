"""Command line for img2img.

    img2img translate INPUT [INPUT ...] -o OUT_DIR --checkpoint ID_OR_PATH [--overwrite]
    img2img push DIR --repo-id NS/NAME [--export onnx|openvino]
    img2img mirror MODEL_ID --repo-id NS/NAME
    img2img models
    img2img export REF --format onnx|openvino -o PATH      (cli_export.py)
    img2img quantize REF --photos DIR                      (cli_quantize.py)

(`python -m img2img ...` is the same program.)

translate writes one PNG per input (--format jpg / webp: that suffix) and never loses data;
torchrun or --shard K/N gives each process a share (shards.py: strided over the sorted
inputs, names from the whole list, a JSONL manifest per shard); photos run through a
pipeline that overlaps decoding and writing with the forward (pipeline.py, cli_batch.py):
- Where outputs go. Inputs from one folder (a folder, or files that share one): each output
  is OUT_DIR/<input stem>.png. Inputs from several folders: the folders are mirrored below
  OUT_DIR, relative to the deepest folder they share (`a/x.jpg b/c/x.jpg -o out` writes
  out/a/x.png and out/b/c/x.png), so same-named files from different folders never meet.
  Inputs of one folder that share a stem keep their extension (x.jpg, x.png -> x.jpg.png,
  x.png.png); a name still taken (also one differing only in case) gets -2, -3, ... in input
  order. A file named twice (also through a symlink or a hard link) is translated once.
- Inputs are never targets: an output path that is an input (the same path, or the same file
  through a symlink or a hard link) is not written, even with --overwrite; that input fails.
- An existing output file is kept and the input reported as skipped; --overwrite replaces it.
  Outputs are written to a temporary file renamed into place: a full disk or a kill never
  leaves a half-written PNG under an output name, nor removes the previous one.
- Two words in messages and the summary: "skipped" = not attempted (no such file, not an
  image we can read, or its output exists already); "failed" = attempted and errored (cannot
  be translated, cannot be written, or its output would be an input).
- The summary counts the files actually written. A JPEG cut short is translated (its missing
  rows are grey) with a one-line note.

- Every option is checked before anything runs (cli_args.py); OUT_DIR and the mirrored
  folders are made only when a file goes into them. SIGTERM / Ctrl-C abort the item being
  written, remove its temporary and exit 128 + signal (cli_stop.py); temporaries left by a
  killed run are removed by the next run into the same folders.

Exit status: 0 if every input was translated and written; 1 if any input was skipped or
failed; 2 if nothing could run (a bad option or checkpoint, no inputs: none of them exists or
a folder holds no image, OUT_DIR a file or not creatable); 143 / 130
when stopped by SIGTERM / SIGINT. When no input is left to translate (every output exists),
the checkpoint is not even loaded.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from torch import nn
from tqdm import tqdm

from . import (
    allocator,
    atomic,
    cli_args,
    cli_batch,
    cli_export,
    cli_media,
    cli_quantize,
    shards,
    sigstack,
)
from .atomic import Folders
from .checkpoints import publish
from .checkpoints.catalog import load_catalog
from .cli_args import refuse
from .cli_datasets import translate as translate_hf
from .cli_stop import Stopped, stop_on_signals
from .errors import Img2ImgError
from .eval import command as evaluate
from .inference import MAX_SEED, Translator, check_device, has_dropout
from .media.processing import MAX_LONG_SIDE

TRANSLATE_EPILOG = """examples:
  img2img translate photo.jpg -o out/ --checkpoint cyclegan/horse2zebra
  img2img translate photos/ -o out/ --checkpoint latest_net_G.pth --size native
  img2img translate labels.png -o out/ --checkpoint pix2pix/facades_label2photo --official
  img2img translate big.jpg -o out/ --checkpoint cyclegan/summer2winter_yosemite --tile
  img2img translate clip.mp4 -o out/ --checkpoint pix2pix/day2night

skipped: not attempted (no such file, not an image we can read, or its output exists);
failed: attempted and errored (cannot translate, cannot write, its output is an input).
exit status: 0 every input written; 1 some skipped or failed; 2 nothing could run (bad
option or checkpoint, no inputs, OUT_DIR a file); 143 / 130 stopped by SIGTERM / Ctrl-C."""


def version() -> str:
    """The installed distribution's version (the package's own when run from a checkout)."""
    from . import __version__

    try:
        return importlib.metadata.version("img2img-gan")
    except importlib.metadata.PackageNotFoundError:  # a checkout on sys.path, not installed
        return f"{__version__} (not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    parser = cli_args.OneLineParser(prog="img2img", description="img2img command line")
    parser.add_argument("--version", action="version", version=f"img2img-gan {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "translate",
        help="translate image files or folders with a generator",
        epilog=TRANSLATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders")
    cli_args.add_dataset_flags(t)  # or --dataset, and its options: cli_datasets.py
    t.add_argument("-o", "--out", required=True, type=Path, metavar="OUT_DIR")
    t.add_argument(
        "--checkpoint",
        required=True,
        help="a catalog id (see `img2img models`), or a checkpoint file or directory",
    )
    t.add_argument(
        "--official",
        action="store_true",
        help="the classic test.py pipeline with dropout off: RGB, 256x256 bicubic squash, "
        "BatchNorm with each image's own statistics, truncating 8-bit output, fp32 (classic "
        "test.py also keeps dropout on, which makes its outputs random; this is its "
        "deterministic form, reproduced bit for bit)",
    )
    t.add_argument(
        "--size",
        type=cli_args.size,
        default=cli_media.UNSET,
        help=f"working long side in pixels (1 to {MAX_LONG_SIDE}), or 'native' (default "
        "256; with --tile the image's own size); output keeps input size",
    )
    t.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best)")
    t.add_argument(
        "--seed",
        type=cli_args.seed,
        default=None,
        help=f"dropout variation with this seed, 0 to {MAX_SEED} (ignored with --official: "
        "dropout stays off)",
    )
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs (default: keep them and skip those inputs); "
        "inputs are never overwritten",
    )
    cli_media.add_flags(t)
    cli_batch.add_flags(t)
    p = sub.add_parser("push", help="upload a folder in our format to the Hub")
    p.add_argument("directory", type=Path, metavar="DIR")
    p.add_argument("--repo-id", required=True, type=cli_args.repo_id, metavar="NS/NAME")
    p.add_argument("--private", action="store_true")
    cli_export.add_push_flags(p)
    m = sub.add_parser("mirror", help="convert a catalog model to our format and publish it")
    m.add_argument("model_id", metavar="MODEL_ID")
    m.add_argument(
        "--repo-id",
        default=None,
        type=cli_args.repo_id,
        metavar="NS/NAME",
        help="default: $IMG2IMG_HUB_NAMESPACE/img2img-<family>-<name>",
    )
    m.add_argument("--private", action="store_true")
    sub.add_parser(
        "models", help="list the catalog ids, which have weights on disk, and your own models"
    )
    evaluate.add_parser(sub)
    cli_export.add_parser(sub)
    cli_quantize.add_parser(sub)
    return parser


def expand_inputs(inputs: Sequence[str]) -> Iterator[Path]:
    """Files as given; folders expanded to their image files (sorted, not recursive)."""
    extensions = {ext.lower() for ext in Image.registered_extensions()}
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and not child.name.startswith("."):
                    if child.suffix.lower() in extensions or cli_media.is_video(child):
                        yield child
        else:
            yield path


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, through symlinks: equal for hard links too."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def unique_inputs(paths: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """`paths` without repeats of one file (by inode, else by resolved path), and notes."""
    seen: dict[object, Path] = {}
    unique, notes = [], []
    for p in paths:
        key = _file_id(p) or os.path.realpath(p)
        if key in seen:
            notes.append(f"note: {p} is the same file as {seen[key]}: translated once")
        else:
            seen[key] = p
            unique.append(p)
    return unique, notes


def _folders(paths: Sequence[Path]) -> list[Path]:
    """Each input's folder relative to the deepest folder all inputs share ('.' for one)."""
    parents = [Path(os.path.abspath(p.parent)) for p in paths]
    try:
        common = Path(os.path.commonpath(parents))
    except ValueError:  # different drives (Windows): mirror from each drive's root
        return [Path(p.drive.rstrip(":") or "_", *p.parts[1:]) for p in parents]
    return [p.relative_to(common) for p in parents]


def output_paths(paths: Sequence[Path], out_dir: Path, suffix: str = ".png") -> list[Path]:
    """One distinct output path per input, by the rule in the module docstring (photos get
    `suffix`, clips keep their container)."""
    folders = _folders(paths)
    stems = Counter((f, p.stem.casefold()) for f, p in zip(folders, paths, strict=True))
    taken: set[str] = set()  # casefolded: distinct on a case-insensitive disk too
    result = []
    for folder, p in zip(folders, paths, strict=True):
        name = p.stem if stems[folder, p.stem.casefold()] == 1 else p.name
        end = cli_media.output_suffix(p) if cli_media.is_video(p) else suffix
        target, k = out_dir / folder / f"{name}{end}", 2
        while str(target).casefold() in taken:
            target, k = out_dir / folder / f"{name}-{k}{end}", k + 1
        taken.add(str(target).casefold())
        result.append(target)
    return result


@dataclass
class Plan:
    """What translate will do: the jobs to run, and the inputs it will not translate."""

    jobs: list[tuple[Path, Path]] = field(default_factory=list)  # (input, output)
    failed: list[tuple[Path, Path, str]] = field(default_factory=list)  # (input, output, why)
    skipped: list[tuple[Path, Path, str]] = field(default_factory=list)  # existing outputs


def plan_outputs(
    paths: Sequence[Path],
    out_dir: Path,
    overwrite: bool,
    suffix: str = ".png",
    share: Sequence[int] | None = None,
) -> Plan:
    """Pair inputs with outputs (named from all `paths`), for the inputs at positions `share`
    (default: all); an output that is an input, or a folder, fails its input; an existing
    output is skipped unless `overwrite`."""
    input_ids = {_file_id(p) for p in paths} - {None}
    input_paths = {os.path.realpath(p) for p in paths}
    targets = output_paths(paths, out_dir, suffix)
    plan = Plan()
    for i in range(len(paths)) if share is None else share:
        path, target = paths[i], targets[i]
        if _file_id(target) in input_ids or os.path.realpath(target) in input_paths:
            why = f"its output {target} is an input, never overwritten"
            plan.failed.append((path, target, why))
        elif target.is_dir():
            plan.failed.append((path, target, f"cannot write {target}: a folder is in the way"))
        elif os.path.lexists(target) and not overwrite:
            plan.skipped.append((path, target, f"{target} exists (--overwrite replaces it)"))
        else:
            plan.jobs.append((path, target))
    return plan


def _translate_chunk(
    translator: Translator, model: nn.Module, images: list[Image.Image], args: argparse.Namespace
) -> list[Image.Image | str]:
    """Translated images; an image that cannot be translated is replaced by the reason."""
    seed = None if args.official else args.seed
    if args.tile is not None:
        return cli_media.translate_images(translator, model, images, args)
    kwargs = {"size": cli_media.working_size(args), "seed": seed, "official": args.official}
    kwargs["bits"] = args.bit_depth
    try:
        return translator.translate(model, images, **kwargs)
    except Img2ImgError:  # one odd image (e.g. an unconvertible mode): find it, keep the rest
        pass
    results: list[Image.Image | str] = []
    for img in images:
        try:
            results.append(translator.translate(model, [img], **kwargs)[0])
        except Img2ImgError as e:
            results.append(str(e))
    return results


def _report(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


def _check(args: argparse.Namespace, paths: Sequence[Path], missing: Sequence[Path]) -> str | None:
    """What refuses the command before any work (options the parser cannot check alone)."""
    if not paths and missing:
        names = ", ".join(str(p) for p in missing[:3]) + (", ..." if len(missing) > 3 else "")
        return f"no inputs: {names}: no such file or folder"
    if not paths:
        return f"no inputs: no image or clip files in {', '.join(args.inputs)}"
    if args.device is not None:
        try:
            check_device(args.device)
        except Img2ImgError as e:
            return str(e)
    return cli_args.check_folder(args.out, "-o") or cli_media.check_stats(args, paths)


def _remove_stale(targets: Sequence[Path], shard: shards.Shard | None) -> None:
    """Temporaries that killed runs left where this run writes (atomic.py); a shard removes
    only its own targets' (shards.remove_own_temporaries: other machines may be writing)."""
    if shard is not None:
        removed = shards.remove_own_temporaries(targets)
    else:
        folders = sorted({target.parent for target in targets})
        removed = [tmp for folder in folders for tmp in atomic.remove_stale_temporaries(folder)]
    for tmp in removed:
        _report(f"note: removed {tmp}, left by an interrupted run")


@dataclass
class Work:
    """One run's share: its plan, inputs not found, the manifest, the shard (None: all)."""

    plan: Plan
    missing: list[Path]
    total: int
    shard: shards.Shard | None = None
    manifest: shards.Manifest | None = None


def _share(args: argparse.Namespace, paths: list[Path], missing: list[Path], shard) -> Work:
    """This process's plan: outputs named from every input, then its shard's share taken."""
    suffix = cli_batch.output_format(args).suffix
    share = None if shard is None else shard.take(paths)
    gone = missing if shard is None else [missing[i] for i in shard.take(missing)]
    mine = paths if share is None else [paths[i] for i in share]
    targets = output_paths(paths, args.out, suffix)
    _remove_stale(targets if share is None else [targets[i] for i in share], shard)
    plan = plan_outputs(paths, args.out, args.overwrite, suffix, share)
    manifest = None
    if shard is not None or args.manifest is not None:
        path = shards.manifest_path(shard or shards.Shard(0, 1), args.out, args.manifest)
        manifest = shards.Manifest(path)
    return Work(plan, gone, len(mine) + len(gone), shard, manifest)


def translate_command(args: argparse.Namespace) -> int:
    status = translate_hf(args)  # --dataset (or no INPUT at all): cli_datasets.py
    if status is not None:
        return status
    datasets = cli_media.translate_datasets(args)  # LeRobot dataset roots: media/lerobot.py
    if datasets is not None:
        return datasets
    paths, notes = unique_inputs(list(expand_inputs(args.inputs)))
    missing = [p for p in paths if not p.exists()]  # skipped: not an input at all
    paths = [p for p in paths if p.exists()]
    try:
        shard = shards.choose(args.shard)
    except Img2ImgError as e:
        return refuse(str(e))
    problem = _check(args, paths, missing)
    if problem:
        return refuse(problem)
    args.device = shards.device(shard, args.device)
    try:
        work = _share(args, paths, missing, shard)
    except OSError as e:
        return refuse(f"cannot write the manifest: {e}")
    try:
        status = _translate(args, work, notes if shard is None or shard.index == 0 else [])
    finally:
        if work.manifest is not None:
            work.manifest.close()
    return shards.job_status(shard, status)  # torchrun: every rank exits with the job's status


def _translate(args: argparse.Namespace, work: Work, notes: list[str]) -> int:
    plan, tally = work.plan, cli_batch.Tally(manifest=work.manifest)
    for message in notes:
        _report(message)
    for p in work.missing:
        _report(f"skipped {p}: no such file or folder")
        tally.record(p, None, "skipped", 0.0, "no such file or folder")
    for status, entries in (("failed", plan.failed), ("skipped", plan.skipped)):
        for path, target, why in entries:
            _report(f"{status} {path}: {why}")
            tally.record(path, target, status, 0.0, why)
    written = failed = unreadable = 0
    folders = Folders()
    if plan.jobs:  # nothing to do (all outputs exist): no need to load the checkpoint
        try:
            translator = Translator(
                device=args.device,
                plan="eager" if args.official else None,
                throughput=len(plan.jobs) > 1,  # many photos: OpenVINO THROUGHPUT requests
            )
            model = translator.load(args.checkpoint)
            cli_media.check_model(args, model)
            cli_batch.check_output(args, model)
        except Img2ImgError as e:
            return refuse(str(e))
        if args.seed is not None and not args.official and not has_dropout(model):
            _report(f"note: --seed {args.seed} changes nothing: this generator has no dropout")
        try:
            done = _run_jobs(translator, model, plan.jobs, args, folders, work.manifest)
            written, failed, unreadable = done
        except Stopped as stop:
            if work.shard is None:  # shards share folders: another may be writing into one
                folders.remove_empty()
            stop.summary = (
                f"{stop.written} of {work.total} files written to {args.out} (complete: a "
                "re-run skips them); the one being written was discarded"
            )
            raise
    skipped = {
        "missing": len(work.missing),
        "unreadable": unreadable,
        "already written (--overwrite replaces them)": len(plan.skipped),
    }
    who = "" if work.shard is None else f"{work.shard.name}: "
    _summary(written, work.total, skipped, failed + len(plan.failed), args.out, who)
    return 0 if written == work.total else 1


def _run_jobs(
    translator: Translator,
    model: nn.Module,
    jobs: list[tuple[Path, Path]],
    args: argparse.Namespace,
    folders: Folders,
    manifest: shards.Manifest | None = None,
) -> tuple[int, int, int]:
    """Translate and write `jobs` (clips one by one, photos through the pipeline); (files
    written, inputs failed, inputs skipped as unreadable). Stopped (a signal) leaves with
    `.written` set on it."""
    bar = tqdm(total=len(jobs), unit="file", desc="translate", file=sys.stderr)
    tally = cli_batch.Tally(bar, manifest)
    try:
        _clips(translator, model, [j for j in jobs if cli_media.is_video(j[0])], args, folders,
               tally)  # fmt: skip
        photos = [j for j in jobs if not cli_media.is_video(j[0])]
        forward = lambda images: _translate_chunk(translator, model, images, args)  # noqa: E731
        cli_batch.run_photos(translator, model, photos, args, folders, tally, forward)
    except Stopped as stop:
        stop.written = tally.counts["written"]
        raise
    finally:
        bar.close()
    counts = tally.counts
    return counts["written"], counts["failed"], counts["skipped"]


def _clips(translator, model, jobs, args, folders: Folders, tally: cli_batch.Tally) -> None:
    for path, target in jobs:
        start = time.perf_counter()
        try:
            folders.make(target.parent)
        except OSError as e:
            problem = f"cannot write {target}: {e.strerror or e}"
        else:
            problem = cli_media.translate_clip(translator, model, path, target, args)
        if problem and problem.startswith(f"failed {path}: "):
            problem = problem[len(f"failed {path}: ") :]
        tally.record(path, target, "failed" if problem else "written",
                     time.perf_counter() - start, problem)  # fmt: skip


def _summary(
    written: int, total: int, skipped: dict[str, int], failed: int, out: Path, who: str = ""
) -> None:
    """`W of N images written to OUT; S skipped (why); F failed`: every input counted once
    (`who`: the shard's name, for a shard's share)."""
    parts = [f"{who}{written} of {total} images written to {out}"]
    why = [f"{n} {reason}" for reason, n in skipped.items() if n]
    if why:
        parts.append(f"{sum(skipped.values())} skipped: {', '.join(why)}")
    if failed:
        parts.append(f"{failed} failed")
    print("; ".join(parts), file=sys.stderr)


def publish_command(args: argparse.Namespace) -> int:
    """push / mirror: errors from the Hub are reported without a traceback."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        if args.command == "push":
            url = publish.push(
                args.directory, args.repo_id, private=args.private, exports=args.export
            )
        else:
            repo_id = args.repo_id or publish.default_mirror_repo(args.model_id)
            url = publish.mirror(args.model_id, repo_id, private=args.private)
    except (Img2ImgError, HfHubHTTPError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(url)
    return 0


READY = {
    "local": "ready (local)",
    "cached": "ready (cached)",
    "download": "download",
    "offline": "offline",
    "unusable": "local file unusable",
}


def models_command() -> int:
    """Every catalog id, its label, and whether its weights are on disk (no network used);
    then your own models (<weights dir>/custom/<name>/) and what each holds."""
    from .checkpoints.catalog import custom_dir
    from .checkpoints.hub import availability
    from .checkpoints.local import stored_models

    notes = []
    for entry in load_catalog().values():
        found = availability(entry)
        print(f"{entry.id:36s} {READY.get(found.state, 'not yet published'):20s} {entry.label}")
        if found.state in ("local", "unusable"):
            notes.append(f"  {entry.id}: {found.detail}")
    if notes:
        print("\nLocal files:", *notes, sep="\n")
    mine = stored_models()
    print(f"\nYour models (each a folder in {custom_dir()}/; use --checkpoint custom/<name>):")
    for model in mine:
        verdict = model.verdict
        state = "ready" if verdict.ok else "unusable"
        print(f"{model.id:36s} {state:20s} {verdict.what or verdict.problem}")
    if not mine:
        print(f"  none yet: put a checkpoint file in {custom_dir()}/<name>/ to list it here")
    return 0


def _stoppable(command, args: argparse.Namespace) -> int:
    """`command(args)` under stop_on_signals: a stop is one line and exit 128 + signal."""
    try:
        with stop_on_signals():
            return command(args)
    except Stopped as stop:
        summary = getattr(stop, "summary", "nothing was written")
        print(f"{stop.name}: stopped; {summary}", file=sys.stderr)
        return stop.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sigstack.off_altstack(signal.SIGINT)  # Ctrl-C after OpenVINO freed a model (sigstack.py)
    if args.command == "translate":
        allocator.keep_freed_memory()  # forwards stop re-faulting their pages (allocator.py)
        return _stoppable(translate_command, args)
    if args.command in ("push", "mirror"):
        return publish_command(args)
    if args.command == "evaluate":
        return _stoppable(evaluate.command, args)
    if args.command == "export":
        return cli_export.command(args)
    if args.command == "quantize":
        return _stoppable(cli_quantize.command, args)
    try:
        return models_command()
    except BrokenPipeError:  # `img2img models | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
