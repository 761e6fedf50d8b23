"""Catalog ids -> local checkpoint files -> modules (publishing is publish.py).

Resolution order for a catalog id:
1. the local folder IMG2IMG_WEIGHTS_DIR/<id>/ (any supported checkpoint file in it);
2. the deployer's Hub repo (IMG2IMG_REPO_<ID> or IMG2IMG_HUB_NAMESPACE, see catalog.py);
3. the entry's sources in order: Hub files through `hf_hub_download` (so HF_HOME, HF_TOKEN,
   HF_ENDPOINT and HF_HUB_OFFLINE work as usual) and original URLs (download.py).
When every source fails, WeightsUnavailableError lists each one and why. A source whose
server cannot be reached (network.py: one short probe per host, remembered) is not tried:
its cached copy is used if there is one, else it fails at once instead of after the HTTP
client's timeouts and retries. `availability` says where weights would come from, cheaply:
what a local file is (local.check, remembered per file size and time), and, for a model that
would download, whether the last probe found its server unreachable (never probing itself:
`probe_sources` does, for the app's refresh).
A local file serves its catalog id when it is a generator with the entry's channels in any
family's layout (local.fits): it is loaded with its own detected architecture, and says what
it is (another kind than the catalog's too: local.kind_note).
Your own models (`custom/<name>`, catalog.custom_folder) load by that id too; a catalog id
always wins, then your model's name, then a path.
`fetch_repo` / `load_repo` take any Hub repo a user names (the app's "your own model"):
our format or a HugGAN-style file, size-capped before download, loaded as strictly.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..errors import CheckpointError, WeightsUnavailableError
from .catalog import (
    CUSTOM_FAMILY,
    ModelEntry,
    Source,
    custom_dir,
    custom_folder,
    get_entry,
    load_catalog,
    local_dir,
    remote_sources,
    suggestions,
)
from .download import BERKELEY_HOST, cache_dir, download, is_offline, quarantine, verify_cached
from .local import advice, check, fits, fits_brief, kind_note, short_name
from .network import host_of, known, reachable
from .weights import find_checkpoint_file, load_generator, read_state_dict


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


def _endpoint(source: Source) -> str:
    """The server a source is fetched from (the Hub endpoint, or the URL's mirror)."""
    if source.type == "hub":
        from huggingface_hub import constants

        return constants.ENDPOINT
    return source_url(source)


def cached(source: Source) -> Path | None:
    """The source's file if a complete copy is already in a cache (no network used)."""
    if source.type == "url":
        dest = _url_dest(source)
        return dest if verify_cached(dest, source.sha256) else None
    from huggingface_hub import try_to_load_from_cache

    paths = [
        try_to_load_from_cache(source.repo_id, name, revision=source.revision)
        for name in (source.filename, *source.files)
    ]
    return Path(paths[0]) if all(isinstance(p, str) for p in paths) else None


@dataclass(frozen=True)
class Availability:
    """Where a model's weights would come from right now, without downloading anything."""

    # "local": a usable file in the local folder; "unusable": a local file that cannot serve
    # it; "cached"; "download"; "offline": remote only, and no network (HF_HUB_OFFLINE, or the
    # last probe found every source's server unreachable); "unpublished".
    state: str
    source: str  # the local folder, the cached source, or the source a download would use
    detail: str = ""  # local: what the file is; unusable: why, and what to do; offline: why
    brief: str = ""  # a few words of the detail, for a mark

    @property
    def ready(self) -> bool:
        return self.state in ("local", "cached")


def _offline_reason(sources: list[Source]) -> str:
    """Why none of `sources` can be downloaded now ("" when one may be): HF_HUB_OFFLINE, or
    the last probe of each one's server (a server never probed counts as reachable)."""
    if is_offline():
        return "HF_HUB_OFFLINE is set"
    if all(known(_endpoint(s)) is False for s in sources):
        hosts = sorted({"{}:{}".format(*host_of(_endpoint(s))) for s in sources})
        return f"no network ({', '.join(hosts)} cannot be reached)"
    return ""


def _local_availability(entry: ModelEntry, local: Path) -> Availability:
    verdict = check(local)
    if not verdict.ok:
        why = f"{verdict.problem}. {advice(entry, verdict.file or local)}"
        return Availability("unusable", str(local), why, verdict.brief)
    if problem := fits(entry, verdict.config):
        why = f"{verdict.file}: {problem}. {advice(entry, verdict.file)}"
        return Availability("unusable", str(local), why, fits_brief(entry, verdict.config))
    note = kind_note(entry, verdict.config)
    what = f"{verdict.what} ({note})" if note else verdict.what
    return Availability("local", str(local), what, short_name(verdict.config))


def availability(entry: ModelEntry) -> Availability:
    """Cheap: file checks, a local file's header (local.check, remembered), the last probe."""
    local = local_dir(entry)
    if local.is_dir() and any(p.is_file() for p in local.iterdir()):
        return _local_availability(entry, local)
    sources = remote_sources(entry)
    for source in sources:
        if (
            source.type == "url"
            and _url_dest(source).is_file()
            or (source.type == "hub" and cached(source) is not None)
        ):
            return Availability("cached", source.describe())
    if sources and (why := _offline_reason(sources)):
        brief = "offline" if is_offline() else "no network"
        return Availability("offline", sources[0].describe(), why, brief)
    if sources:
        return Availability("download", sources[0].describe())
    return Availability("unpublished", f"set {entry.env_var} once it is published")


def probe_sources(entries: list[ModelEntry]) -> None:
    """Probe every server that `entries` would download from, in parallel (network.reachable:
    remembered for IMG2IMG_PROBE_TTL), so that `availability` knows which cannot be reached."""
    if is_offline():
        return
    urls = {_endpoint(s) for e in entries for s in remote_sources(e)}
    hosts = {host_of(u): u for u in urls}
    threads = [threading.Thread(target=reachable, args=(u,), daemon=True) for u in hosts.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


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
        if not is_offline() and not reachable(_endpoint(source)):  # fail fast, not in 20 s
            if not fresh and (path := cached(source)) is not None:
                return path
            host = "{}:{}".format(*host_of(_endpoint(source)))
            tried.append(f"{source.describe()}: no network ({host} cannot be reached)")
            continue
        try:
            return _fetch(source, progress, fresh)
        except Exception as e:  # noqa: BLE001 - every failure is reported below
            tried.append(f"{source.describe()}: {_reason(e)}")
    raise WeightsUnavailableError(
        f"weights for {model_id} are not available. Tried: "
        + " | ".join(tried)
        + f". What you can do: {_hint(entry)}."
    )


def _check_catalog_fit(entry: ModelEntry, module: nn.Module, source: Path) -> None:
    """A loaded generator serves `entry` if it has its channels (local.fits)."""
    if problem := fits(entry, module.config):
        file = find_checkpoint_file(source) if source.is_dir() else source  # name the file
        raise CheckpointError(
            f"the weights found for {entry.id} in {file} cannot serve it: {problem}. "
            + advice(entry, file)
        )


def _load_custom(model_id: str, folder: Path, name: str | None) -> nn.Module:
    try:
        return load_generator(folder, name)
    except CheckpointError as e:
        raise CheckpointError(
            f"your model {model_id} cannot be loaded: {e}. What you can do: replace the file "
            f"in {folder} with a generator checkpoint (.safetensors, .pth or .bin)"
        ) from e


def load_model(
    reference: str | os.PathLike, progress: bool = True, name: str | None = None
) -> nn.Module:
    """A generator from a catalog id or a checkpoint path (the CLI's and app's loader).

    A string that is a catalog id always means that model (its file must be a generator
    with the entry's channels, local.fits), even if a folder of that name exists here:
    `./cyclegan/horse2zebra` is a path. Next, `custom/<name>` is your own model kept in
    <weights dir>/custom/<name>/; anything else is a path.
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
        _check_catalog_fit(entry, module, path)
        return module
    if isinstance(reference, str) and (folder := custom_folder(reference)) is not None:
        return _load_custom(reference, folder, name)
    path = Path(reference)
    if path.exists():
        return load_generator(path, name)
    close = suggestions(str(reference), catalog)
    if isinstance(reference, str) and (custom_dir() / reference).is_dir():
        close.append(f"{CUSTOM_FAMILY}/{reference}")  # your model's name without custom/
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise CheckpointError(
        f"{reference} is neither a catalog id nor an existing checkpoint file or folder; "
        f"{hint}`img2img models` lists the ids"
    )


# A Hub repo given by a user (the app's "your own model"): the files tried, in order.
REPO_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _parse_repo(reference: str) -> tuple[str, str]:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    repo_id, _, revision = reference.strip().partition("@")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise CheckpointError(
            f"{reference.strip()[:100]!r} is not a Hub repo id: write namespace/name, "
            "e.g. huggan/pix2pix-maps (optionally @revision)"
        ) from e
    return repo_id, revision or "main"


def _repo_from_cache(repo_id: str, revision: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    for name in REPO_WEIGHT_FILES:
        path = try_to_load_from_cache(repo_id, name, revision=revision)
        if isinstance(path, str):
            return Path(path)
    return None


def fetch_repo(reference: str, max_bytes: int | None = None) -> Path:
    """The checkpoint file of Hub repo `reference` ("namespace/name[@revision]"), downloaded
    with `hf_hub_download` (cached; HF_TOKEN, HF_ENDPOINT and HF_HUB_OFFLINE work as usual).

    Tried in order: our format (model.safetensors, with its config.json), then a HugGAN-style
    pytorch_model.bin. A file over `max_bytes` is refused before it is downloaded. Nothing is
    loaded here: pass the path to `load_generator` (strict, never unpickles code). Raises
    CheckpointError (bad id, no weights file, too large) or WeightsUnavailableError.
    """
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    repo_id, revision = _parse_repo(reference)
    if is_offline() or not reachable(constants.ENDPOINT):
        if (path := _repo_from_cache(repo_id, revision)) is not None:
            return path
        why = "HF_HUB_OFFLINE is set" if is_offline() else "no network ({}:{} cannot be reached)"
        raise WeightsUnavailableError(
            f"weights for Hub repo {repo_id} are not available. Tried: the Hugging Face cache: "
            f"not there | {constants.ENDPOINT}: {why.format(*host_of(constants.ENDPOINT))}. "
            "What you can do: upload the checkpoint file instead; or load the repo once on a "
            "machine with network (it is cached in HF_HOME)"
        )
    for name in REPO_WEIGHT_FILES:
        try:
            meta = get_hf_file_metadata(hf_hub_url(repo_id, name, revision=revision))
        except EntryNotFoundError:
            continue
        except RepositoryNotFoundError as e:
            raise WeightsUnavailableError(
                f"Hub repo {repo_id} was not found. What you can do: check the spelling; a "
                "private or gated repo needs HF_TOKEN set on the server"
            ) from e
        except Exception as e:  # noqa: BLE001 - network and server errors, reported as such
            raise WeightsUnavailableError(
                f"weights for Hub repo {repo_id} are not available. Tried: {_reason(e)}. What "
                "you can do: try again later, or upload the checkpoint file instead"
            ) from e
        if max_bytes is not None and (meta.size or 0) > max_bytes:
            raise CheckpointError(
                f"{repo_id}/{name} is {meta.size / 1e6:.0f} MB, over the limit of "
                f"{max_bytes / 1e6:.0f} MB set here (IMG2IMG_MAX_CHECKPOINT_MB)"
            )
        path = Path(hf_hub_download(repo_id, name, revision=revision))
        if name.endswith(".safetensors"):  # our format describes itself in config.json
            try:
                hf_hub_download(repo_id, "config.json", revision=revision)
            except EntryNotFoundError:
                pass  # a bare safetensors file: its architecture is read off its tensors
        return path
    raise CheckpointError(
        f"Hub repo {repo_id}@{revision} has no {' or '.join(REPO_WEIGHT_FILES)}. What you can "
        "do: publish the generator with `img2img push` (our format), or upload the file instead"
    )


def load_repo(reference: str, max_bytes: int | None = None) -> nn.Module:
    """A generator from a Hub repo (see `fetch_repo`), loaded strictly by `load_generator`."""
    return load_generator(fetch_repo(reference, max_bytes))
