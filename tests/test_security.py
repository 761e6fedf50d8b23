"""Security: hostile dataset archives, file access through the app, tokens kept secret.

- archives: escapes (../, absolute, backslash, links), zip bombs (ratio, count, a header that
  lies about the size) and members declaring huge sizes are refused before anything lands
  outside the temporary extraction folder, which is removed;
- the app: `/gradio_api/file=` and friends, with absolute, relative, `..`, percent-encoded
  and doubled-slash paths to the repo, /etc, /proc, the HF cache, the URL weights cache and
  the weights folder, answer 403/404 without content; loopback URLs are not fetched;
- HF_TOKEN (a random secret) never shows in an error, a log or a file a run writes, while the
  fake Hub confirms that it was sent.
"""

from __future__ import annotations

import gzip
import http.client
import io
import os
import secrets
import sys
import tarfile
import urllib.parse
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from helpers.app_server import (
    FIXTURE_WEIGHTS,
    app_env,
    free_port,
    install_fixture_weights,
    running_app,
)
from helpers.catalog import HUGGAN, first, hub_file, hub_source_text, mirror_path, source_type
from helpers.datasets import aligned_files, unaligned_files, write_files, zip_bytes
from helpers.images import random_image
from helpers.models import tiny_generators
from helpers.paths import ROOT
from helpers.servers import FakeHub, FileServer, serving
from helpers.train_proc import finish, one_line_error, start, train_cmd, user_env

from img2img import data, save_pretrained
from img2img.errors import DatasetError

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

SECRET = f"hf_{secrets.token_hex(16)}"


# --- hostile archives ----------------------------------------------------------------------


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tf:
        for info, payload in members:
            tf.addfile(info, io.BytesIO(payload) if payload else None)
    return buf.getvalue()


def _file(name: str, payload: bytes = b"x", kind: bytes = tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, len(payload) if kind == tarfile.REGTYPE else 0
    return info, payload


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # "Duplicate name": wanted here
        for name, payload in entries:
            zf.writestr(name, payload)
    return buf.getvalue()


def _written(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


@pytest.mark.parametrize(
    "kind, archive, match",
    [
        ("tar", _tar(_file("set/ok.jpg"), _file("./../evil.jpg")), "unsafe path"),
        ("tar", _tar(_file("set/a.jpg"), _file("set/a.jpg", b"again")), "corrupt archive"),
        ("tar", _tar(_file("set/fifo", kind=tarfile.FIFOTYPE)), "device or special file"),
        ("zip", zip_bytes({"set/ok.jpg": b"1", "..\\evil.jpg": b"2"}), "unsafe path"),
        ("zip", zip_bytes({"set/ok.jpg": b"1", "\\abs\\evil.jpg": b"2"}), "unsafe path"),
        ("zip", zip_bytes({"set/ok.jpg": b"1", "set/../../evil.jpg": b"2"}), "unsafe path"),
        ("zip", _zip([("set/a.jpg", b"1"), ("set/a.jpg", b"2")]), "corrupt archive"),
    ],
    # Named ids: gzip bytes hold their time, so ids made from them would differ between
    # two collections (pytest-xdist's workers must collect the same tests).
    ids=[
        "tar-dotdot",
        "tar-repeat",
        "tar-fifo",
        "zip-backslash",
        "zip-root",
        "zip-dotdot",
        "zip-repeat",
    ],  # fmt: skip
)
def test_more_escapes_and_rewrites_are_refused(tmp_path, kind, archive, match):
    """Beyond test_data.py's cases: `./..`, backslashes, FIFOs, and a repeated member name
    (a second write through the same path is an error, never an overwrite)."""
    path = tmp_path / f"a.{'tar.gz' if kind == 'tar' else 'zip'}"
    path.write_bytes(archive)
    with pytest.raises(DatasetError, match=match):
        data.extract_archive(path, tmp_path / "out" / "deep")
    assert not (tmp_path / "evil.jpg").exists() and not (tmp_path / "out" / "evil.jpg").exists()


def test_zip_bombs_are_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    ratio = tmp_path / "ratio.zip"  # 20 MB of zeros in ~20 kB
    ratio.write_bytes(_zip([("set/zeros.jpg", bytes(20_000_000))]))
    assert ratio.stat().st_size < 100_000
    with pytest.raises(DatasetError, match="size or member limits at 'set/zeros.jpg'"):
        data.extract_archive(ratio, out, max_bytes=10_000_000)
    count = tmp_path / "count.zip"
    count.write_bytes(_zip([(f"set/{i}.jpg", b"") for i in range(50)]))
    with pytest.raises(DatasetError, match="size or member limits"):
        data.extract_archive(count, out, max_members=20)
    assert not out.exists()  # zip: every member is checked before the first write
    # A header that lies: 16 bytes declared, 5 MB inside. Reading stops at 16 and the CRC
    # fails; what was charged to the budget is all that can be written.
    raw = bytearray(_zip([("set/liar.jpg", bytes(5_000_000))]))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.index(signature) + offset
        raw[at : at + 4] = (16).to_bytes(4, "little")
    liar = tmp_path / "liar.zip"
    liar.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="corrupt archive.*Bad CRC-32"):
        data.extract_archive(liar, out)
    assert _written(out) <= 16


def test_tar_member_declaring_a_huge_size_is_refused_at_the_default_limits(tmp_path):
    """A 65 GiB member (GNU base-256 size) with no data behind it: refused from its header."""
    info = tarfile.TarInfo("set/huge.jpg")
    info.size = 65 << 30
    archive = tmp_path / "huge.tar.gz"
    archive.write_bytes(gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT) + bytes(1024)))
    with pytest.raises(DatasetError, match="size or member limits at 'set/huge.jpg'"):
        data.extract_archive(archive, tmp_path / "out")
    assert _written(tmp_path / "out") == 0


