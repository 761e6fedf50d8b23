"""Hugging Face datasets as a source: a Hub id, a `save_to_disk` folder, parquet files or an
image folder -> one split's rows, this process's shard of them, the image column chosen.

`datasets` is optional (`pip install datasets`): it is imported on first use, and
MissingDependencyError says so when it is missing. Hub ids are read from HF_ENDPOINT
(huggingface_hub's settings: HF_TOKEN, HF_HOME, HF_HUB_OFFLINE).

What a name means, in order: an existing path (a `.parquet` file; a folder written by
`save_to_disk`; a folder of parquet files; a folder of images, `datasets`' imagefolder),
else a Hub dataset id (`NAME` or `NS/NAME`).

Streaming: a source over STREAM_BYTES (or `streaming=True`) is read as an IterableDataset,
row by row, never downloaded whole; a `save_to_disk` folder is memory-mapped and never needs
it. Sharding (torchrun): `datasets.distributed.split_dataset_by_node` gives rank r of w
   - map-style: the r-th of w contiguous blocks (the first n % w blocks one row longer);
   - streaming: whole source files when their count is a multiple of w, else every w-th row
     from r.
Either way every row is in exactly one shard, in a fixed order (what a resumed run skips).
Image columns are read undecoded ({"bytes", "path"}), so source images pass through
unchanged; `decode_image` opens the one being translated.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import DatasetError, ImageError, MissingDependencyError
from ..media.processing import DEFAULT_MAX_PIXELS, open_image
from .layout import IMAGE_EXTENSIONS

STREAM_BYTES = 2 * 1024**3  # sources larger than this are streamed unless told otherwise
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def require_datasets() -> Any:
    """The `datasets` module; MissingDependencyError (with the pip command) when absent."""
    try:
        import datasets
    except ImportError as e:
        raise MissingDependencyError(
            "Hugging Face datasets need the `datasets` package: pip install datasets "
            "(or pip install 'img2img-gan[datasets]')"
        ) from e
    return datasets


@dataclass(frozen=True)
class Source:
    kind: str  # "hub", "disk" (save_to_disk), "parquet" (a file or folder), "imagefolder"
    ref: str  # the Hub id, or the local path
    size: int | None  # bytes on disk / on the Hub; None when unknown (offline)


def find_source(name_or_path: str | os.PathLike) -> Source:
    """What `name_or_path` names (module docstring); DatasetError if nothing usable."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".parquet":
            raise DatasetError(f"{path} is a file but not a .parquet file")
        return Source("parquet", str(path), path.stat().st_size)
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")]
        size = sum(p.stat().st_size for p in files)
        names = {p.name for p in path.iterdir()}
        if "dataset_dict.json" in names or {"state.json", "dataset_info.json"} <= names:
            return Source("disk", str(path), size)
        if any(p.suffix.lower() == ".parquet" for p in files):
            return Source("parquet", str(path), size)
        if any(p.suffix.lower() in IMAGE_EXTENSIONS for p in files):
            return Source("imagefolder", str(path), size)
        raise DatasetError(
            f"{path} holds no dataset: expected a save_to_disk folder, parquet files or images"
        )
    text = str(name_or_path)
    if not _HUB_ID.match(text) or text.startswith((".", "/", "~")):
        raise DatasetError(f"dataset not found: {text} is neither a local path nor a Hub id")
    return Source("hub", text, _hub_size(text))


def _hub_size(repo_id: str) -> int | None:
    """The dataset repo's main-branch size in bytes, None offline; DatasetError if it does not
    exist. One request where the Hub reports it (`mainSize`); else the files of the whole tree
    summed (a mirror without that field: one listing, paged over big repos)."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    if constants.HF_HUB_OFFLINE:
        return None
    api = HfApi()
    try:
        size = api.dataset_info(repo_id, expand=["mainSize"]).main_size
        if size is None:
            tree = api.list_repo_tree(repo_id, repo_type="dataset", recursive=True)
            size = sum(getattr(entry, "size", 0) or 0 for entry in tree)
        return size
    except RepositoryNotFoundError as e:
        raise DatasetError(f"no dataset {repo_id!r} on the Hub ({constants.ENDPOINT})") from e
    except (HfHubHTTPError, OSError) as e:
        raise DatasetError(f"cannot reach the Hub dataset {repo_id!r}: {e}") from e


def _load_args(source: Source) -> tuple[str, dict[str, Any]]:
    """load_dataset's (path, keywords) for a source that is not a save_to_disk folder."""
    if source.kind == "parquet" and Path(source.ref).is_file():
        return "parquet", {"data_files": {"train": [source.ref]}}
    return source.ref, {}  # a folder or a Hub id: datasets infers the format and the splits


def split_names(source: Source) -> list[str]:
    """The source's splits, as `datasets` infers them (data/train-*.parquet -> train)."""
    datasets = require_datasets()
    if source.kind == "disk":
        loaded = _load_from_disk(source)
        return list(loaded) if isinstance(loaded, datasets.DatasetDict) else ["train"]
    path, kwargs = _load_args(source)
    try:
        builder = datasets.load_dataset_builder(path, **kwargs)
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot open the dataset {source.ref}: {e}") from e
    if builder.info.splits:
        return list(builder.info.splits)
    return list(builder.config.data_files or {})


