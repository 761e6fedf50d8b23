"""Translate image files on a Ray cluster: a CPU farm (or CPU and GPU nodes) shares one job.

    python -m img2img.cluster INPUT [INPUT ...] -o OUT_DIR --checkpoint ID_OR_PATH --workers N

The recipe, on Ray Data (`pip install "ray[data]"`, an optional extra like `datasets`):

    paths -> ray.data.from_items  (one row per input file: its position and path)
          -> map_batches(TranslatorActor, compute=ActorPoolStrategy(size=N), batch_size=B)
             (each actor loads the generator once into a Translator, reads its rows' files,
             translates B at a time and returns PNG bytes, or why it could not)
          -> the driver writes each PNG atomically where `img2img translate` would put it

Outputs are those of one `img2img translate` process with the same options and plan: the same
names (cli.output_paths, existing outputs skipped unless --overwrite, inputs never targets),
the same pixels (tests/test_cluster.py: byte-identical PNGs from two workers). Only paths travel
to the workers and only PNGs come back, so the object store holds a few batches at a time.

Where it runs: without --address a local Ray starts with N x --threads CPUs (N workers on this
machine); `--address auto` (or ray://HOST:10001) joins a running cluster, whose nodes need
img2img-gan installed and the INPUT files at the same paths (a shared filesystem); OUT_DIR is
written by this process alone. `--gpus G` gives each worker G GPUs (cuda; fractions share
one) for mixed farms. Each worker's plan is its node's default (execution.auto_plan, which
differs between CPU kinds), or --plan / IMG2IMG_PLAN for all: pin it when outputs must match.

Exit status as translate's: 0 every input written, 1 some skipped or failed, 2 nothing could
run (a bad option, no inputs, no ray, a checkpoint the driver cannot load), 130 / 143 stopped.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import atomic, cli, cli_args, pipeline
from .cli_stop import Stopped, stop_on_signals
from .errors import Img2ImgError, MissingDependencyError
from .inference import Translator
from .outformat import OutputFormat

OBJECT_STORE_BYTES = 256 * 1024**2  # a local cluster's store: a few batches of PNGs in flight


def require_ray() -> Any:
    """The `ray` module with Ray Data; MissingDependencyError (with the pip command) if absent."""
    try:
        import ray
        import ray.data  # noqa: F401 - the extra, not only ray core
    except ImportError as e:
        raise MissingDependencyError(
            'the Ray engine needs Ray Data: pip install "ray[data]" '
            "(or pip install 'img2img-gan[ray]')"
        ) from e
    return ray


class TranslatorActor:
    """One Ray worker: the generator loaded once, then batches of {"i", "path"} rows in,
    {"i", "png", "problem"} out (png empty when problem is "skipped ..." / "failed ...")."""

    def __init__(self, checkpoint: str, options: dict[str, Any]) -> None:
        import torch

        torch.set_num_threads(options["threads"])
        device = "cuda" if options["gpus"] else "cpu"
        plan = "eager" if options["official"] else options["plan"]
        self.translator = Translator(device=device, plan=plan)
        self.model = self.translator.load(checkpoint)
        self.kwargs = {k: options[k] for k in ("size", "seed", "official")}

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        from .media.processing import open_image

        images, kept, problems = [], [], [""] * len(batch["i"])
        for k, path in enumerate(batch["path"]):
            try:
                images.append(open_image(path, self.translator.max_pixels,
                                         exif=not self.kwargs["official"]))  # fmt: skip
                kept.append(k)
            except Img2ImgError as e:  # not an image we can read: not attempted
                problems[k] = f"skipped {path}: {e}"
        pngs = [b""] * len(problems)
        for k, result in zip(kept, self._translate(images), strict=True):
            if isinstance(result, str):
                problems[k] = f"failed {batch['path'][k]}: cannot translate it: {result}"
            else:
                buf = io.BytesIO()
                OutputFormat().save(result, buf)  # as `img2img translate` writes it by default
                pngs[k] = buf.getvalue()
        return {"i": list(batch["i"]), "png": pngs, "problem": problems}

    def _translate(self, images: list) -> list:
        """As cli._translate_chunk: the batch together, else one by one (the reason kept)."""
        if not images:
            return []
        try:
            return self.translator.translate(self.model, images, **self.kwargs)
        except Img2ImgError:
            pass
        results = []
        for img in images:
            try:
                results.append(self.translator.translate(self.model, [img], **self.kwargs)[0])
            except Img2ImgError as e:
                results.append(str(e))
        return results


def build_parser() -> argparse.ArgumentParser:
    p = cli_args.OneLineParser(
        prog="python -m img2img.cluster",
        description="img2img translate on a Ray cluster (Ray Data, one generator per worker)",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="OUT_DIR")
    p.add_argument("--checkpoint", required=True, help="a catalog id, or a checkpoint path")
    p.add_argument("--size", type=cli_args.size, default=256, help="as translate's (default 256)")
    p.add_argument("--seed", type=cli_args.seed, default=None, help="as translate's")
    p.add_argument("--official", action="store_true", help="as translate's")
    p.add_argument("--overwrite", action="store_true", help="as translate's")
    p.add_argument("--workers", type=_positive, default=2, help="Ray actors (default 2)")
    p.add_argument("--threads", type=_positive, default=1, help="CPU threads per worker")
    p.add_argument("--gpus", type=float, default=0.0, help="GPUs per worker (default 0: CPU)")
    p.add_argument("--batch-size", type=_positive, default=pipeline.CHUNK, help="images per call")
    p.add_argument("--plan", default=None, help="execution plan for every worker (eager, ...)")
    p.add_argument("--address", default=None, help="a running cluster (auto, ray://...)")
    return p


def _positive(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number, 1 or more, not {text!r}")
    return value


def _start(ray: Any, args: argparse.Namespace) -> None:
    """Join --address, or start a local cluster sized for the workers (no dashboard)."""
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    logging.getLogger("ray").setLevel(logging.WARNING)  # our bar and summary say enough
    ray.data.DataContext.get_current().enable_progress_bars = False
    here = str(Path(__file__).resolve().parents[1])  # workers import this img2img
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
    env |= {k: os.environ[k] for k in ("IMG2IMG_PLAN", "IMG2IMG_BF16") if k in os.environ}
    env["OMP_NUM_THREADS"] = str(args.threads)
    if args.address is not None:
        ray.init(address=args.address, runtime_env={"env_vars": env}, log_to_driver=False)
        return
    ray.init(
        num_cpus=args.workers * args.threads, include_dashboard=False, log_to_driver=False,
        object_store_memory=OBJECT_STORE_BYTES, runtime_env={"env_vars": env},
    )  # fmt: skip


def translate(args: argparse.Namespace) -> int:
    """The exit status; outputs and messages as `img2img translate`'s."""
    paths, notes = cli.unique_inputs(list(cli.expand_inputs(args.inputs)))
    missing = [p for p in paths if not p.exists()]
    paths = [p for p in paths if p.exists()]
    if not paths:
        return cli_args.refuse(f"no inputs: no image files in {', '.join(args.inputs)}")
    problem = cli_args.check_folder(args.out, "-o")
    if problem:
        return cli_args.refuse(problem)
    plan = cli.plan_outputs(paths, args.out, args.overwrite)
    for message in [*notes, *(f"skipped {p}: no such file" for p in missing)]:
        tqdm.write(message, file=sys.stderr)
    for status, entries in (("failed", plan.failed), ("skipped", plan.skipped)):
        for path, _, why in entries:  # as cli.translate_command words them
            tqdm.write(f"{status} {path}: {why}", file=sys.stderr)
    try:
        ray = require_ray()
        if plan.jobs:  # refused here, not in every worker: a checkpoint that does not load
            Translator(device="cpu", plan="eager").load(args.checkpoint)
    except Img2ImgError as e:
        return cli_args.refuse(str(e))
    written, failed, unreadable = 0, len(plan.failed), 0
    if plan.jobs:
        _start(ray, args)
        try:
            written, failed_now, unreadable = _run(ray, args, plan.jobs)
            failed += failed_now
        finally:
            ray.shutdown()
    total = len(paths) + len(missing)
    skipped = {"missing": len(missing), "unreadable": unreadable,
               "already written (--overwrite replaces them)": len(plan.skipped)}  # fmt: skip
    cli._summary(written, total, skipped, failed, args.out)
    return 0 if written == total else 1


