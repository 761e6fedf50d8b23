"""Catalog ids -> local checkpoint files -> modules (publishing is publish.py).

Resolution order for a catalog id:
1. the local folder IMG2IMG_WEIGHTS_DIR/<id>/ (any supported checkpoint file in it);
2. the deployer's Hub repo (IMG2IMG_REPO_<ID> or IMG2IMG_HUB_NAMESPACE, see catalog.py);
3. the entry's sources in order: Hub files through `hf_hub_download` (so HF_HOME, HF_TOKEN,
   HF_ENDPOINT and HF_HUB_OFFLINE work as usual) and original URLs (download.py).
When every source fails, WeightsUnavailableError lists each one and why.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from torch import nn

from .catalog import (
    ModelEntry,
    Source,
    get_entry,
    load_catalog,
    local_dir,
    remote_sources,
)
from .download import BERKELEY_HOST, cache_dir, download, is_offline, quarantine
from .errors import CheckpointError, WeightsUnavailableError
from .weights import find_checkpoint_file, load_generator, read_state_dict

# A deployer may retrain at another width or depth; a different network type is an error.
ARCH_FIELDS = ("architecture",)


def source_url(source: Source) -> str:
    """The URL to fetch: IMG2IMG_URL_MIRROR replaces the original Berkeley host."""
    mirror = os.environ.get("IMG2IMG_URL_MIRROR", "").rstrip("/")
    if mirror and source.url.startswith(BERKELEY_HOST):
        return mirror + source.url[len(BERKELEY_HOST) :]
    return source.url


def _url_dest(source: Source) -> Path:
    # Keyed by the original URL: a mirror serves the same file, checked by the same sha256.
    key = hashlib.sha256(source.url.encode()).hexdigest()[:16]
    return cache_dir() / "urls" / key / Path(source.url).name


def _from_hub(source: Source, fresh: bool) -> Path:
    from huggingface_hub import hf_hub_download  # imported late: it reads HF_* at import

    paths = [
        hf_hub_download(source.repo_id, name, revision=source.revision, force_download=fresh)
        for name in (source.filename, *source.files)
    ]
    return Path(paths[0])


def _parses(path: Path) -> None:
    """A new download must be a readable checkpoint before its checksum is recorded."""
    read_state_dict(path)


def _fetch(source: Source, progress: bool, fresh: bool = False) -> Path:
    if source.type == "hub":
        return _from_hub(source, fresh)  # hf_hub_download shows its own progress bar
    if source.type == "url":
        url, dest = source_url(source), _url_dest(source)
        return download(url, dest, source.sha256, progress=progress, check=_parses)
    raise CheckpointError(f"unknown source type {source.type!r}")


def _downloaded(path: Path) -> bool:
    """Whether `path` is a cached download (ours or huggingface_hub's), not a user's file."""
    from huggingface_hub import constants

    roots = (cache_dir() / "urls", Path(constants.HF_HUB_CACHE))
    return any(path.absolute().is_relative_to(root.absolute()) for root in roots)


def _quarantine(path: Path) -> None:
    """Take an unusable cached download out of the cache so that it is fetched again."""
    if path.absolute().is_relative_to((cache_dir() / "urls").absolute()):
        quarantine(path)
        return
    blob = path.resolve()  # huggingface_hub: snapshots/<rev>/<file> -> blobs/<etag>
    path.unlink(missing_ok=True)
    blob.unlink(missing_ok=True)


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def _hint(entry: ModelEntry) -> str:
    hints = [f"put a checkpoint file in {local_dir(entry)}/"]
    if is_offline():
        hints.append("unset HF_HUB_OFFLINE to allow downloads")
    hints.append(f"or set {entry.env_var}=namespace/repo to a Hub repo in our format")
    return "; ".join(hints)


def resolve(model_id: str, progress: bool = True, fresh: bool = False) -> Path:
    """Local path (file or folder) holding the weights of catalog model `model_id`.

    `fresh` downloads again even if the Hub cache has the file (after a quarantine)."""
    entry = get_entry(model_id)
    local = local_dir(entry)
    tried = []
    if local.is_dir():
        try:
            find_checkpoint_file(local)
            return local
        except CheckpointError as e:
            tried.append(f"local folder {local}: {e}")
    else:
        tried.append(f"local folder {local}: not present")
    sources = remote_sources(entry)
    if not sources:
        tried.append(f"no public source yet (set {entry.env_var} once it is published)")
    for source in sources:
        try:
            return _fetch(source, progress, fresh)
        except Exception as e:  # noqa: BLE001 - every failure is reported below
            tried.append(f"{source.describe()}: {_reason(e)}")
    raise WeightsUnavailableError(
        f"weights for {model_id} are not available. Tried: "
        + " | ".join(tried)
        + f". What you can do: {_hint(entry)}."
    )


def _check_catalog_architecture(entry: ModelEntry, module: nn.Module, source: Path) -> None:
    want = {k: entry.architecture[k] for k in ARCH_FIELDS if k in entry.architecture}
    have = {k: module.config.get(k) for k in want}
    if want != have:
        raise CheckpointError(
            f"the weights found for {entry.id} in {source} are a {have} generator, but the "
            f"catalog describes {want}"
        )


def load_model(
    reference: str | os.PathLike, progress: bool = True, name: str | None = None
) -> nn.Module:
    """A generator from a catalog id or a checkpoint path (the CLI's and app's loader).

    A string that is a catalog id always means that model (with the catalog's architecture
    check), even if a folder of that name exists here: `./cyclegan/horse2zebra` is a path.
    `name` picks one network of a file that holds several (see `load_generator`).
    """
    catalog = load_catalog()
    if isinstance(reference, str) and reference in catalog:
        entry = catalog[reference]
        path = resolve(entry.id, progress)
        try:
            module = load_generator(path, name)
        except CheckpointError:
            if not _downloaded(path):
                raise  # the deployer's own file: theirs to fix, never deleted
            _quarantine(path)  # a cached download that does not load: fetch it once more
            path = resolve(entry.id, progress, fresh=True)
            module = load_generator(path, name)
        _check_catalog_architecture(entry, module, path)
        return module
    path = Path(reference)
    if path.exists():
        return load_generator(path, name)
    raise CheckpointError(
        f"{reference} is neither a catalog id nor an existing checkpoint file or folder "
        f"(`img2img models` lists the ids; e.g. {next(iter(catalog))})"
    )