def choose_split(source: Source, split: str | None) -> str:
    """`split` if the source has it; by default "train", else its only split."""
    names = split_names(source)
    if split is None:
        if "train" in names or len(names) == 1:
            return "train" if "train" in names else names[0]
        raise DatasetError(f"{source.ref} has splits {names}: choose one (--split)")
    if split not in names:
        raise DatasetError(f"{source.ref} has no split {split!r}; its splits: {names}")
    return split


def _load_from_disk(source: Source) -> Any:
    try:
        return require_datasets().load_from_disk(source.ref)
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read the saved dataset {source.ref}: {e}") from e


def load_split(source: Source, split: str, streaming: bool) -> Any:
    """One split as a Dataset (random access) or an IterableDataset (`streaming`)."""
    datasets = require_datasets()
    if source.kind == "disk":
        loaded = _load_from_disk(source)
        ds = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        return ds.to_iterable_dataset() if streaming else ds
    path, kwargs = _load_args(source)
    try:
        return datasets.load_dataset(path, split=split, streaming=streaming, **kwargs)
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot load split {split!r} of {source.ref}: {e}") from e


def features_of(ds: Any) -> Any:
    """The dataset's Features (an IterableDataset of unknown schema: resolved from its rows)."""
    if ds.features is None:
        ds = ds._resolve_features()  # noqa: SLF001 - the one public way datasets offers
    return ds.features


def image_columns(features: Any) -> list[str]:
    Image_ = require_datasets().Image
    return [name for name, f in features.items() if isinstance(f, Image_)]


def choose_column(features: Any, column: str | None) -> str:
    """`column` if it holds images; by default the one Image column. DatasetError listing the
    columns (and their types) otherwise."""
    images = image_columns(features)
    listed = ", ".join(f"{k} ({type(v).__name__})" for k, v in features.items())
    if column is not None:
        if column not in images:
            what = "is not an image column" if column in features else "does not exist"
            raise DatasetError(f"column {column!r} {what}; the columns: {listed}")
        return column
    if len(images) == 1:
        return images[0]
    found = "no image column" if not images else f"{len(images)} image columns"
    raise DatasetError(f"the dataset has {found}: choose one (--column); the columns: {listed}")


def undecoded(ds: Any, features: Any) -> Any:
    """`ds` with every Image column read as {"bytes", "path"} (no decoding, no re-encoding)."""
    Image_ = require_datasets().Image
    for name in image_columns(features):
        ds = ds.cast_column(name, Image_(decode=False))
    return ds


def shard(ds: Any, rank: int, world: int) -> Any:
    """This process's rows (module docstring: which, and that each row is in one shard)."""
    if not 0 <= rank < world:
        raise DatasetError(f"rank {rank} is outside a world of {world} processes")
    if world == 1:
        return ds
    from datasets.distributed import split_dataset_by_node

    return split_dataset_by_node(ds, rank=rank, world_size=world)


@dataclass
class Rows:
    """One split of a source, this process's shard of it, image columns undecoded."""

    dataset: Any  # datasets.Dataset or IterableDataset
    source: Source
    split: str
    column: str  # the image column to translate
    features: Any  # the source's Features (Image columns decoding, as written out)
    streaming: bool

    def __len__(self) -> int:  # map-style only; a streamed split's length is unknown
        return len(self.dataset)

    def rows(self, skip: int = 0) -> Any:
        """The rows (dicts) after the first `skip` of this shard."""
        if not skip:
            return iter(self.dataset)
        if self.streaming:
            return iter(self.dataset.skip(skip))
        n = len(self.dataset)
        return iter(self.dataset.select(range(skip, n))) if skip < n else iter(())


def open_rows(
    name_or_path: str | os.PathLike,
    split: str | None = None,
    column: str | None = None,
    streaming: bool | None = None,
    rank: int = 0,
    world: int = 1,
) -> Rows:
    """A source's split (default: train / the only one), its image column (default: the only
    Image column), streamed when over STREAM_BYTES unless `streaming` says, sharded."""
    source = find_source(name_or_path)
    split = choose_split(source, split)
    if streaming is None:
        streaming = source.kind != "disk" and (source.size or 0) > STREAM_BYTES
    ds = load_split(source, split, streaming)
    features = features_of(ds)
    column = choose_column(features, column)
    ds = shard(undecoded(ds, features), rank, world)
    return Rows(ds, source, split, column, features, streaming)


def image_bytes(value: dict[str, Any] | None, what: str) -> bytes:
    """An undecoded image cell's bytes (a file it only names is read); DatasetError if none."""
    if value is None:
        raise DatasetError(f"{what} is empty (no image in this row)")
    if value.get("bytes"):
        return value["bytes"]
    path = value.get("path")
    try:
        return Path(path).read_bytes() if path else b""
    except OSError as e:
        raise DatasetError(f"{what}: cannot read {path}: {e}") from e


def decode_image(
    value: dict[str, Any] | None, what: str, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """An undecoded image cell opened (EXIF upright, size capped); DatasetError if it is not
    a readable image (`what` names the row)."""
    try:
        return open_image(image_bytes(value, what), max_pixels)
    except ImageError as e:
        raise DatasetError(f"{what}: {e}") from e
