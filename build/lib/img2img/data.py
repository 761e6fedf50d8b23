"""Training data: the public pix2pix / CycleGAN datasets by name, local folders, safe extraction.

Two layouts are recognised, in a downloaded archive or a local folder:

    aligned    train/ (+ val/, test/): each image is A and B side by side (A | B)
    unaligned  trainA/ + trainB/ (+ testA/ + testB/): two unpaired image folders

pix2pix needs aligned data. CycleGAN takes either; an aligned set is then used unpaired
(its left halves are domain A, its right halves domain B, drawn independently).

Archives come from http://efrosgans.eecs.berkeley.edu (or IMG2IMG_DATASET_MIRROR) through
img2img.download (progress bar, resume, retries), and are unpacked member by member: only
plain files and folders, no absolute or `..` paths, no links or devices, bounded size and
count. Samples are addressed by (epoch, index) keys (see training/sampler.py) and the
augmentation randomness of sample i in epoch e comes from its own generator seeded with
(seed, e, i), so data never depends on worker processes or on resuming.
"""

from __future__ import annotations

import os
import random
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch
from PIL import Image
from torch.utils.data import Dataset

from .download import BERKELEY_HOST, DISK_FULL, download
from .errors import DatasetError, ImageError
from .processing import open_image, to_tensor

# Public sets: pix2pix ones are aligned .tar.gz, CycleGAN ones unaligned .zip.
DATASETS = {
    "pix2pix": ("facades", "maps", "edges2shoes", "edges2handbags", "night2day"),
    "cyclegan": (
        "horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo",
        "cezanne2photo", "ukiyoe2photo", "vangogh2photo", "maps", "facades",
        "iphone2dslr_flower", "ae_photos",
    ),
}  # fmt: skip
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff"}
MAX_ARCHIVE_BYTES = 64 << 30  # the largest public set (edges2handbags) is ~9 GB
MAX_ARCHIVE_MEMBERS = 1_000_000
COMPLETE = ".complete"


# --- public datasets: name -> URL -> cache ----------------------------------------------


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
    order = [source] if source else (["pix2pix"] if family == "pix2pix" else list(DATASETS)[::-1])
    for src in order:
        if short in DATASETS.get(src, ()):
            return RemoteDataset(src, short)
    known = ", ".join(f"{s}/{n}" for s in DATASETS for n in DATASETS[s])
    hint = " (pix2pix trains on the aligned pix2pix sets)" if family == "pix2pix" else ""
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


# --- safe extraction ---------------------------------------------------------------------


def _member_path(dest: Path, name: str) -> Path:
    parts = PurePosixPath(name.replace("\\", "/")).parts  # "." or "./" (tar -C DIR .): dest
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise DatasetError(f"refusing archive member with an unsafe path: {name!r}")
    return dest.joinpath(*(p for p in parts if p != "."))


class _Budget:
    """Counts members and bytes written; raises once the archive exceeds the limits."""

    def __init__(self, max_bytes: int, max_members: int) -> None:
        self.bytes_left, self.members_left = max_bytes, max_members

    def member(self, name: str, size: int) -> None:
        self.members_left -= 1
        self.bytes_left -= size
        if self.members_left < 0 or self.bytes_left < 0:
            raise DatasetError(f"archive exceeds the size or member limits at {name!r}")