def test_hostile_archive_from_a_server_leaves_nothing_behind(tmp_path):
    """Through fetch_dataset: refused, nothing outside, no half-unpacked set, no temporary
    folder, and the archive deleted (so it is never unpacked again from the cache)."""
    root = tmp_path / "cache"
    hostile = zip_bytes({**unaligned_files("horse2zebra"), "horse2zebra/../../../evil.jpg": b"!"})
    with serving(FileServer({"cyclegan/datasets/horse2zebra.zip": hostile})) as server:
        with pytest.raises(DatasetError, match="unsafe path.*archive was deleted"):
            data.fetch_dataset("horse2zebra", "cyclegan", str(root), server.url, progress=False)
    assert not list(tmp_path.rglob("evil.jpg"))
    assert [p.name for p in (root / "cyclegan").iterdir()] == []
    assert not list((root / "archives").rglob("horse2zebra.zip*"))


def test_archive_packed_from_inside_its_folder_is_accepted(tmp_path):
    """`tar czf set.tar.gz -C DIR .` starts with a "./" member: that is the destination
    itself, not an unsafe path (it used to be refused)."""
    members = [(tarfile.TarInfo("."), b"")]
    members[0][0].type = tarfile.DIRTYPE
    members += [_file(f"./{name}", payload) for name, payload in aligned_files("facades").items()]
    with serving(FileServer({"pix2pix/datasets/facades.tar.gz": _tar(*members)})) as server:
        root = data.fetch_dataset("facades", "pix2pix", str(tmp_path), server.url, progress=False)
    assert data.detect_layout(root).kind == "aligned"


# --- the app: files, errors and logs -------------------------------------------------------