def _run(ray: Any, args: argparse.Namespace, jobs: list[tuple[Path, Path]]) -> tuple[int, int, int]:
    """The jobs through the actor pool; (written, failed, unreadable)."""
    options = {"size": args.size, "seed": args.seed, "official": args.official,
               "plan": args.plan, "threads": args.threads, "gpus": args.gpus}  # fmt: skip
    items = [{"i": k, "path": str(src)} for k, (src, _) in enumerate(jobs)]
    ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        TranslatorActor,
        fn_constructor_args=(args.checkpoint, options),
        compute=ray.data.ActorPoolStrategy(size=args.workers),
        batch_size=args.batch_size,
        num_cpus=args.threads,
        num_gpus=args.gpus or None,
    )
    counts, folders = [0, 0, 0], atomic.Folders()  # written, failed, unreadable
    with tqdm(total=len(jobs), unit="file", desc="translate (ray)", file=sys.stderr) as bar:
        for row in ds.iter_rows():
            src, target = jobs[row["i"]]
            problem = row["problem"] or _write(row["png"], target, args.overwrite, folders)
            if problem and not problem.startswith(("skipped", "failed")):
                problem = f"failed {src}: {problem}"
            counts[0 if not problem else 2 if problem.startswith("skipped") else 1] += 1
            if problem:
                tqdm.write(problem, file=sys.stderr)
            bar.update(1)
    return counts[0], counts[1], counts[2]


def _write(png: bytes, target: Path, overwrite: bool, folders: atomic.Folders) -> str | None:
    """As cli._save, for PNG bytes made by a worker."""
    try:
        folders.make(target.parent)
        if not overwrite and os.path.lexists(target):
            return f"cannot write {target}: it was created meanwhile; kept"
        with atomic.atomic_file(target) as f:
            f.write(png)
    except OSError as e:
        return f"cannot write {target}: {e.strerror or e}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with stop_on_signals():
            return translate(args)
    except Stopped as stop:
        print(f"{stop.name}: stopped; files written so far are complete", file=sys.stderr)
        return stop.exit_code


if __name__ == "__main__":
    sys.exit(main())
