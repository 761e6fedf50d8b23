"""Catalog ids -> local checkpoint files -> modules; publishing our format to the Hub.

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
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from .catalog import (
    ModelEntry,
    Source,
    default_repo_name,
    get_entry,
    load_catalog,
    local_dir,
    remote_sources,
)
from .download import download, is_offline
from .errors import CheckpointError
from .weights import find_checkpoint_file, load_generator, save_pretrained

# A deployer may retrain at another width or depth; a different network type is an error.
ARCH_FIELDS = ("architecture",)
ORIGINAL_HOST = "http://efrosgans.eecs.berkeley.edu"


class WeightsUnavailableError(CheckpointError):
    """No source of a catalog model could provide its weights."""


def cache_dir() -> Path:
    """Where URL downloads live: IMG2IMG_CACHE, else $HF_HOME/img2img."""
    if os.environ.get("IMG2IMG_CACHE"):
        return Path(os.environ["IMG2IMG_CACHE"])
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "img2img"


def source_url(source: Source) -> str:
    """The URL to fetch: IMG2IMG_URL_MIRROR replaces the original Berkeley host."""
    mirror = os.environ.get("IMG2IMG_URL_MIRROR", "").rstrip("/")
    if mirror and source.url.startswith(ORIGINAL_HOST):
        return mirror + source.url[len(ORIGINAL_HOST) :]
    return source.url


def _url_dest(source: Source) -> Path:
    # Keyed by the original URL: a mirror serves the same file, checked by the same sha256.
    key = hashlib.sha256(source.url.encode()).hexdigest()[:16]
    return cache_dir() / "urls" / key / Path(source.url).name


def _from_hub(source: Source) -> Path:
    from huggingface_hub import hf_hub_download  # imported late: it reads HF_* at import

    paths = [
        hf_hub_download(source.repo_id, name, revision=source.revision)
        for name in (source.filename, *source.files)
    ]
    return Path(paths[0])


def _fetch(source: Source, progress: bool) -> Path:
    if source.type == "hub":
        return _from_hub(source)  # hf_hub_download shows its own progress bar
    if source.type == "url":
        return download(source_url(source), _url_dest(source), source.sha256, progress=progress)
    raise CheckpointError(f"unknown source type {source.type!r}")


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def _hint(entry: ModelEntry) -> str:
    hints = [f"put a checkpoint file in {local_dir(entry)}/"]
    if is_offline():
        hints.append("unset HF_HUB_OFFLINE to allow downloads")
    hints.append(f"or set {entry.env_var}=namespace/repo to a Hub repo in our format")
    return "; ".join(hints)


def resolve(model_id: str, progress: bool = True) -> Path:
    """Local path (file or folder) holding the weights of catalog model `model_id`."""
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
            return _fetch(source, progress)
        except Exception as e:  # noqa: BLE001 - every failure is reported below
            tried.append(f"{source.describe()}: {_reason(e)}")
    raise WeightsUnavailableError(
        f"weights for {model_id} are not available. Tried: "
        + " | ".join(tried)
        + f". What you can do: {_hint(entry)}."
    )


def _check_catalog_architecture(entry: ModelEntry, module: nn.Module) -> None:
    want = {k: entry.architecture[k] for k in ARCH_FIELDS if k in entry.architecture}
    have = {k: module.config.get(k) for k in want}
    if want != have:
        raise CheckpointError(
            f"the weights found for {entry.id} are a {have} generator, but the catalog "
            f"describes {want}"
        )


def load_model(reference: str | os.PathLike, progress: bool = True) -> nn.Module:
    """A generator from a checkpoint path or a catalog id (the CLI's and app's loader)."""
    path = Path(reference)
    if path.exists():
        return load_generator(path)
    if str(reference) in load_catalog():
        entry = get_entry(str(reference))
        module = load_generator(resolve(entry.id, progress))
        _check_catalog_architecture(entry, module)
        return module
    raise CheckpointError(
        f"{reference} is neither a checkpoint file/folder nor a catalog id "
        f"(see weights/catalog.json; e.g. {next(iter(load_catalog()))})"
    )


def model_card(config: dict[str, Any], entry: ModelEntry | None = None, **fields: str) -> str:
    """README.md for a Hub repo in our format: YAML front matter + usage + recipe."""
    family = entry.family if entry else fields.get("family", "pix2pix")
    license_id = fields.get("license_id") or (entry.license_id if entry else None)
    dataset = fields.get("dataset") or (entry.dataset if entry else "")
    recipe = fields.get("train") or (entry.train if entry else "")
    title = entry.label if entry else fields.get("title", "img2img generator")
    meta = ["---", "library_name: img2img", "pipeline_tag: image-to-image", "tags:"]
    meta += [f"- {t}" for t in ("image-to-image", family, "gan", "pytorch")]
    meta += [f"license: {license_id or 'other'}"]
    if dataset:
        meta += ["datasets:", f"- {dataset.split(' ')[0]}"]
    meta += ["---", ""]
    body = [
        f"# {title}",
        "",
        f"{family} generator in the img2img format: `config.json` (architecture) + "
        "`model.safetensors`.",
        "",
        f"- architecture: `{config}`",
        f"- dataset: {dataset or 'unknown'}",
        f"- license: {entry.license if entry else license_id or 'see repository'}",
    ]
    if entry is not None:
        body.append(f"- expects: {entry.expects}; converted from: {entry.id}")
    if recipe:
        body += ["", "## Reproduce", "", f"```\n{recipe}\n```"]
    body += [
        "",
        "## Use",
        "",
        "```\npython -m img2img translate photo.jpg -o out/ --checkpoint <this repo's folder>\n```",
        "",
    ]
    return "\n".join(meta + body)


def push(
    directory: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    message: str = "Upload img2img generator",
) -> str:
    """Upload a folder in our format (config.json, model.safetensors, README.md)."""
    from huggingface_hub import HfApi

    directory = Path(directory)
    module = load_generator(directory)  # refuse to publish something that does not load
    if not (directory / "README.md").is_file():
        (directory / "README.md").write_text(model_card(module.config))
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(
        folder_path=directory,
        repo_id=repo_id,
        commit_message=message,
        allow_patterns=["config.json", "model.safetensors", "README.md"],
    )
    return str(getattr(info, "commit_url", info))


def default_mirror_repo(model_id: str) -> str:
    """IMG2IMG_HUB_NAMESPACE/img2img-<family>-<name>, where the catalog's override finds it."""
    namespace = os.environ.get("IMG2IMG_HUB_NAMESPACE", "").strip()
    if not namespace:
        raise CheckpointError("pass --repo-id NS/NAME or set IMG2IMG_HUB_NAMESPACE")
    return f"{namespace}/{default_repo_name(get_entry(model_id).id)}"


def mirror(model_id: str, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Fetch a catalog model from its original source, convert it to our format, publish it."""
    entry = get_entry(model_id)
    module = load_model(model_id)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(
            module, tmp, card=model_card(module.config, entry), metadata={"source_id": model_id}
        )
        return push(
            tmp,
            repo_id,
            private=private,
            token=token,
            message=f"Mirror of {model_id} in img2img format",
        )