def _write(fileobj, target: Path) -> None:
    """Copy one member; its size was charged to the budget from the archive's header."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:  # "x": a repeated member name is an error, not a rewrite
        shutil.copyfileobj(fileobj, out, 1 << 20)


def extract_archive(
    archive: Path,
    dest: Path,
    max_bytes: int = MAX_ARCHIVE_BYTES,
    max_members: int = MAX_ARCHIVE_MEMBERS,
) -> None:
    """Unpack a .tar(.gz) or .zip into `dest`, plain files and folders only."""
    budget = _Budget(max_bytes, max_members)
    try:
        if archive.suffix.lower() == ".zip" or zipfile.is_zipfile(archive):
            _extract_zip(archive, dest, budget)
        else:
            _extract_tar(archive, dest, budget)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        if getattr(e, "errno", None) in DISK_FULL:
            raise DatasetError(f"cannot unpack {archive} into {dest}: {e.strerror}") from e
        raise DatasetError(f"cannot unpack {archive} (corrupt archive?): {e}") from e


def _extract_tar(archive: Path, dest: Path, budget: _Budget) -> None:
    with tarfile.open(archive, "r:*") as tf:
        for m in tf:  # streamed: one pass over a compressed archive
            target = _member_path(dest, m.name)
            budget.member(m.name, max(m.size, 0))
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif m.isfile():
                _write(tf.extractfile(m), target)
            else:
                kind = "a link" if m.issym() or m.islnk() else "a device or special file"
                raise DatasetError(f"refusing archive member {m.name!r}: it is {kind}")


def _extract_zip(archive: Path, dest: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # check everything before writing anything
            _member_path(dest, info.filename)
            budget.member(info.filename, info.file_size)
            mode = info.external_attr >> 16
            if mode & 0o170000 not in (0o100000, 0o040000, 0):  # regular file, folder, unset
                kind = "a link" if mode & 0o170000 == 0o120000 else "a special file"
                raise DatasetError(f"refusing archive member {info.filename!r}: it is {kind}")
        for info in infos:
            target = _member_path(dest, info.filename)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                with zf.open(info) as src:  # reads at most the declared size, checks CRC
                    _write(src, target)


# --- layouts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    kind: str  # "aligned" (A|B side by side) or "unaligned" (two folders)
    root: Path
    train: tuple[Path, ...]  # aligned: (train,); unaligned: (trainA, trainB)
    val: tuple[Path, ...]  # the held-out split in the same form, () if none


def detect_layout(root: Path, prefer: str = "unaligned") -> Layout:
    """Recognise train/ (aligned) or trainA/ + trainB/ (unaligned) under `root`.

    A folder with both (the classic Cityscapes preparation writes both) gives `prefer`.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    has = {p.name for p in root.iterdir() if p.is_dir()}
    unaligned = {"trainA", "trainB"} <= has
    if "train" in has and (prefer == "aligned" or not unaligned):
        val = next(((root / v,) for v in ("val", "test") if v in has), ())
        return Layout("aligned", root, (root / "train",), val)
    if unaligned:
        val = next(((root / a, root / b) for a, b in _VAL_UNALIGNED if {a, b} <= has), ())
        return Layout("unaligned", root, (root / "trainA", root / "trainB"), val)
    if "trainA" in has or "trainB" in has:
        missing = "trainB" if "trainA" in has else "trainA"
        raise DatasetError(f"{root} has an unpaired layout but no {missing}/ folder")
    found = sorted(p.name for p in root.iterdir())[:12]
    raise DatasetError(
        f"{root} is not a dataset folder: expected train/ (A|B image pairs side by side) "
        f"or trainA/ and trainB/ (unpaired); found {found or 'nothing'}"
    )


