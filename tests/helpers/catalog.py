"""Catalog entries picked by what a test needs of them, never by a hard-coded id.

A test that needs "a HugGAN model from the Hub" or "a classic CycleGAN pair" takes the first
entry of img2img/checkpoints/catalog.json with that property, and serves its weights from the
loopback fakes at the places the entry names: a Hub source as (repo_id, filename) in a FakeHub, a
URL source as its path below the Berkeley host in a FileServer (IMG2IMG_URL_MIRROR).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from img2img.checkpoints.catalog import ModelEntry, Source, get_entry, load_catalog


def first(predicate: Callable[[ModelEntry], bool]) -> ModelEntry:
    """The first catalog entry, in file order, for which `predicate` holds."""
    return next(entry for entry in load_catalog().values() if predicate(entry))


def source_type(entry: ModelEntry) -> str:
    """ "hub" or "url" for the entry's first source, "" for a project model without one."""
    return entry.sources[0].type if entry.sources else ""


def hub_file(entry: ModelEntry) -> tuple[str, str]:
    """(repo_id, filename) of the entry's Hub source: the key a FakeHub serves it under."""
    source = _first_source(entry, "hub")
    return source.repo_id, source.filename


def hub_source_text(entry: ModelEntry) -> str:
    """How errors name the entry's Hub source: `Hub <repo>/<file>@<revision>`."""
    source = _first_source(entry, "hub")
    return f"Hub {source.repo_id}/{source.filename}@{source.revision}"


def mirror_path(entry: ModelEntry) -> str:
    """The entry's URL source as a path below IMG2IMG_URL_MIRROR: a FileServer key."""
    return urlsplit(_first_source(entry, "url").url).path.lstrip("/")


def _first_source(entry: ModelEntry, kind: str) -> Source:
    assert source_type(entry) == kind, f"{entry.id} has no {kind} source first"
    return entry.sources[0]


# One entry of each kind the reference fixtures stand for: a HugGAN U-Net (Hub source), a
# classic pix2pix U-Net and a classic CycleGAN ResNet pair (URL sources), and one of ours.
HUGGAN = first(lambda e: e.format == "huggan")
UNET = first(lambda e: e.format == "junyanz" and e.architecture["architecture"] == "unet")
RESNET = first(lambda e: e.format == "junyanz" and e.reverse is not None)
RESNET_REVERSE = get_entry(RESNET.reverse)
PROJECT = first(lambda e: e.project)  # no source until a deployer sets a repo