# Catalog models the app has no weights for: one the fake Hub holds but fails to send (500),
# one whose file the empty Berkeley mirror lacks (404).
HUB_MISSING = first(lambda e: source_type(e) == "hub" and e.id not in FIXTURE_WEIGHTS)
URL_MISSING = first(lambda e: source_type(e) == "url" and e.id not in FIXTURE_WEIGHTS)
URL_CACHE_MARKER = b"URL-CACHE-CONTENT-" + secrets.token_hex(8).encode()
HF_CACHE_MARKER = b"HF-CACHE-CONTENT-" + secrets.token_hex(8).encode()


@pytest.fixture(scope="module")
def app(fixtures, tmp_path_factory):
    """`python app.py` online against a fake Hub whose downloads fail with 500 and an empty
    Berkeley mirror, with HF_TOKEN set, the fixture weights installed and files in both
    caches."""
    tmp = tmp_path_factory.mktemp("secure-app")
    install_fixture_weights(tmp / "weights", fixtures)
    (tmp / "examples").mkdir()
    url_cache = tmp / "url-cache" / "urls" / "0123abcd" / Path(mirror_path(URL_MISSING)).name
    repo_folder = "models--" + hub_file(HUB_MISSING)[0].replace("/", "--")
    hf_blob = tmp / "hf" / "hub" / repo_folder / "blobs" / "0123abcd"
    for path, marker in ((url_cache, URL_CACHE_MARKER), (hf_blob, HF_CACHE_MARKER)):
        path.parent.mkdir(parents=True)
        path.write_bytes(marker)
    weights = (fixtures / "huggan_unet_div8.pytorch_model.bin").read_bytes()
    hub = FakeHub({hub_file(HUB_MISSING): weights})
    hub.fail_status, hub.fail_status_count = 500, 10**6
    with serving(hub), serving(FileServer({})) as berkeley:
        env = app_env(
            tmp,
            free_port(),
            HF_HUB_OFFLINE="0",
            HF_ENDPOINT=hub.url,
            HF_TOKEN=SECRET,
            IMG2IMG_CACHE=str(tmp / "url-cache"),
            IMG2IMG_URL_MIRROR=berkeley.url,
        )
        with running_app(env) as proc:
            yield SimpleNamespace(
                url=proc.url,
                tmp=tmp,
                hub=hub,
                berkeley=berkeley,
                log=tmp / "app.log",
                files={
                    "/etc/passwd": b"root:",
                    "/proc/self/environ": SECRET.encode(),
                    "/proc/self/cwd/app.py": b"import gradio",
                    str(ROOT / "app.py"): b"import gradio",
                    "app.py": b"import gradio",
                    "./img2img/checkpoints/catalog.json": b'"sources"',
                    str(ROOT / "img2img" / "checkpoints" / "catalog.json"): b'"sources"',
                    str(url_cache): URL_CACHE_MARKER,
                    str(hf_blob): HF_CACHE_MARKER,
                    **{
                        str(p): p.read_bytes()[:64]
                        for p in (tmp / "weights").rglob("*")
                        if p.is_file()
                    },
                    str(tmp / "app.log"): b"",
                },
            )


