"""Sharded translate: one share of the inputs per process, under torchrun or `--shard K/N`.

Who runs what. A shard is (K, N): K from 0 to N - 1 (0-based, as torchrun's RANK). Under
torchrun (RANK, WORLD_SIZE, LOCAL_RANK set) K is RANK and N is WORLD_SIZE; `--shard K/N`
says the same without torchrun (a SLURM array's SLURM_ARRAY_TASK_ID, a Kubernetes indexed
job's JOB_COMPLETION_INDEX). Every process lists and names the inputs exactly as one process
would (the output names come from the whole list: cli.output_paths), then takes its share:
the inputs sorted by path, strided, the i-th (0-based) going to shard i mod N. So every input
is translated by exactly one shard, with the output one process would write, whatever the
other shards have already finished (the split never looks at what exists on disk).

Device: under torchrun, `cuda:LOCAL_RANK` where there are GPUs, the CPU otherwise (an explicit
--device wins).

Manifest. Each shard appends one JSON line per input as it finishes, flushed at once
(OUT_DIR/.img2img-manifest/rank-0000K-of-0000N.jsonl, or --manifest PATH):
{"input", "output", "status": "written" | "skipped" | "failed", "seconds", "error"?}; the words
are the CLI's ("skipped": not attempted; "failed": attempted and errored). A rerun appends:
an input's last line is its current status (`latest`). Each line is one write(2) to a file
opened O_APPEND, so a killed process leaves whole lines only.

Ending under torchrun. torchrun stops every rank as soon as one exits non-zero, so a rank
that finished with exit 1 (a skipped input) would kill the others' work; and with several
nodes, a node whose rank exits 0 waits (5 minutes, torchrun's exit barrier) for a node whose
rank failed, which never comes. So every rank waits for the others at the end and all of them
exit with the job's status, the worst of all ranks' (`job_status`: one gloo all-reduce on the
CPU, the only collective; --shard runs have none). A rank killed outright is reported by
torchrun, which then stops the rest: their finished outputs stay, and a rerun of the same
command completes the job.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import sigstack
from .errors import ConfigError

MANIFEST_DIR = ".img2img-manifest"
WAIT = datetime.timedelta(days=7)  # how long a finished rank waits for the slowest one
_TEMPORARY = re.compile(r"^\.(.+)\.[^.]+\.img2img-\d+\.tmp$")  # atomic.py's names


@dataclass(frozen=True)
class Shard:
    """This process's share: index K of N (0-based); `local_rank` under torchrun."""

    index: int
    count: int
    local_rank: int | None = None  # torchrun's LOCAL_RANK (which GPU), None for --shard
    torchrun: bool = False

    @property
    def name(self) -> str:
        return f"rank-{self.index:05d}-of-{self.count:05d}"

    def take(self, paths: Sequence[Path]) -> list[int]:
        """Positions in `paths` of this shard's inputs: sorted by path, every N-th from K."""
        order = sorted(range(len(paths)), key=lambda i: str(paths[i]))
        return sorted(order[self.index :: self.count])


def parse(text: str) -> Shard:
    """`K/N` (0 <= K < N) as a Shard; ValueError with the rule otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    k, n = (int(match[1]), int(match[2])) if match else (-1, 0)
    if not 0 <= k < n:
        raise ValueError(
            f"--shard takes K/N with K from 0 to N-1 (0-based, as torchrun's RANK): {text[:40]}"
        )
    return Shard(k, n)


def from_env(environ: Mapping[str, str] = os.environ) -> Shard | None:
    """The torchrun shard (RANK / WORLD_SIZE / LOCAL_RANK), or None outside torchrun;
    ConfigError for values that do not make a shard."""
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    try:
        rank, world = int(environ["RANK"]), int(environ["WORLD_SIZE"])
        local = int(environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ConfigError(
            f"RANK={environ['RANK']!r} / WORLD_SIZE={environ['WORLD_SIZE']!r} are not "
            "integers (set by torchrun)"
        ) from None
    if not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} is not from 0 to WORLD_SIZE-1 ({world - 1})")
    return Shard(rank, world, local_rank=local, torchrun=True)


def choose(given: Shard | None, environ: Mapping[str, str] = os.environ) -> Shard | None:
    """The shard of this run: --shard, else torchrun's; ConfigError when both are set."""
    env = from_env(environ)
    if given is not None and env is not None and env.count > 1:
        raise ConfigError("--shard and torchrun (RANK / WORLD_SIZE) both split the inputs: use one")
    return given or env


