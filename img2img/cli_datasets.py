"""`img2img translate --dataset NAME_OR_PATH -o OUT_DIR`: a Hugging Face dataset in, a dataset out.

Kept beside cli.py, which hands over at the top of translate_command, so that the files
command's rules stay there. The work is img2img.data.translate_dataset (hf_translate.py):
OUT_DIR/data/<split>-<rank>-of-<world>-<chunk>.parquet, every source column unchanged plus
the translated image column, readable with `datasets.load_dataset("parquet", ...)`.

- Who does which rows: under torchrun each rank (RANK of WORLD_SIZE) writes its own shards,
  every row in exactly one of them (hf.shard); `--shard K/N` says the same where translate
  has that flag, for jobs started apart (a SLURM array).
- --push-to-hub publishes OUT_DIR once every rank has finished: under torchrun the ranks meet
  at one gloo barrier and rank 0 pushes. Separate `--shard` jobs cannot know when the others
  are done, so they refuse it: push at the end with `img2img.data.push_dataset(OUT, REPO)`.
- Stops: SIGTERM / Ctrl-C abort the shard being written (its temporary is removed), finished
  shards stay, and the same command run again resumes after them (cli_stop.py: exit 128+N).
- Exit status: 0 every row translated; 1 some rows failed (each kept with an empty
  translated cell and named on stderr) or the push failed; 2 nothing could run (a bad option,
  no such dataset / split / column, the checkpoint, other settings already in OUT_DIR).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tqdm import tqdm

from . import cli_args, cli_media, shards
from .cli_stop import Stopped
from .errors import Img2ImgError, PushError

BATCH = 8  # rows decoded and translated together (= pipeline.CHUNK)
ROWS_PER_SHARD = 1000  # rows per parquet shard unless --rows-per-shard says otherwise
FILES_ONLY = ("official", "tile", "stats", "camera", "codec", "gop", "max_seconds", "overwrite")
DATASET_ONLY = (
    "split", "column", "output_column", "streaming", "push_to_hub", "private", "rows_per_shard",
)  # fmt: skip


def translate(args: argparse.Namespace) -> int | None:
    """The exit status of a --dataset run (or of a refusal); None for cli.py's files run."""
    if args.dataset is None:
        given = [f"--{k.replace('_', '-')}" for k in DATASET_ONLY if _given(args, k)]
        if given:
            return cli_args.refuse(f"{given[0]} applies to --dataset")
        if not args.inputs:
            return cli_args.refuse(
                "the following arguments are required: INPUT (see img2img translate --help)"
            )
        return None
    problem, rank, world, torchrun = _check(args)
    if problem:
        return cli_args.refuse(problem)
    try:
        return _run(args, rank, world, torchrun)
    except PushError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _given(args: argparse.Namespace, name: str) -> bool:
    value = getattr(args, name, None)
    return not any(value is unset for unset in (None, False, cli_media.UNSET))  # --tile: 0


def _check(args: argparse.Namespace) -> tuple[str | None, int, int, bool]:
    """(why the run is refused or None, rank, world, under torchrun), before any work."""
    if args.inputs:
        return "--dataset translates a dataset on its own: give no INPUT", 0, 1, False
    for name in FILES_ONLY:
        if _given(args, name):
            return f"--{name.replace('_', '-')} applies to files, not to --dataset", 0, 1, False
    if args.private and not args.push_to_hub:
        return "--private applies with --push-to-hub", 0, 1, False
    rank, world, torchrun = _rank_world(args)
    if world is None:
        return f"RANK / WORLD_SIZE ({rank}) are not a rank of a world (torchrun)", 0, 1, False
    shard = getattr(args, "shard", None)  # translate's --shard K/N, where it has one
    if shard is not None and torchrun and world > 1:
        return "--shard and torchrun (RANK / WORLD_SIZE) both split the rows: use one", 0, 1, False
    if shard is not None and args.push_to_hub and shard.count > 1:
        return (
            "--push-to-hub needs every shard finished, which separate --shard jobs cannot "
            "know: push OUT_DIR afterwards (img2img.data.push_dataset)"
        ), 0, 1, False  # fmt: skip
    if args.device is not None:
        from .inference import check_device

        try:
            check_device(args.device)
        except Img2ImgError as e:
            return str(e), 0, 1, False
    return cli_args.check_folder(args.out, "-o"), rank, world, torchrun