_VAL_UNALIGNED = (("valA", "valB"), ("testA", "testB"))


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder` (recursive, sorted); DatasetError when there are none."""
    files = sorted(
        p
        for p in Path(folder).rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")
    )
    if not files:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise DatasetError(f"no images in {folder} (looked for {exts})")
    return files


# --- samples -----------------------------------------------------------------------------

# An image reference: a file and which part of it ("full", or the "left"/"right" half).
ImageRef = tuple[Path, str]


def load_rgb(ref: ImageRef) -> Image.Image:
    """The referenced image (or half of an A|B image) as RGB; DatasetError if unreadable."""
    path, part = ref
    try:
        img = open_image(path, exif=False).convert("RGB")  # no EXIF rotation, as classic
    except (ImageError, OSError) as e:
        raise DatasetError(f"cannot read training image {path}: {e}") from e
    if part == "full":
        return img
    w, h = img.size
    if w < 2:
        raise DatasetError(f"{path} is {w}x{h}: too narrow to hold A and B side by side")
    return img.crop((0, 0, w // 2, h)) if part == "left" else img.crop((w // 2, 0, w, h))


@dataclass(frozen=True)
class Augment:
    """Classic resize_and_crop + flip: resize to load_size^2 (bicubic), random crop, flip."""

    load_size: int
    crop_size: int
    flip: bool

    def params(self, rng: random.Random) -> tuple[int, int, bool]:
        span = max(0, self.load_size - self.crop_size)
        x, y = rng.randint(0, span), rng.randint(0, span)
        return x, y, self.flip and rng.random() > 0.5

    def __call__(self, img: Image.Image, params: tuple[int, int, bool]) -> torch.Tensor:
        """RGB image -> (3, crop_size, crop_size) in [-1, 1]."""
        x, y, flip = params
        img = img.resize((self.load_size, self.load_size), Image.BICUBIC)
        img = img.crop((x, y, x + self.crop_size, y + self.crop_size))
        if flip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_tensor(img)[0]


def sample_rng(seed: int, epoch: int, index: int) -> random.Random:
    """The augmentation generator of one sample: a pure function of (seed, epoch, index)."""
    return random.Random(f"{seed}/{epoch}/{index}")  # str seeds hash with SHA-512: stable


def _key(key: int | tuple[int, int]) -> tuple[int, int]:
    return key if isinstance(key, tuple) else (0, key)


class PairedDataset(Dataset):
    """Aligned A|B images; A and B of a pair share one crop and one flip."""

    def __init__(self, files: list[Path], augment: Augment, seed: int, swap: bool) -> None:
        self.files, self.augment, self.seed, self.swap = files, augment, seed, swap

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = _key(key)
        refs = [(self.files[index], "left"), (self.files[index], "right")]
        a, b = (load_rgb(r) for r in (refs[::-1] if self.swap else refs))
        params = self.augment.params(sample_rng(self.seed, epoch, index))
        return {"A": self.augment(a, params), "B": self.augment(b, params)}


class UnpairedDataset(Dataset):
    """Two image lists: A in order, B drawn at random per sample (classic unaligned mode).

    `random_b=False` pairs A[i] with B[i % len(B)] (validation: deterministic, no draw).
    """

    def __init__(
        self, a: list[ImageRef], b: list[ImageRef], augment: Augment, seed: int, random_b: bool
    ) -> None:
        self.a, self.b, self.augment, self.seed, self.random_b = a, b, augment, seed, random_b

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = _key(key)
        rng = sample_rng(self.seed, epoch, index)
        j = rng.randrange(len(self.b)) if self.random_b else index % len(self.b)
        a, b = load_rgb(self.a[index % len(self.a)]), load_rgb(self.b[j])
        return {
            "A": self.augment(a, self.augment.params(rng)),
            "B": self.augment(b, self.augment.params(rng)),
        }


def _make(
    folders: tuple[Path, ...], kind: str, paired: bool, augment: Augment, seed: int,
    swap: bool, limit: int | None,
) -> Dataset:  # fmt: skip
    if paired:
        return PairedDataset(list_images(folders[0])[:limit], augment, seed, swap)
    if kind == "aligned":  # a paired set used unpaired: left halves are A, right halves B
        files = list_images(folders[0])[:limit]
        a, b = [(f, "left") for f in files], [(f, "right") for f in files]
    else:
        a, b = ([(f, "full") for f in list_images(d)[:limit]] for d in folders)
    a, b = (b, a) if swap else (a, b)
    return UnpairedDataset(a, b, augment, seed, random_b=limit is None)


def open_datasets(
    layout: Layout, family: str, direction: str, augment: Augment, seed: int, val_images: int
) -> tuple[Dataset, Dataset | None]:
    """(training set, validation set or None); BtoA swaps A and B.

    Validation uses the first `val_images` held-out images, resized to crop_size without
    crop or flip, as real pairs whenever the data is aligned (so paired metrics apply).
    """
    if family == "pix2pix" and layout.kind != "aligned":
        raise DatasetError(
            f"pix2pix needs paired images (train/ with A|B side by side); {layout.root} "
            "holds unpaired trainA/ and trainB/ folders: train cyclegan on it instead"
        )
    swap, aligned = direction == "BtoA", layout.kind == "aligned"
    train = _make(layout.train, layout.kind, family == "pix2pix", augment, seed, swap, None)
    if not (layout.val and val_images):
        return train, None
    evaluate = Augment(augment.crop_size, augment.crop_size, flip=False)
    return train, _make(layout.val, layout.kind, aligned, evaluate, seed, swap, val_images)