def _get(url: str, path: str) -> tuple[int, bytes]:
    """A raw GET: the path goes out exactly as written (no client-side normalising)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _spellings(target: str, upload_dir: str) -> list[str]:
    """Ways to ask for `target`: plain, other routes, `..` from the repo and from Gradio's
    own upload folder, doubled slashes, percent-encoded (once and twice)."""
    absolute = str((ROOT / target).resolve()) if not target.startswith("/") else target
    up = "../" * len(ROOT.parts)  # from the working directory (the repo) up to /
    out_of_uploads = f"{upload_dir}/{'../' * len(Path(upload_dir).parts)}"
    for climb in (up, out_of_uploads):  # each spelling names the real file
        assert os.path.normpath(os.path.join(ROOT, climb + absolute.lstrip("/"))) == absolute
    quoted = urllib.parse.quote(absolute, safe="")
    dotted = "%2e%2e/" * len(ROOT.parts)
    return [
        f"/gradio_api/file={target}",
        f"/file={target}",
        f"/gradio_api//file={target}",
        f"/gradio_api/file=/{absolute}",
        f"/gradio_api/file={up}{absolute.lstrip('/')}",
        f"/gradio_api/file={out_of_uploads}{absolute.lstrip('/')}",
        f"/gradio_api/file={quoted}",
        f"/gradio_api/file={dotted}{absolute.lstrip('/')}",
        f"/gradio_api/file={quoted.replace('%', '%25')}",
        f"/gradio_api/file=file://{absolute}",
    ]


def test_app_serves_no_file_outside_what_gradio_needs(app, tmp_path):
    # Control: what Gradio needs (an upload, in its own folder) is served, byte for byte.
    random_image(40, 30).save(tmp_path / "mine.png")
    with open(tmp_path / "mine.png", "rb") as f:
        uploaded = httpx.post(f"{app.url}/gradio_api/upload", files={"files": f}).json()[0]
    status, body = _get(app.url, f"/gradio_api/file={uploaded}")
    assert status == 200 and body == (tmp_path / "mine.png").read_bytes()
    upload_dir = str(Path(uploaded).parent)
    served = []
    for target, content in app.files.items():
        assert content or target.endswith("app.log")
        for path in _spellings(target, upload_dir):
            status, body = _get(app.url, path)
            if status not in (403, 404) or (content and content in body):
                served.append((path, status, body[:80]))
    assert not served
    # Loopback URLs are not fetched on a caller's behalf (no SSRF).
    before = len(app.berkeley.log), len(app.hub.log)
    hub_url = f"{app.hub.url}/{hub_file(HUB_MISSING)[0]}/resolve/main/x"
    for url in (f"{app.berkeley.url}/x.pth", hub_url):
        status, _ = _get(app.url, f"/gradio_api/file={url}")
        assert status == 403, url
    assert (len(app.berkeley.log), len(app.hub.log)) == before


@pytest.mark.slow
def test_app_errors_and_log_never_show_the_token(app, tmp_path):
    client = Client(app.url, analytics_enabled=False, verbose=False)
    random_image(48, 32).save(tmp_path / "p.png")
    messages = []
    for entry, expect in ((HUB_MISSING, hub_source_text(HUB_MISSING)), (URL_MISSING, "HTTP 404")):
        with pytest.raises(AppError, match="not available") as e:
            client.predict(handle_file(tmp_path / "p.png"), entry.id, api_name="/translate")
        assert expect in str(e.value)
        messages.append(str(e.value))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(AppError, match="not an image") as e:
        client.predict(handle_file(tmp_path / "bad.png"), HUGGAN.id, api_name="/translate")
    messages.append(str(e.value))
    assert client.predict(handle_file(tmp_path / "p.png"), HUGGAN.id, api_name="/translate")
    sent = [h.get("authorization") for _, _, h in app.hub.log]
    assert f"Bearer {SECRET}" in sent  # the token was in play ...
    assert all(SECRET not in m for m in messages)  # ... and never came back
    assert SECRET not in app.log.read_text(errors="replace")


# --- tokens: hub.resolve, `python -m img2img push`, `train.py --push-to-hub` ---------------

RESOLVE_ALL = """
import sys
from img2img.checkpoints import hub
from img2img.errors import Img2ImgError
for model_id in sys.argv[1:]:
    try:
        hub.resolve(model_id, progress=False)
    except Img2ImgError as e:
        print(e)
