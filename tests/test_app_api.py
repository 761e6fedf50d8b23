"""The app as any HTTP client reaches it, browser or not: raw requests to Gradio's queue
(issue 10). Every event the page declares is tried by its fn_index; inline data: URLs
meet the same byte and pixel caps as uploads, before anything is decoded; seeds outside
0 .. 2^32 - 1 get a clear message; error messages name no server folder."""

from __future__ import annotations

import io
import os
import re
import struct
import threading
import zlib
from types import SimpleNamespace

import httpx
import pytest
from helpers.app_server import (
    CORRUPT,
    MISSING,
    data_url_value,
    dependencies,
    fn_index,
    queue_call,
    run_predict,
    vm_rss_mb,
)
from helpers.catalog import RESNET, UNET
from helpers.images import random_image
from helpers.paths import ROOT
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

MB = 2**20
UPLOAD_CAP = 20 * MB  # app.MAX_UPLOAD: Gradio's max_file_size
# The events that run on the server: the API; the page's own translations (same code path
# and caps as the API: a browser is an HTTP client too, so it cannot be told apart), i.e.
# Translate, "translate this result back" (its photo from the session, not the request),
# the examples (Gradio's loader: an index into the deployer's files) and the Video tab's
# clip (uploaded files only, its byte, length and frame-size caps); "Load my model"
# (its own size cap; off with IMG2IMG_ALLOW_CUSTOM=0); and two read-only views: the
# availability marks and an example's outcome. Nothing else (names without Gradio's _N).
SERVER_EVENTS = {
    "translate",
    "translate_ui",
    "translate_back",
    "translate_clip",
    "live_frame",  # the Live tab's stream event, and its end
    "live_ended",
    "load_example",
    "load_example_input",
    "load_custom",
    "refresh",
    "after_example",
    "stop_ui",  # Stop: sets its own session's flag, nothing else (webui/cancel.py)
    "stop_clip",
    "show_stop",
    "hide_stop",
    "check_upload",  # at upload: decodes the visitor's own file (the same caps), says why not
}


def _png(w: int = 40, h: int = 30) -> bytes:
    buf = io.BytesIO()
    random_image(w, h).save(buf, format="PNG")
    return buf.getvalue()


def _bomb() -> bytes:  # a valid PNG header declaring 100000 x 100000 pixels
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def app(app_servers):
    """The standard offline app (shared): the fixture weights, a corrupt file for CORRUPT,
    nothing for MISSING, one example."""
    app = app_servers.get()
    client = Client(app.url, analytics_enabled=False, verbose=False)
    return SimpleNamespace(url=app.url, pid=app.pid, tmp=app.tmp, client=client)


def _inputs(url: str, dependency: dict) -> list:
    """Plausible values for an event's inputs, by component type (as the page sends)."""
    types = {c["id"]: c["type"] for c in _components(url)}
    value = {
        "image": data_url_value(_png()),
        "dropdown": RESNET.id,
        "radio": "fast",
        "checkbox": False,
        "number": 0,
        "dataset": 0,
    }
    return [value.get(types[i]) for i in dependency["inputs"]]


def _components(url: str) -> list[dict]:
    return httpx.get(f"{url}/config", timeout=30).json()["components"]


@pytest.mark.slow
def test_only_the_translation_events_run_on_the_server(app):
    """Every event of the page, called by fn_index exactly as the page does it, through the
    queue and through /run/predict: only SERVER_EVENTS run; the UI's own events (model
    picker, direction switch) run in the browser and the server refuses them."""
    ran, refused = set(), set()
    for dependency in dependencies(app.url):
        name = re.sub(r"_\d+$", "", dependency.get("api_name") or f"fn{dependency['id']}")
        data = _inputs(app.url, dependency)
        streaming = dependency.get("connection") == "stream"  # the Live tab's frames
        result = queue_call(app.url, dependency["id"], data, streaming=streaming)
        status, direct = run_predict(app.url, dependency["id"], data)
        if result.success or (status == 200 and "data" in direct):
            ran.add(name)
        else:
            refused.add(name)
    assert ran == SERVER_EVENTS, (ran, refused)
    assert refused, "the page declares no event of its own any more?"


def test_the_api_lists_only_translate(app):
    api = app.client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/translate"} and not api["unnamed_endpoints"]


@pytest.mark.parametrize("event", ["translate", "translate_ui"])
@pytest.mark.parametrize(
    "size,expect",
    [
        (UPLOAD_CAP + 4096, "over the 20 MB upload limit"),  # refused before decoding
        (3 * UPLOAD_CAP, "Request too large: images are limited to 20 MB"),  # before reading
    ],
    ids=["just-over", "3x"],
)
def test_inline_image_over_the_upload_cap_is_refused(app, event, size, expect):
    content = _png()
    content += b"\x00" * (size - len(content))  # a PNG's bytes, then padding
    data = [data_url_value(content), RESNET.id, "fast", -1]
    if event == "translate_ui":
        data = [data[0], RESNET.id, "fast", False, 0, False, None]  # None: the session state
    result = queue_call(app.url, fn_index(app.url, event), data)
    assert expect in _refusal(result, event)
    ok = queue_call(app.url, fn_index(app.url, event), [data_url_value(_png()), *data[1:]])
    assert ok.success, ok  # a small inline image is fine, and the server still serves


