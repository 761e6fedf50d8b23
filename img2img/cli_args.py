"""The command line's values, checked before anything runs (img2img translate / evaluate /
push / mirror).

Each option's type function refuses a value out of its range with the range; paths that
will be written (-o, --json, --report) are checked before the run starts (a folder that a
file is in the way of, a target that is a folder, a folder that cannot be written into),
and the folders they need are made only when the first file goes into them (atomic.Folders), so
a run that fails leaves no empty folder behind. A refusal is one line on stderr, exit 2
(`OneLineParser`: argparse's own usage block is left out; `--help` still has it).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from .errors import ConfigError, Img2ImgError
from .inference import MAX_SEED, check_seed
from .media.processing import MAX_LONG_SIDE, MIN_SIDE


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line refusals: `error: argument --tile: ... (img2img translate -h)`."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def size(value: str) -> int | None:
    """--size: 'native' (None) or a long side from 1 to MAX_LONG_SIDE."""
    if value == "native":
        return None
    n = _int(value)
    if n is None or not 1 <= n <= MAX_LONG_SIDE:
        raise argparse.ArgumentTypeError(
            f"--size takes 'native' or an integer from 1 to {MAX_LONG_SIDE} (a working image "
            f"of {MAX_LONG_SIDE}x{MAX_LONG_SIDE} is as large as the biggest input accepted): "
            f"{value[:40]}"
        )
    return n


def seed(value: str) -> int:
    try:
        return check_seed(int(value))
    except (ValueError, Img2ImgError):
        raise argparse.ArgumentTypeError(
            f"--seed takes an integer from 0 to {MAX_SEED}: {value[:40]}"
        ) from None


def tile(value: str) -> int:
    """--tile N: a window side from MIN_SIDE to MAX_LONG_SIDE (the generator's multiple is
    checked once the checkpoint is read: `check_tile`)."""
    n = _int(value)
    if n is None or not MIN_SIDE <= n <= MAX_LONG_SIDE:
        raise argparse.ArgumentTypeError(
            f"--tile takes a window side from {MIN_SIDE} to {MAX_LONG_SIDE} pixels, a multiple "
            f"of the generator's (4 for ResNets, 256 for U-Nets), or no value for 256: "
            f"{value[:40]}"
        )
    return n


def check_tile(value: int, multiple: int) -> None:
    """ConfigError (the CLI's exit 2) for a --tile the loaded generator cannot take."""
    if value % multiple:
        below, above = value // multiple * multiple, -(-value // multiple) * multiple
        near = " or ".join(str(n) for n in (below, above) if n >= max(multiple, MIN_SIDE))
        raise ConfigError(
            f"--tile {value} is not a multiple of {multiple}, which this generator needs: "
            f"use {near}"
        )


def seconds(value: str) -> float:
    try:
        s = float(value)
    except ValueError:
        s = math.nan
    if not (math.isfinite(s) and s > 0):
        raise argparse.ArgumentTypeError(
            f"--max-seconds takes a positive number of seconds (leave it out for no limit): "
            f"{value[:40]}"
        )
    return s


def split_name(value: str) -> str:
    """--split: a folder name inside the dataset folder (no path)."""
    if not value or value in (".", "..") or "/" in value or os.sep in value:
        raise argparse.ArgumentTypeError(
            f"--split takes a folder name inside the dataset folder (test, val, ...): {value}"
        )
    return value


def _bounded(flag: str, low: int, high: int, what: str):
    def check(value: str) -> int:
        n = _int(value)
        if n is None or not low <= n <= high:
            message = f"{flag} takes {what} from {low} to {high}: {value[:40]}"
            raise argparse.ArgumentTypeError(message)
        return n

    return check


png_level = _bounded("--png-compress", 0, 9, "a zlib level")
quality = _bounded("--quality", 1, 100, "a quality")
io_threads = _bounded("--io-threads", 0, 64, "a number of threads")
rows_per_shard = _bounded("--rows-per-shard", 1, 10_000_000, "a number of rows")


def shard(value: str):
    """--shard K/N: 0 <= K < N (shards.parse)."""
    from .shards import parse

    try:
        return parse(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def repo_id(value: str) -> str:
    """--repo-id: NS/NAME (or NAME) as the Hub accepts it, checked without asking the Hub."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(value)
    except HFValidationError:
        raise argparse.ArgumentTypeError(
            f"--repo-id takes NAMESPACE/NAME: letters, digits, '-', '_', '.', at most 96 "
            f"characters, not starting or ending with '-' or '.': {value[:120]}"
        ) from None
    return value


def push_repo(value: str) -> str:
    """--push-to-hub: NS/NAME, checked as --repo-id is."""
    try:
        return repo_id(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"--push-to-hub takes a dataset repo NAMESPACE/NAME: letters, digits, '-', '_', "
            f"'.', at most 96 characters: {value[:120]}"
        ) from None


def add_dataset_flags(t: argparse.ArgumentParser) -> None:
    """translate --dataset: a Hugging Face dataset in, a dataset out (cli_datasets.py)."""
    g = t.add_argument_group("Hugging Face datasets (instead of INPUT; needs `datasets`)")
    g.add_argument(
        "--dataset",
        default=None,
        metavar="NAME_OR_PATH",
        help="translate a dataset: a Hub id, a save_to_disk folder, parquet file(s) or an "
        "image folder; OUT_DIR gets parquet shards (source columns + the translated one)",
    )
    g.add_argument("--split", default=None, help="default: train, or the only split")
    g.add_argument("--column", default=None, help="image column (default: the only one)")
    g.add_argument("--output-column", default=None, help="default: <column>_translated")
    g.add_argument(
        "--streaming",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read row by row (default: when the source is over 2 GiB)",
    )
    g.add_argument(
        "--push-to-hub",
        type=push_repo,
        default=None,
        metavar="NS/NAME",
        help="publish OUT_DIR as a Hub dataset once every rank has finished",
    )
    g.add_argument("--private", action="store_true", help="with --push-to-hub: a private repo")
    g.add_argument(
        "--rows-per-shard",
        type=rows_per_shard,
        default=None,
        metavar="N",
        help="rows per parquet shard (default 1000); a stopped run resumes after its last "
        "finished shard",
    )


# ----------------------------------------------------------------------------- targets


def _nearest_existing(path: Path) -> Path:
    for parent in (path, *path.parents):
        if os.path.lexists(parent):
            return parent
    return Path(".")


def check_folder(path: Path, what: str) -> str | None:
    """Why `path` cannot be a folder written into (made if missing), or None."""
    base = _nearest_existing(path)
    if base == path and not base.is_dir():
        return f"{what} {path} is a file, not a folder"
    if not base.is_dir():
        return f"cannot create the output folder {path} ({what}): {base} is a file"
    if not os.access(base, os.W_OK | os.X_OK):
        return f"cannot write into {base} ({what} {path}): permission denied"
    return None


def check_file(path: Path, what: str) -> str | None:
    """Why `path` cannot be a file (re)written, its folder made if missing; or None."""
    if path.is_dir():
        return f"{what} {path} is a folder: give a file name (e.g. {path / 'scores.json'})"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{what} {path} cannot be written: permission denied"
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        return f"{what} {path} cannot be written: {base} is a file, not a folder"
    if not os.access(base, os.W_OK | os.X_OK):
        return f"{what} {path} cannot be written into {base}: permission denied"
    return None


def refuse(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
