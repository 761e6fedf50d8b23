"""Generated datasets as {relative path: bytes}, written to folders or packed as archives.

The pix2pix sets are A | B side by side with B the upside-down A (a learnable, checkable
pairing); the CycleGAN sets have folders of different sizes, as unpaired sets do.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

from PIL import Image

from helpers.images import random_image


def aligned_image(i: int, w: int = 40, h: int = 32) -> Image.Image:
    """A | B side by side: B is A flipped upside down."""
    a = random_image(w, h, seed=i)
    ab = Image.new("RGB", (2 * w, h))
    ab.paste(a, (0, 0))
    ab.paste(a.transpose(Image.Transpose.FLIP_TOP_BOTTOM), (w, 0))
    return ab


def jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def aligned_files(name: str, n_train: int = 3, n_val: int = 2) -> dict[str, bytes]:
    """{relative path: bytes} of a pix2pix-style set: NAME/train/*.jpg, NAME/val/*.jpg."""
    files = {f"{name}/train/{i}.jpg": jpeg(aligned_image(i)) for i in range(n_train)}
    files |= {f"{name}/val/{i}.jpg": jpeg(aligned_image(100 + i)) for i in range(n_val)}
    return files


def unaligned_files(name: str, sizes=(("trainA", 3), ("trainB", 2), ("testA", 2), ("testB", 2))):
    """{relative path: bytes} of a CycleGAN-style set: NAME/trainA/*.jpg, ... (sizes differ)."""
    return {
        f"{name}/{folder}/{i}.jpg": jpeg(random_image(36, 30, seed=10 * k + i))
        for k, (folder, n) in enumerate(sizes)
        for i in range(n)
    }


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload in files.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for name, payload in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(payload)
    return root
