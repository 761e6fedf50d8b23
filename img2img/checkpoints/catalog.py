"""The catalog of pretrained generators (catalog.json, package data) and deployment overrides.

Each entry names a model by id (`family/name`), says what it expects and where its weights
live. Resolution order for an id (see hub.py): the local folder `IMG2IMG_WEIGHTS_DIR/<id>/`,
a Hub repo set by the deployer, then the entry's own sources in order.

Your own models live beside them, one folder each: `<weights dir>/custom/<name>/` holding
one checkpoint file that load_generator reads. Their id is `custom/<name>` (`custom_ids`);
a catalog id always wins over a folder of the same name (the catalog has no `custom/` ids).

Deployer overrides (environment):
    IMG2IMG_REPO_<ID>=namespace/repo[@revision]   one model, e.g. IMG2IMG_REPO_IMG2IMG_NIGHT2DAY
    IMG2IMG_HUB_NAMESPACE=namespace               every model, as namespace/img2img-<family>-<name>
Both point at repos in our format (config.json + model.safetensors), e.g. made by `mirror`.
    IMG2IMG_URL_MIRROR=http://host/path            replaces http://efrosgans.eecs.berkeley.edu
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import UnknownModelError
from .download import cache_dir

# The package's own data file, found the same way from a checkout and from an installed wheel.
CATALOG_PATH = Path(str(resources.files(__package__) / "catalog.json"))
# A source checkout (app.py beside the package) keeps local weights in its weights/ folder.
CHECKOUT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Source:
    """One place the weights can come from."""

    type: str  # "hub" or "url"
    repo_id: str = ""
    filename: str = ""
    revision: str = "main"
    url: str = ""
    sha256: str | None = None
    files: tuple[str, ...] = ()  # extra files next to `filename` (our format: config.json)

    def describe(self) -> str:
        if self.type == "hub":
            return f"Hub {self.repo_id}/{self.filename}@{self.revision}"
        return f"URL {self.url}"


@dataclass(frozen=True)
class ModelEntry:
    id: str
    label: str
    task: str
    family: str  # "pix2pix" or "cyclegan": how it was trained
    format: str  # "junyanz", "huggan" or "img2img": how its file is laid out
    architecture: dict[str, Any]
    expects: str
    sources: tuple[Source, ...]
    preprocessing: dict[str, Any]
    dataset: str
    license: str
    license_id: str  # Hub licence identifier (mit, bsd-2-clause, ...)
    train: str
    reverse: str | None = None  # the opposite direction of a CycleGAN pair
    project: bool = False  # produced by our train.py; resolves once a deployer sets a repo
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def env_var(self) -> str:
        return "IMG2IMG_REPO_" + re.sub(r"[^A-Za-z0-9]", "_", self.id).upper()

    @property
    def uses_batchnorm(self) -> bool:
        return self.architecture.get("norm") == "batch"


def _entry(raw: dict[str, Any]) -> ModelEntry:
    raw = dict(raw)
    sources = tuple(Source(**s) for s in raw.pop("sources", []))
    known = set(ModelEntry.__dataclass_fields__)
    extra = {k: raw.pop(k) for k in list(raw) if k not in known}
    return ModelEntry(sources=sources, extra=extra, **raw)


@lru_cache(maxsize=4)
def load_catalog(path: Path = CATALOG_PATH) -> dict[str, ModelEntry]:
    """All entries by id, in file order."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    entries = [_entry(m) for m in data["models"]]
    return {e.id: e for e in entries}


def get_entry(model_id: str, catalog: dict[str, ModelEntry] | None = None) -> ModelEntry:
    """The entry for `model_id`; an unknown id raises an error listing the valid ones."""
    catalog = load_catalog() if catalog is None else catalog
    if model_id not in catalog:
        close = suggestions(model_id, catalog)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise UnknownModelError(
            f"unknown model id {model_id!r}; {hint}valid ids: {', '.join(sorted(catalog))}"
        )
    return catalog[model_id]