"""


class RefusingHub(FakeHub):
    """Refuses to create `*/forbidden` (403) and rejects the token for uploads to `*/broken`
    (401). (A 5xx would do too, but huggingface_hub retries those for 23 s.)"""

    def api(self, path: str, body: bytes) -> tuple[int, object]:
        if path.startswith("/api/repos/create") and b"forbidden" in body:
            return 403, {"error": "You don't have the rights to create a model here"}
        if "/broken/" in path and not path.startswith("/api/repos/create"):
            return 401, {"error": "Invalid username or password."}
        return super().api(path, body)


def _assert_secret_sent_never_shown(hub: FakeHub, *texts: str) -> None:
    assert any(h.get("authorization") == f"Bearer {SECRET}" for _, _, h in hub.log)
    for text in texts:
        assert SECRET not in text


def test_token_never_in_resolve_errors(tmp_path):
    """A Hub that answers 500 to downloads and 404 to unknown repos; a mirror without files."""
    payload = b"\x80" + bytes(1000)
    with (
        serving(FakeHub({hub_file(HUB_MISSING): payload})) as hub,
        serving(FileServer({})) as berkeley,
    ):
        hub.fail_status, hub.fail_status_count = 500, 10**6
        env = user_env(
            HF_HOME=str(tmp_path / "hf"),
            HF_TOKEN=SECRET,
            HF_ENDPOINT=hub.url,
            IMG2IMG_WEIGHTS_DIR=str(tmp_path / "w"),
            IMG2IMG_URL_MIRROR=berkeley.url,
        )
        ids = [HUB_MISSING.id, HUGGAN.id, URL_MISSING.id]  # Hub 500, Hub 404, URL 404
        rc, out, err = finish(start([sys.executable, "-c", RESOLVE_ALL, *ids], env))
    assert rc == 0, err
    assert out.count("are not available") == 3 and "500" in out and "HTTP 404" in out
    _assert_secret_sent_never_shown(hub, out, err)


def test_token_never_in_push_errors(tmp_path):
    save_pretrained(tiny_generators()["resnet"], tmp_path / "G")
    with serving(RefusingHub()) as hub:
        env = user_env(HF_HOME=str(tmp_path / "hf"), HF_TOKEN=SECRET, HF_ENDPOINT=hub.url)
        push = [sys.executable, "-m", "img2img", "push", str(tmp_path / "G"), "--repo-id"]
        procs = [start([*push, repo], env) for repo in ("me/forbidden", "me/broken")]
        results = [finish(p) for p in procs]
    for (rc, out, err), status in zip(results, ("403", "401"), strict=True):
        assert rc == 2 and err.startswith("error: ") and status in err, err
        assert "Traceback" not in err
        _assert_secret_sent_never_shown(hub, out, err)
    assert not [key for key in hub.files if key[0].startswith("me/")]


@pytest.mark.slow
def test_train_push_failure_is_clear_and_nothing_it_writes_holds_the_token(tmp_path):
    root = write_files(tmp_path, unaligned_files("u"))
    run_dir = tmp_path / "run"
    with serving(RefusingHub()) as hub:
        env = user_env(HF_HOME=str(tmp_path / "hf"), HF_TOKEN=SECRET, HF_ENDPOINT=hub.url)
        args = ["cyclegan", "--data", str(root / "u"), "--out", str(run_dir), "--seed", "0"]
        args += ["--ngf", "8", "--ndf", "8", "--n-blocks", "1", "--load-size", "36"]
        args += ["--crop-size", "32", "--steps", "1", "--workers", "0", "--log-every", "1"]
        rc, out, err = finish(start(train_cmd(*args, "--push-to-hub", "me/forbidden"), env))
    last = one_line_error(rc, err)
    assert rc == 2
    a2b = run_dir / "weights" / "A2B"
    assert last.startswith(f"error: pushing {a2b} to me/forbidden-A2B failed (")
    assert "403" in last and "the generators are saved" in last
    assert f"python -m img2img push {a2b} --repo-id me/forbidden-A2B" in last
    written = [p for p in run_dir.rglob("*") if p.is_file()]
    names = {p.name for p in written}
    assert {"metrics.jsonl", "config.json", "README.md", "model.safetensors", "last.pt"} <= names
    _assert_secret_sent_never_shown(hub, out, err)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
