"""A dataset written out: rows as parquet shards under OUT, resumable, then pushed to the Hub.

    OUT/data/<split>-<rank>-of-<world>-<chunk>.parquet  (data/train-00000-of-00002-00003.parquet)
    OUT/README.md                         dataset card: one config, a file pattern per split
    OUT/.img2img-translate-<split>.json   the run's settings (what a rerun must match)

Each process (rank) writes its own shards, `rows_per_shard` rows each (its last one shorter).
A shard is written to a hidden temporary and renamed when complete (img2img/atomic.py), so a
name under data/ is always a whole file; `datasets` ignores hidden files. A rerun with the
same settings counts the rows of the rank's complete shards and starts after them: a killed
run loses at most the shard it was writing. The parquet files carry `datasets`' features
(Image columns included), so `datasets.load_dataset("parquet", data_files=...)` or
`load_dataset(OUT)` gives PIL images back.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

from ..atomic import atomic_file, remove_stale_temporaries, write_text
from ..errors import DatasetError, PushError
from .hf import require_datasets

DATA = "data"


def shard_name(split: str, rank: int, world: int, chunk: int) -> str:
    return f"{split}-{rank:05d}-of-{world:05d}-{chunk:05d}.parquet"


def dataset_card(out: Path, title: str) -> str:
    """A README.md whose YAML declares every split found under OUT/data (any split name)."""
    splits = sorted({p.name.split("-")[0] for p in (out / DATA).glob("*.parquet")})
    files = "".join(f"  - split: {s}\n    path: {DATA}/{s}-*.parquet\n" for s in splits)
    return (
        f"---\nconfigs:\n- config_name: default\n  data_files:\n{files}tags:\n- img2img\n---\n\n"
        f"# {title}\n\nWritten by img2img (`translate --dataset`): the source's columns plus "
        "the translated image column, as parquet shards under `data/`.\n"
    )


class ShardWriter:
    """Rows in, parquet shards out (module docstring); `done` rows were already written."""

    def __init__(
        self,
        out: str | os.PathLike,
        split: str,
        features: Any,
        settings: dict[str, Any],
        rank: int = 0,
        world: int = 1,
        rows_per_shard: int = 1000,
    ) -> None:
        if rows_per_shard < 1:
            raise DatasetError(f"rows_per_shard must be >= 1, got {rows_per_shard}")
        if "-" in split or "/" in split:
            raise DatasetError(f"split {split!r}: a written split name has no '-' or '/'")
        self.out, self.split, self.features = Path(out), split, features
        self.rank, self.world, self.rows_per_shard = rank, world, rows_per_shard
        self.data = self.out / DATA
        self.data.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.data)  # a killed writer's half shard
        self._check_settings({**settings, "world": world, "rows_per_shard": rows_per_shard})
        self.files, self.done = self._finished()
        self.buffer: list[dict[str, Any]] = []

    def _check_settings(self, settings: dict[str, Any]) -> None:
        path = self.out / f".img2img-translate-{self.split}.json"
        if path.is_file():
            saved = json.loads(path.read_text())
            differ = sorted(
                k for k in settings.keys() | saved.keys() if saved.get(k) != settings.get(k)
            )
            if differ:
                raise DatasetError(
                    f"{self.out} holds split {self.split!r} written with other settings "
                    f"({', '.join(differ)}: {[saved.get(k) for k in differ]}); rerun with "
                    "those, or write to a new folder"
                )
        else:
            others = [p.name for p in self.data.glob(f"{self.split}-*.parquet")]
            if others:
                raise DatasetError(f"{self.data} already holds {others[0]} (not written by us)")
            write_text(path, json.dumps(settings, indent=1, sort_keys=True))

    def _finished(self) -> tuple[list[Path], int]:
        """This rank's complete shards, in order, and how many rows they hold."""
        import pyarrow.parquet as pq

        files, rows = [], 0
        while (
            path := self.data / shard_name(self.split, self.rank, self.world, len(files))
        ).is_file():
            files.append(path)
            rows += pq.read_metadata(path).num_rows
        return files, rows

    def add(self, row: dict[str, Any]) -> None:
        self.buffer.append(row)
        if len(self.buffer) >= self.rows_per_shard:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as the next shard (nothing when there are none)."""
        if not self.buffer:
            return
        table = require_datasets().Dataset.from_list(self.buffer, features=self.features)
        path = self.data / shard_name(self.split, self.rank, self.world, len(self.files))
        with atomic_file(path) as f:
            buf = io.BytesIO()  # to_parquet seeks; written out whole, then renamed
            table.to_parquet(buf)
            f.write(buf.getvalue())
        self.files.append(path)
        self.done += len(self.buffer)
        self.buffer = []


def write_card(out: str | os.PathLike, title: str) -> Path:
    path = Path(out) / "README.md"
    write_text(path, dataset_card(Path(out), title))
    return path


def push_dataset(
    out: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    message: str = "Upload dataset translated by img2img",
) -> str:
    """Publish OUT's shards and card as the Hub dataset `repo_id`; the commit URL.
    PushError if the Hub refuses (OUT is left as it was)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    out = Path(out)
    if not any((out / DATA).glob("*.parquet")):
        raise DatasetError(f"nothing to push: no parquet shards in {out / DATA}")
    write_card(out, repo_id)
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(
            folder_path=out,
            repo_id=repo_id,
            repo_type="dataset",
            commit_message=message,
            allow_patterns=[f"{DATA}/*.parquet", "README.md"],
        )
    except (HfHubHTTPError, OSError, ValueError) as e:
        raise PushError(f"could not push {out} to the Hub dataset {repo_id}: {e}") from e
    return str(getattr(info, "commit_url", info))