def _rank_world(args: argparse.Namespace) -> tuple[int | str, int | None, bool]:
    """(rank, world, torchrun): --shard K/N, else torchrun's RANK / WORLD_SIZE, else (0, 1);
    world None (rank: the values) when the environment's are not a rank of a world."""
    shard = getattr(args, "shard", None)
    if shard is not None and "WORLD_SIZE" not in os.environ:
        return shard.index, shard.count, False
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1, False
    text = f"{os.environ['RANK']!r} / {os.environ['WORLD_SIZE']!r}"
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    except ValueError:
        return text, None, True
    return (rank, world, True) if 0 <= rank < world else (text, None, True)


def _device(args: argparse.Namespace, torchrun: bool) -> str | None:
    """--device as given; under torchrun, cuda:LOCAL_RANK where there are GPUs."""
    if args.device is not None or not torchrun:
        return args.device
    import torch

    return f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu"


def _finished_rows(out: Path, split: str, rank: int, world: int) -> int:
    """Rows in this rank's complete shards (hf_write.py names them; temporaries are hidden)."""
    import pyarrow.parquet as pq

    pattern = f"{split}-{rank:05d}-of-{world:05d}-*.parquet"
    return sum(pq.read_metadata(p).num_rows for p in (out / "data").glob(pattern))


def _run(args: argparse.Namespace, rank: int, world: int, torchrun: bool) -> int:
    from .data import open_rows, push_dataset, translate_dataset
    from .inference import Translator

    try:
        rows = open_rows(args.dataset, args.split, args.column, args.streaming, rank, world)
        translator = Translator(device=_device(args, torchrun), throughput=True)
        model = translator.load(args.checkpoint)
    except Img2ImgError as e:
        return cli_args.refuse(str(e))
    import datasets

    datasets.disable_progress_bars()  # "Creating parquet" per shard: our bar says enough
    who = f"rank {rank} of {world}: " if world > 1 else ""
    failures: list[str] = []

    def failed(message: str) -> None:
        failures.append(message)
        tqdm.write(f"{who}{message}", file=sys.stderr)

    done_before = _finished_rows(args.out, rows.split, rank, world)
    bar = tqdm(
        total=None if rows.streaming else len(rows), initial=done_before, unit="row",
        desc=f"{who}translate {rows.split}", file=sys.stderr,
    )  # fmt: skip
    try:
        done = translate_dataset(
            translator, model, args.dataset, args.out, rows.split, rows.column,
            args.output_column, size=cli_media.working_size(args), seed=args.seed,
            streaming=rows.streaming, rank=rank, world=world, batch_size=BATCH,
            rows_per_shard=args.rows_per_shard or ROWS_PER_SHARD,
            progress=bar.update, on_failure=failed,
        )  # fmt: skip
    except Stopped as stop:
        kept = _finished_rows(args.out, rows.split, rank, world)
        stop.summary = (
            f"{who}{kept} rows in finished shards under {args.out / 'data'} (the same command "
            "resumes after them); the shard being written was discarded"
        )
        raise
    except Img2ImgError as e:  # other settings in OUT, an output column taken
        return cli_args.refuse(str(e))
    finally:
        bar.close()
    print(
        f"{who}{done.rows} rows of {done.split} in {len(done.files)} shards under "
        f"{args.out / 'data'} ({done.resumed} from an earlier run); {done.output_column} "
        f"holds {done.column} translated" + (f"; {len(failures)} failed" if failures else ""),
        file=sys.stderr,
    )
    status = 1 if failures else 0
    if torchrun and world > 1:  # every rank has written its shards: rank 0 may push; and
        status = shards.worst_of_ranks(status)  # every rank, on every node, exits alike
    if args.push_to_hub and rank == 0:
        print(push_dataset(args.out, args.push_to_hub, private=args.private))
    return status