def device(shard: Shard | None, requested: str | None) -> str | None:
    """--device as given; under torchrun without one, cuda:LOCAL_RANK if there are GPUs (more
    ranks than GPUs on a node share them: LOCAL_RANK mod the count), else the CPU."""
    if requested is not None or shard is None or shard.local_rank is None:
        return requested
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"cuda:{shard.local_rank % count}" if count else "cpu"


def manifest_path(shard: Shard, out_dir: Path, given: Path | None) -> Path:
    return given if given is not None else out_dir / MANIFEST_DIR / f"{shard.name}.jsonl"


class Manifest:
    """One JSON line per finished input, appended and flushed as each finishes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()  # a closed descriptor's number is soon another file's

    def record(
        self, src: Path, dst: Path | None, status: str, seconds: float, error: str | None = None
    ) -> None:
        line = {"input": str(src), "output": None if dst is None else str(dst)}
        line |= {"status": status, "seconds": round(seconds, 4)}
        if error:
            line["error"] = error
        with self._lock:
            if self._fd is None:
                raise ValueError(f"the manifest {self.path} is closed")
            os.write(self._fd, (json.dumps(line) + "\n").encode())  # one write: whole lines

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None


def latest(paths: Sequence[Path]) -> dict[str, dict]:
    """Each input's last record over the manifests `paths` (a rerun appends: last wins)."""
    found: dict[str, dict] = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                found[record["input"]] = record
    return found


def remove_own_temporaries(targets: Sequence[Path]) -> list[Path]:
    """Temporaries (atomic.py's) of this shard's own targets, left by its killed run.

    Not atomic.remove_stale_temporaries: on a shared folder the other shards' writers run on
    other machines, where their pid means nothing; a target belongs to one shard alone, so
    any temporary of it is a dead run's of this shard."""
    mine: dict[Path, set[str]] = {}
    for target in targets:
        mine.setdefault(target.parent, set()).add(target.name)
    removed = []
    for folder, names in sorted(mine.items()):
        try:
            entries = list(folder.iterdir())
        except OSError:  # not made yet: nothing left there
            continue
        for tmp in entries:
            match = _TEMPORARY.match(tmp.name)
            if match and match[1] in names:
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


def job_status(shard: Shard | None, status: int) -> int:
    """Under torchrun with several ranks: wait until every rank has finished its share, and
    return the worst status of all of them (so every rank, on every node, exits alike). The
    status as given otherwise."""
    if shard is None or not shard.torchrun or shard.count < 2:
        return status
    return worst_of_ranks(status)


def worst_of_ranks(status: int) -> int:
    """The largest of every torchrun rank's `status` (one gloo all-reduce, CPU); each rank
    calls it once, at its end, when its share is written and its manifest closed.

    The collective runs in a thread of its own while the main thread waits, so a stop signal
    (torchrun stopping the job because another rank died) is handled at once: nothing of this
    rank's is left to save, and the process ends with 128 + signal. In the main thread, a
    signal could not be handled until the collective returned, which it never does once a
    peer is gone (torchrun's SIGKILL 30 s later). The handler is kept off the alternate
    signal stack (sigstack.py: with OpenVINO loaded, a SIGTERM here used to end in SIGSEGV).
    A peer that dies first makes the collective fail: this rank then exits with its own
    status, at least 1 (the job did not finish), without tearing the group down."""
    import torch
    import torch.distributed as dist

    result: dict[str, object] = {}

    def collective() -> None:
        try:
            dist.init_process_group("gloo", timeout=WAIT)
            worst = torch.tensor([status], dtype=torch.int64)
            dist.all_reduce(worst, op=dist.ReduceOp.MAX)
            result["worst"] = int(worst.item())
            dist.destroy_process_group()
        except (RuntimeError, dist.DistError) as e:
            result["error"] = e

    with sigstack.handling((signal.SIGINT, signal.SIGTERM), _exit_now):
        waiter = threading.Thread(target=collective, name="img2img ranks", daemon=True)
        waiter.start()
        while waiter.is_alive():
            waiter.join(0.2)  # the main thread returns to Python: signals are handled
    if "error" in result:
        print(f"the other ranks could not be reached at the end: {result['error']}",
              file=sys.stderr, flush=True)  # fmt: skip
        os._exit(max(status, 1))
    return int(result["worst"])


def _exit_now(signum, frame) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"{signal.Signals(signum).name} while waiting for the other ranks: this "
                    "rank's share was complete\n".encode())  # fmt: skip
    os._exit(128 + signum)
