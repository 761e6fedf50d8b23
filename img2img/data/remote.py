"""The public pix2pix / CycleGAN datasets by name: URL, resumable download, unpacked once.

Archives come from http://efrosgans.eecs.berkeley.edu (or IMG2IMG_DATASET_MIRROR) through
img2img.checkpoints.download; a set is unpacked (archive.py), its layout checked (layout.py)
and marked complete, so a second run reads the folder without touching the network.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..checkpoints.download import BERKELEY_HOST, DISK_FULL, download
from ..errors import DatasetError
from .archive import extract_archive
from .layout import detect_layout
from .samples import PAIRED_FAMILIES

__all__ = ["BERKELEY_HOST", "COMPLETE", "DATASETS", "RemoteDataset", "fetch_dataset"]

# Public sets: pix2pix ones are aligned .tar.gz, CycleGAN ones unaligned .zip.
DATASETS = {
    "pix2pix": ("facades", "maps", "edges2shoes", "edges2handbags", "night2day"),
    "cyclegan": (
        "horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo",
        "cezanne2photo", "ukiyoe2photo", "vangogh2photo", "maps", "facades",
        "iphone2dslr_flower", "ae_photos",
    ),
}  # fmt: skip
COMPLETE = ".complete"


@dataclass(frozen=True)
class RemoteDataset:
    source: str  # "pix2pix" (aligned .tar.gz) or "cyclegan" (unaligned .zip)
    name: str

    @property
    def filename(self) -> str:
        return f"{self.name}.tar.gz" if self.source == "pix2pix" else f"{self.name}.zip"

    def url(self, base: str) -> str:
        return f"{base.rstrip('/')}/{self.source}/datasets/{self.filename}"


def find_dataset(name: str, family: str) -> RemoteDataset:
    """`maps`, or `pix2pix/maps` to choose the source; CycleGAN prefers its own archives."""
    source, _, short = name.rpartition("/")
    paired = family in PAIRED_FAMILIES
    order = [source] if source else (["pix2pix"] if paired else list(DATASETS)[::-1])
    for src in order:
        if short in DATASETS.get(src, ()):
            return RemoteDataset(src, short)
    known = ", ".join(f"{s}/{n}" for s in DATASETS for n in DATASETS[s])
    hint = f" ({family} trains on the aligned pix2pix sets)" if paired else ""
    raise DatasetError(f"unknown dataset {name!r} for {family}{hint}; known: {known}")


def dataset_url_base(override: str = "") -> str:
    return override or os.environ.get("IMG2IMG_DATASET_MIRROR", "") or BERKELEY_HOST


def data_root(override: str = "") -> Path:
    default = Path.home() / ".cache" / "img2img" / "datasets"
    return Path(override or os.environ.get("IMG2IMG_DATA", "") or default)


def fetch_dataset(
    name: str, family: str, root: str = "", url_base: str = "", progress: bool = True
) -> Path:
    """Download (resumably) and unpack a public dataset once; return its checked folder."""
    remote = find_dataset(name, family)
    cache = data_root(root)
    dest = cache / remote.source / remote.name
    if (dest / COMPLETE).is_file():
        return dest
    archive = download(
        remote.url(dataset_url_base(url_base)),
        cache / "archives" / remote.source / remote.filename,
        progress=progress,
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{remote.name}.") as tmp:
        try:
            extract_archive(archive, Path(tmp))
        except DatasetError as e:  # a cut-short or hostile archive: fetch afresh next time
            if getattr(e.__cause__, "errno", None) in DISK_FULL:
                raise  # the archive is fine: keep it for the next run
            archive.unlink(missing_ok=True)
            archive.with_name(archive.name + ".sha256").unlink(missing_ok=True)
            raise DatasetError(f"{e} (the archive was deleted: run again to download it)") from e
        folders = [p for p in Path(tmp).iterdir() if p.is_dir()]
        top = Path(tmp) / remote.name
        top = top if top.is_dir() or len(folders) != 1 else folders[0]
        detect_layout(top)  # refuse to cache a set we could not train on
        if dest.exists():  # a previous, interrupted unpacking
            shutil.rmtree(dest)
        os.replace(top, dest)
    (dest / COMPLETE).write_text(remote.url(BERKELEY_HOST) + "\n")
    archive.unlink()  # unpacked and checked: the archive is no longer needed
    return dest
