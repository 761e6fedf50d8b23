"""URL downloads against a loopback server: resume, retry, checksum, offline."""

from __future__ import annotations

import hashlib
import os

import pytest
from helpers.servers import FileServer, serving

from img2img.checkpoints.download import DownloadError, download

PAYLOAD = os.urandom(3_000_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server():
    with serving(FileServer({"models/g.pth": PAYLOAD})) as s:
        yield s


def _dl(server, dest, **kw):
    kw.setdefault("backoff", 0)
    kw.setdefault("progress", False)
    return download(f"{server.url}/models/g.pth", dest, **kw)


def test_resumes_after_connection_drop(server, tmp_path):
    server.drops = [1_000_000]  # the first GET dies after 1 MB
    dest = _dl(server, tmp_path / "g.pth")
    assert dest.read_bytes() == PAYLOAD
    gets = server.gets()
    assert len(gets) == 2
    assert gets[1][2].get("Range") == "bytes=1000000-"  # continued, not restarted
    assert (tmp_path / "g.pth.sha256").read_text().split()[0] == SHA
    assert not (tmp_path / "g.pth.part").exists()


def test_gives_up_keeping_the_partial_file_then_resumes(server, tmp_path):
    server.drops = [500_000] * 3
    with pytest.raises(DownloadError, match="1500000 bytes kept to resume"):
        _dl(server, tmp_path / "g.pth", retries=2)
    assert not (tmp_path / "g.pth").exists()
    assert (tmp_path / "g.pth.part").stat().st_size == 1_500_000
    assert _dl(server, tmp_path / "g.pth").read_bytes() == PAYLOAD
    assert server.gets()[-1][2].get("Range") == "bytes=1500000-"


def test_corrupted_cache_is_detected_and_fetched_again(server, tmp_path):
    dest = _dl(server, tmp_path / "g.pth")
    assert len(server.gets()) == 1
    assert _dl(server, dest) == dest and len(server.gets()) == 1  # verified cache hit
    data = bytearray(dest.read_bytes())
    data[12345] ^= 1
    dest.write_bytes(bytes(data))
    assert _dl(server, dest).read_bytes() == PAYLOAD
    assert len(server.gets()) == 2


def test_expected_checksum(server, tmp_path):
    assert _dl(server, tmp_path / "a.pth", sha256=SHA).read_bytes() == PAYLOAD
    with pytest.raises(DownloadError, match="does not match"):
        _dl(server, tmp_path / "b.pth", sha256="0" * 64)
    assert not (tmp_path / "b.pth").exists() and not (tmp_path / "b.pth.part").exists()


def test_http_errors(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server.url}/missing.pth", tmp_path / "m.pth", backoff=0, progress=False)
    assert len(server.gets()) == 1  # a 404 is not retried
    server.fail_status, server.fail_status_count = 503, 2
    assert _dl(server, tmp_path / "g.pth").read_bytes() == PAYLOAD  # 5xx retried
    assert len(server.gets()) == 4


def test_unreachable_server(tmp_path):
    with pytest.raises(DownloadError, match="failed after 2 attempts"):
        download(
            "http://127.0.0.1:9/x.pth",
            tmp_path / "x.pth",
            retries=1,
            backoff=0,
            progress=False,
            timeout=2,
        )


def test_offline_uses_cache_and_refuses_network(server, tmp_path, monkeypatch):
    dest = _dl(server, tmp_path / "g.pth")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _dl(server, dest) == dest
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE"):
        _dl(server, tmp_path / "other.pth")
    assert len(server.gets()) == 1


def _checkpoint_bytes(fixtures) -> bytes:
    return (fixtures / "junyanz_resnet9_instance_ngf8.pth").read_bytes()


def test_a_cut_without_content_length_is_caught_by_the_content_check(fixtures, tmp_path):
    """Was: a server that sends no Content-Length and cuts the file short got the truncated
    file's sha256 recorded, and every later use failed. Now the new download must parse as
    a checkpoint before it is trusted; a failed check is retried from zero."""
    from img2img.checkpoints.weights import read_state_dict

    data = _checkpoint_bytes(fixtures)
    with serving(FileServer({"g.pth": data})) as server:
        server.unsized, server.drops = 1, [len(data) // 2]  # looks complete, is half
        dest = tmp_path / "g.pth"
        download(f"{server.url}/g.pth", dest, backoff=0, progress=False, check=read_state_dict)
        assert dest.read_bytes() == data and len(server.gets()) == 2
        # The same cut, unchecked, is what used to be trusted.
        server.unsized, server.drops = 1, [len(data) // 2]
        blind = tmp_path / "blind" / "g.pth"
        download(f"{server.url}/g.pth", blind, backoff=0, progress=False)
        assert blind.stat().st_size == len(data) // 2
        # A server that always cuts: a clear error, nothing trusted.
        server.unsized, server.drops = 9, [len(data) // 2] * 9
        never = tmp_path / "never" / "g.pth"
        with pytest.raises(DownloadError, match="not usable after 2 attempts"):
            download(
                f"{server.url}/g.pth", never, retries=1, backoff=0, progress=False,
                check=read_state_dict,
            )  # fmt: skip
        assert not never.exists() and not never.with_name("g.pth.sha256").exists()


def test_a_cached_download_that_does_not_load_is_quarantined_and_fetched_again(
    fixtures, tmp_path, monkeypatch
):
    """A truncated file trusted by an older version (its sha256 recorded) no longer fails
    every request: loading it fails once, it is moved aside and downloaded again."""
    from helpers.catalog import RESNET, mirror_path

    from img2img.checkpoints import hub

    data = _checkpoint_bytes(fixtures)
    with serving(FileServer({mirror_path(RESNET): data})) as server:
        monkeypatch.setenv("IMG2IMG_URL_MIRROR", server.url)
        monkeypatch.setenv("IMG2IMG_CACHE", str(tmp_path / "cache"))
        monkeypatch.setenv("IMG2IMG_WEIGHTS_DIR", str(tmp_path / "none"))
        path = hub.resolve(RESNET.id, progress=False)
        cut = data[: len(data) // 2]
        path.write_bytes(cut)  # the poisoned cache of an older version: checksum matches
        path.with_name(path.name + ".sha256").write_text(hashlib.sha256(cut).hexdigest() + "  x\n")
        model = hub.load_model(RESNET.id, progress=False)
        assert model.config["architecture"] == "resnet"
        assert path.read_bytes() == data
        assert path.with_name(path.name + ".bad").read_bytes() == cut
        assert len(server.gets()) == 2
