"""Datasets: download by name from a loopback server, safe extraction, layouts, augmentation."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch
from helpers.datasets import aligned_files, tar_gz, unaligned_files, write_files, zip_bytes
from helpers.images import random_image
from helpers.servers import FileServer, serving
from PIL import Image

from img2img import data
from img2img.errors import DatasetError
from img2img.training.sampler import EpochSampler

# --- names and downloads ------------------------------------------------------------------


def test_dataset_names_resolve_per_family():
    assert data.find_dataset("night2day", "pix2pix") == data.RemoteDataset("pix2pix", "night2day")
    assert data.find_dataset("maps", "cyclegan").source == "cyclegan"  # its own archive first
    assert data.find_dataset("night2day", "cyclegan").source == "pix2pix"  # used unpaired
    assert data.find_dataset("pix2pix/maps", "cyclegan").source == "pix2pix"
    url = data.find_dataset("horse2zebra", "cyclegan").url(data.BERKELEY_HOST)
    assert url == "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"
    url = data.find_dataset("facades", "pix2pix").url(data.BERKELEY_HOST)
    assert url == "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz"
    with pytest.raises(DatasetError, match="unknown dataset 'horse2zebra' for pix2pix.*facades"):
        data.find_dataset("horse2zebra", "pix2pix")


def test_download_resumes_unpacks_and_caches(tmp_path, monkeypatch):
    archives = {
        "pix2pix/datasets/facades.tar.gz": tar_gz(aligned_files("facades")),
        "cyclegan/datasets/horse2zebra.zip": zip_bytes(unaligned_files("horse2zebra")),
    }
    with serving(FileServer(archives)) as server:
        monkeypatch.setenv("IMG2IMG_DATASET_MIRROR", server.url)
        server.drops = [300]  # the first GET dies after 300 bytes: resumed with a Range
        root = data.fetch_dataset("facades", "pix2pix", str(tmp_path), progress=False)
        assert root == tmp_path / "pix2pix" / "facades"
        assert data.detect_layout(root).kind == "aligned"
        assert server.gets()[1][2].get("Range") == "bytes=300-"
        h2z = data.fetch_dataset("horse2zebra", "cyclegan", str(tmp_path), progress=False)
        layout = data.detect_layout(h2z)
        assert layout.kind == "unaligned" and [p.name for p in layout.val] == ["testA", "testB"]
        n = len(server.gets())
        assert data.fetch_dataset("facades", "pix2pix", str(tmp_path), progress=False) == root
        assert len(server.gets()) == n  # cached: no request
    assert not list(tmp_path.glob("**/.facades.*"))  # no temporary extraction left


def test_archive_with_a_wrong_layout_is_not_cached(tmp_path):
    bad = {"pix2pix/datasets/maps.tar.gz": tar_gz({"maps/readme.txt": b"no images"})}
    with serving(FileServer(bad)) as server:
        with pytest.raises(DatasetError, match="not a dataset folder"):
            data.fetch_dataset("maps", "pix2pix", str(tmp_path), server.url, progress=False)
    assert not (tmp_path / "pix2pix" / "maps").exists()


# --- safe extraction ------------------------------------------------------------------------


def _tar_with(member: tarfile.TarInfo, payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.addfile(member, io.BytesIO(payload) if payload else None)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = ""):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, link
    return info


@pytest.mark.parametrize(
    "member, match",
    [
        (_member("/etc/evil", size=1), "unsafe path"),
        (_member("set/../../evil", size=1), "unsafe path"),
        (_member("set/link", tarfile.SYMTYPE, link="/etc/passwd"), "it is a link"),
        (_member("set/hard", tarfile.LNKTYPE, link="../outside"), "it is a link"),
        (_member("set/dev", tarfile.CHRTYPE), "device or special file"),
    ],
)
def test_tar_members_that_escape_are_refused(tmp_path, member, match):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_tar_with(member, b"x" * member.size))
    with pytest.raises(DatasetError, match=match):
        data.extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "evil").exists() and not Path("/etc/evil").exists()


def test_zip_members_that_escape_are_refused(tmp_path):
    for name in ("../evil.jpg", "/abs.jpg", "C:/x.jpg"):
        archive = tmp_path / "a.zip"
        archive.write_bytes(zip_bytes({"set/ok.jpg": b"1", name: b"2"}))
        with pytest.raises(DatasetError, match="unsafe path"):
            data.extract_archive(archive, tmp_path / "out")
        assert not (tmp_path / "out").exists()  # checked before anything is written
    link = zipfile.ZipInfo("set/link")
    link.external_attr = 0o120777 << 16  # a symlink, as zip tools store it
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(link, "/etc/passwd")
    archive.write_bytes(buf.getvalue())
    with pytest.raises(DatasetError, match="it is a link"):
        data.extract_archive(archive, tmp_path / "out")


def test_size_and_count_limits(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(tar_gz({f"set/{i}.jpg": b"x" * 1000 for i in range(5)}))
    with pytest.raises(DatasetError, match="size or member limits"):
        data.extract_archive(archive, tmp_path / "o1", max_bytes=2500)
    with pytest.raises(DatasetError, match="size or member limits"):
        data.extract_archive(archive, tmp_path / "o2", max_members=3)
    data.extract_archive(archive, tmp_path / "o3")
    assert len(list((tmp_path / "o3" / "set").iterdir())) == 5
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DatasetError, match="cannot unpack"):
        data.extract_archive(tmp_path / "junk.zip", tmp_path / "o4")


# --- layouts and clear errors ------------------------------------------------------------


def test_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        data.detect_layout(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"expected train/ .* or trainA/ and trainB/"):
        data.detect_layout(tmp_path / "empty")
    (tmp_path / "half" / "trainA").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no trainB/"):
        data.detect_layout(tmp_path / "half")
    (tmp_path / "noimg" / "train").mkdir(parents=True)
    (tmp_path / "noimg" / "train" / "notes.txt").write_text("hi")
    layout = data.detect_layout(tmp_path / "noimg")
    augment = data.Augment(72, 64, True)
    with pytest.raises(DatasetError, match="no images in"):
        data.open_datasets(layout, "pix2pix", "AtoB", augment, 0, 4)
    both = write_files(tmp_path / "both", {**aligned_files("c"), **unaligned_files("c")})
    assert data.detect_layout(both / "c").kind == "unaligned"
    assert data.detect_layout(both / "c", prefer="aligned").kind == "aligned"
    unaligned = write_files(tmp_path / "u", unaligned_files("u"))
    with pytest.raises(DatasetError, match="pix2pix needs paired images"):
        data.open_datasets(data.detect_layout(unaligned / "u"), "pix2pix", "AtoB", augment, 0, 4)


def test_unreadable_image_names_the_file(tmp_path):
    root = write_files(tmp_path, aligned_files("s"))
    (root / "s" / "train" / "0.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    train, _ = data.open_datasets(
        data.detect_layout(root / "s"), "pix2pix", "AtoB", data.Augment(72, 64, True), 0, 4
    )
    with pytest.raises(DatasetError, match=r"cannot read training image .*0\.jpg"):
        train[(0, 0)]


# --- samples and order ----------------------------------------------------------------------


def test_pairs_share_crop_and_flip_and_samples_are_pure(tmp_path):
    """An A|B image with identical halves: after the shared crop and flip, A == B exactly."""
    sym = random_image(24, 20, seed=3)
    ab = Image.new("RGB", (48, 20))
    ab.paste(sym, (0, 0))
    ab.paste(sym, (24, 0))
    (tmp_path / "s" / "train").mkdir(parents=True)
    ab.save(tmp_path / "s" / "train" / "0.png")
    layout = data.detect_layout(tmp_path / "s")
    train, _ = data.open_datasets(layout, "pix2pix", "AtoB", data.Augment(80, 64, True), 7, 0)
    samples = [train[(epoch, 0)] for epoch in range(6)]
    assert all(torch.equal(s["A"], s["B"]) for s in samples)  # same crop, same flip
    assert samples[0]["A"].shape == (3, 64, 64) and -1 <= samples[0]["A"].min() < 0
    assert torch.equal(train[(2, 0)]["A"], samples[2]["A"])  # a pure function of the key
    assert len({s["A"].sum().item() for s in samples}) > 1  # epochs draw new crops


def test_cyclegan_uses_an_aligned_set_unpaired(tmp_path):
    root = write_files(tmp_path, aligned_files("n2d", n_train=5))
    layout = data.detect_layout(root / "n2d")
    augment = data.Augment(32, 32, False)  # no augmentation randomness: B differs by file only
    train, val = data.open_datasets(layout, "cyclegan", "AtoB", augment, 0, 2)
    assert len(train) == 5 and len(val) == 2
    assert isinstance(val, data.PairedDataset)  # held-out pairs are real pairs
    assert train.a[0][1] == "left" and train.b[0][1] == "right"
    swapped, _ = data.open_datasets(layout, "cyclegan", "BtoA", augment, 0, 2)
    assert swapped.a[0][1] == "right"
    partners = {train[(epoch, 0)]["B"].sum().item() for epoch in range(8)}
    assert len(partners) > 1  # A[0] meets random B images (classic serial_batches False) ...
    assert torch.equal(train[(3, 0)]["B"], train[(3, 0)]["B"])  # ... drawn reproducibly


def test_epoch_sampler_is_seeded_sharded_and_resumable():
    def keys(**kw):
        return list(EpochSampler(10, seed=3, **kw))

    base = keys()
    assert sorted(i for _, i in base) == list(range(10)) and base == keys()
    other = EpochSampler(10, seed=3)
    other.set_epoch(1)
    assert [i for _, i in other] != [i for _, i in base]
    shards = [keys(rank=r, world=3) for r in range(3)]
    assert all(len(s) == 4 for s in shards)  # padded to 12
    assert {i for s in shards for _, i in s} == set(range(10))
    resumed = EpochSampler(10, seed=3)
    resumed.set_epoch(0, start=4)
    assert list(resumed) == base[4:] and len(resumed) == 6