def suggestions(text: str, catalog: dict[str, ModelEntry] | None = None) -> list[str]:
    """Catalog ids a mistyped id probably meant (close spellings; the name without family)."""
    catalog = load_catalog() if catalog is None else catalog
    close = difflib.get_close_matches(text, list(catalog), n=3, cutoff=0.5)
    return close + [i for i in catalog if i.split("/")[-1] == text and i not in close]


def override_source(entry: ModelEntry) -> Source | None:
    """The deployer's Hub repo for this entry (our format), if the environment sets one."""
    value = os.environ.get(entry.env_var, "").strip()
    if not value and os.environ.get("IMG2IMG_HUB_NAMESPACE", "").strip():
        namespace = os.environ["IMG2IMG_HUB_NAMESPACE"].strip()
        value = f"{namespace}/{default_repo_name(entry.id)}"
    if not value:
        return None
    repo_id, _, revision = value.partition("@")
    return Source(
        type="hub",
        repo_id=repo_id,
        filename="model.safetensors",
        revision=revision or "main",
        files=("config.json",),
    )


def remote_sources(entry: ModelEntry) -> list[Source]:
    """Where the weights are fetched from, in order: the deployer's repo, then the catalog's."""
    return [s for s in (override_source(entry), *entry.sources) if s is not None]


def is_available(entry: ModelEntry) -> bool:
    """Whether resolution has anywhere to look: a local folder or at least one remote source
    (False only for project models nobody has trained and published yet)."""
    return local_dir(entry).is_dir() or bool(remote_sources(entry))


def default_repo_name(model_id: str) -> str:
    """Repo name a mirror of `model_id` gets: img2img-<family>-<name>."""
    return "img2img-" + re.sub(r"[^A-Za-z0-9._-]", "-", model_id.replace("/", "-"))


def local_dir(entry: ModelEntry) -> Path:
    """Where a deployer puts this model's checkpoint: <weights dir>/<family>/<name>/."""
    return weights_dir() / entry.id


def weights_dir() -> Path:
    """Local weights root: IMG2IMG_WEIGHTS_DIR; else weights/ of a source checkout (where
    app.py is); else, for an installed package, the cache's weights/ folder."""
    if os.environ.get("IMG2IMG_WEIGHTS_DIR"):
        return Path(os.environ["IMG2IMG_WEIGHTS_DIR"])
    if (CHECKOUT / "app.py").is_file():
        return CHECKOUT / "weights"
    return cache_dir() / "weights"


CUSTOM_FAMILY = "custom"  # your own models: <weights dir>/custom/<name>/, id custom/<name>
_CUSTOM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def custom_dir() -> Path:
    """Where your own models are kept, one folder per model: <weights dir>/custom/."""
    return weights_dir() / CUSTOM_FAMILY


def custom_folder(model_id: str) -> Path | None:
    """The folder of your own model `custom/<name>`, or None when `model_id` names none
    (not of that form, a name with a path in it, no such folder, or a catalog id)."""
    family, _, name = model_id.partition("/")
    if family != CUSTOM_FAMILY or not _CUSTOM_NAME.fullmatch(name) or model_id in load_catalog():
        return None
    folder = custom_dir() / name
    return folder if folder.is_dir() else None


def custom_ids() -> list[str]:
    """Ids of your own models (`custom/<name>`, sorted): folders of custom_dir() holding a
    file. File checks only; what each holds is local.check's answer."""
    root = custom_dir()
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    ids = [f"{CUSTOM_FAMILY}/{p.name}" for p in folders if any(q.is_file() for q in p.iterdir())]
    return [i for i in ids if custom_folder(i) is not None]


def grouped(catalog: dict[str, ModelEntry] | None = None) -> dict[str, list[ModelEntry]]:
    """Entries grouped by task, in catalog order (for the model picker)."""
    catalog = load_catalog() if catalog is None else catalog
    groups: dict[str, list[ModelEntry]] = {}
    for entry in catalog.values():
        groups.setdefault(entry.task, []).append(entry)
    return groups
