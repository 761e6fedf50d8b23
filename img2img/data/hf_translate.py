"""A dataset translated: every row of a split keeps its columns and gains the translated image.

    translate_dataset(Translator(), "pix2pix/facades_label2photo", "me/facades", "out/")
    -> out/data/train-00000-of-00001-00000.parquet, ...  (hf_write.py), then push_dataset

The source is anything hf.open_rows reads (Hub id, save_to_disk folder, parquet, image
folder); the model anything Translator.translate takes (catalog id, path, module). Images are
translated `batch_size` rows at a time (the Translator batches same-sized ones) and stored as
PNG in the output column (`<column>_translated` by default). Under torchrun each rank passes
its (rank, world) and writes its own shards; a rerun resumes after the finished shards.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import Cancelled, DatasetError, Img2ImgError
from .hf import decode_image, image_bytes, image_columns, open_rows, require_datasets
from .hf_write import ShardWriter, write_card


@dataclass(frozen=True)
class DatasetTranslation:
    """What translate_dataset did on this rank."""

    out: Path
    split: str
    column: str  # the source image column
    output_column: str  # the translated image column
    rows: int  # rows in this rank's shards (written now or before)
    resumed: int  # of which already written by an earlier run (skipped)
    files: list[Path]  # this rank's shards, in order
    failed: int = 0  # rows of this run kept with an empty translated cell (`on_failure`)


def png(img: Image.Image) -> dict[str, Any]:
    """An Image cell holding `img` losslessly."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def output_features(features: Any, output_column: str) -> Any:
    """The source's features (Image columns decoding again) plus the translated column."""
    datasets = require_datasets()
    if output_column in features:
        raise DatasetError(
            f"the dataset already has a column {output_column!r}: choose another output column"
        )
    out = {k: datasets.Image() if k in image_columns(features) else v for k, v in features.items()}
    return datasets.Features({**out, output_column: datasets.Image()})


def embedded(row: dict[str, Any], columns: list[str], what: str) -> dict[str, Any]:
    """`row` with image cells that only name a file holding that file's bytes instead."""
    for name in columns:
        value = row[name]
        if value is not None and not value.get("bytes"):
            path = value.get("path")
            row[name] = {
                "bytes": image_bytes(value, what),
                "path": Path(path).name if path else None,
            }
    return row


def translate_dataset(
    translator: Any,
    model: Any,
    source: str | os.PathLike,
    out: str | os.PathLike,
    split: str | None = None,
    column: str | None = None,
    output_column: str | None = None,
    *,
    size: int | None = 256,
    seed: int | None = None,
    streaming: bool | None = None,
    rank: int = 0,
    world: int = 1,
    batch_size: int = 8,
    rows_per_shard: int = 1000,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[int], None] | None = None,
    on_failure: Callable[[str], None] | None = None,
) -> DatasetTranslation:
    """Translate `column` of every row of this rank's shard of `split` with `model` and write
    the rows (source columns + `output_column`) as parquet shards under `out`.

    `translator` is an img2img.Translator; `size` and `seed` are its translate()'s. A rerun
    with the same arguments skips the rows already written; other arguments over the same
    `out` are a DatasetError. `should_stop()` is asked between batches: True raises Cancelled
    (finished shards stay, a rerun continues). `progress(n)` is called with each batch's size.
    A row whose image cannot be read or translated raises DatasetError / the Translator's
    error; with `on_failure`, the row is written with an empty translated cell instead and
    `on_failure(why)` is told (`.failed` counts them).
    Rank 0 (re)writes out/README.md, whose YAML lists every split under out/data.
    """
    rows = open_rows(source, split, column, streaming, rank, world)
    output_column = output_column or f"{rows.column}_translated"
    settings = {
        "source": str(source), "split": rows.split, "column": rows.column,
        "output_column": output_column, "size": size, "seed": seed,
        "model": model if isinstance(model, str | os.PathLike) else type(model).__name__,
    }  # fmt: skip
    settings["model"] = str(settings["model"])
    features = output_features(rows.features, output_column)
    writer = ShardWriter(out, rows.split, features, settings, rank, world, rows_per_shard)
    resumed, images = writer.done, image_columns(rows.features)
    failed, it = 0, rows.rows(skip=resumed)
    while batch := list(islice(it, batch_size)):
        if should_stop is not None and should_stop():
            raise Cancelled(f"stopped after {writer.done} rows of {rows.split}; rerun to continue")
        first = writer.done + len(writer.buffer)
        where = [
            f"{rows.source.ref} {rows.split} row {first + i} (shard {rank})"
            for i in range(len(batch))
        ]
        outputs = _translate_rows(translator, model, batch, rows.column, where, on_failure,
                                  size=size, seed=seed)  # fmt: skip
        for row, img, what in zip(batch, outputs, where, strict=True):
            failed += img is None
            cell = None if img is None else png(img)
            writer.add({**embedded(row, images, what), output_column: cell})
        if progress is not None:
            progress(len(batch))
    writer.flush()
    if rank == 0:
        write_card(out, f"{Path(out).name}: {rows.source.ref} translated")
    return DatasetTranslation(
        Path(out), rows.split, rows.column, output_column, writer.done, resumed, writer.files,
        failed,
    )  # fmt: skip


def _translate_rows(
    translator: Any,
    model: Any,
    batch: list[dict[str, Any]],
    column: str,
    where: list[str],
    on_failure: Callable[[str], None] | None,
    **kwargs: Any,
) -> list[Image.Image | None]:
    """The batch's images translated together; without `on_failure` an error propagates, with
    it a row that cannot be decoded or translated gives None (and `on_failure(why)`)."""
    pairs = zip(batch, where, strict=True)
    if on_failure is None:
        decoded = [decode_image(row[column], what, translator.max_pixels) for row, what in pairs]
        return translator.translate(model, decoded, **kwargs)
    inputs: list[Image.Image | None] = []
    for row, what in pairs:
        try:
            inputs.append(decode_image(row[column], what, translator.max_pixels))
        except DatasetError as e:
            on_failure(f"failed {what}: {e}")
            inputs.append(None)
    ok = [img for img in inputs if img is not None]
    try:
        done = iter(translator.translate(model, ok, **kwargs) if ok else [])
        return [None if img is None else next(done) for img in inputs]
    except Img2ImgError:  # one odd image: find it, keep the rest
        pass
    results: list[Image.Image | None] = []
    for img, what in zip(inputs, where, strict=True):
        try:
            results.append(None if img is None else translator.translate(model, [img], **kwargs)[0])
        except Img2ImgError as e:
            on_failure(f"failed {what}: cannot translate it: {e}")
            results.append(None)
    return results