def test_chunked_body_over_the_cap_is_refused(app):
    """A body sent in chunks declares no length: it is counted as it arrives."""
    head = b'{"data": [{"url": "data:image/png;base64,'
    tail = b'"}], "fn_index": %d, "session_hash": "chunked"}' % fn_index(app.url, "translate")

    def chunks():
        yield head
        for _ in range(30):
            yield b"A" * MB
        yield tail

    response = httpx.post(
        f"{app.url}/gradio_api/queue/join",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=120,
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413 and "limited to 20 MB" in response.text


def test_inline_bomb_meets_the_pixel_cap(app):
    result = queue_call(
        app.url, fn_index(app.url, "translate"), [data_url_value(_bomb()), RESNET.id, "fast", -1]
    )
    assert not result.success and "limit" in result.error


@pytest.mark.slow
def test_six_oversized_inline_images_at_once_cost_no_memory(app):
    """The fault as reported: concurrent oversized data URLs took the server from 1.7 to
    4.8 GB. Their bodies are refused before Gradio reads them; RSS stays put."""
    content = _png() + b"\x00" * (3 * UPLOAD_CAP)
    value, fn = data_url_value(content), fn_index(app.url, "translate")
    before = vm_rss_mb(app.pid)
    results = [None] * 6

    def send(i: int) -> None:
        results[i] = queue_call(app.url, fn, [value, RESNET.id, "fast", -1])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grown = vm_rss_mb(app.pid) - before
    print(f"server RSS {before} MB before, +{grown} MB after six 80 MB requests")
    assert all(r.join_status == 413 for r in results), results
    assert grown < 100  # the 480 MB of bodies were not kept (before: gigabytes)


@pytest.mark.parametrize("seed", [2**64, 2**32, "abc", "", 1.5, float("1e30")])
def test_bad_seed_gets_a_clear_message(app, tmp_path, seed):
    random_image(40, 30).save(tmp_path / "p.png")
    with pytest.raises(AppError, match=r"seed must be a whole number .* 2\^32 - 1"):
        app.client.predict(
            handle_file(tmp_path / "p.png"), UNET.id, "fast", seed, api_name="/translate"
        )
    # The page's event checks it the same way (dropout variation on).
    data = [data_url_value(_png()), UNET.id, "fast", True, seed, False, None]
    result = queue_call(app.url, fn_index(app.url, "translate_ui"), data)
    assert "seed must be a whole number" in _refusal(result, "translate_ui")


def _refusal(result, event: str) -> str:
    """What a refused call says: the API raises it (the client's error); the page's event
    shows it in the status area (one place for errors, no toast) with the result cleared."""
    if event != "translate_ui" or result.success is None:  # None: refused at the door
        assert not result.success
        return result.error
    assert result.success, result
    slider, _, download, status, *_ = result.output["data"]
    assert slider is None and download is None
    return status


def test_seed_range_ends_are_accepted_and_documented(app, tmp_path):
    random_image(40, 30).save(tmp_path / "p.png")
    for seed in (0, 2**32 - 1, -1):
        out = app.client.predict(
            handle_file(tmp_path / "p.png"), UNET.id, "fast", seed, api_name="/translate"
        )
        assert Image.open(out).size == (40, 30)
    api = app.client.view_api(print_info=False, return_format="dict")
    assert "2^32 - 1" in str(api["named_endpoints"]["/translate"])


def test_the_app_seed_range_is_the_library_s():
    import ast

    from img2img.inference import MAX_SEED

    tree = ast.parse((ROOT / "webui" / "inputs.py").read_text())
    value = next(
        n.value
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "MAX_SEED"
    )
    assert eval(compile(ast.Expression(value), "inputs.py", "eval")) == MAX_SEED


@pytest.mark.parametrize("model", [CORRUPT, MISSING], ids=["corrupt", "missing"])
def test_errors_name_no_server_folder(app, tmp_path, model):
    random_image(40, 30).save(tmp_path / "p.png")
    with pytest.raises(AppError) as e:
        app.client.predict(handle_file(tmp_path / "p.png"), model.id, api_name="/translate")
    message = str(e.value)
    print(message)
    assert model.id in message and "$IMG2IMG_WEIGHTS_DIR" in message  # the setting, no path
    for folder in (app.tmp, ROOT, tmp_path, os.path.expanduser("~"), "/tmp/"):
        assert str(folder) not in message
