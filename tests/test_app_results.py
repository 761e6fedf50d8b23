"""Every result the app serves is a file of its own, written once, atomically (issue: "a
truncated download under concurrency": one of 12 concurrent identical Full-size requests
got 18.3 of 33.1 MB, because Gradio saves a returned PIL image under a name made from its
content, rewriting the same file while another response streams it)."""

from __future__ import annotations

import io
import os
import threading

import httpx
import pytest
from helpers.app_server import (
    app_env,
    data_url_value,
    fn_index,
    free_port,
    install_fixture_weights,
    queue_call,
    running_app,
)
from helpers.catalog import RESNET
from helpers.images import random_image
from PIL import Image

from img2img import atomic

REQUESTS = 12
PHOTO = (300, 200)  # over MAX_SIDE: "full" computes it in tiles at its own size


@pytest.fixture(scope="module")
def app(fixtures, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("results")
    install_fixture_weights(tmp / "weights", fixtures)
    env = app_env(
        tmp,
        free_port(),
        IMG2IMG_MAX_SIDE="96",
        IMG2IMG_CONCURRENCY=str(REQUESTS),
        IMG2IMG_QUEUE_SIZE=str(4 * REQUESTS),
    )
    with running_app(env) as proc:
        yield proc.url


def _png() -> bytes:
    buf = io.BytesIO()
    random_image(*PHOTO, seed=5).save(buf, format="PNG")
    return buf.getvalue()


def _files(value) -> list[dict]:
    """Every FileData in an event's output."""
    if isinstance(value, dict):
        if value.get("path"):
            return [value]
        return [f for v in value.values() for f in _files(v)]
    if isinstance(value, list | tuple):
        return [f for v in value for f in _files(v)]
    return []


def _download(url: str, path: str) -> tuple[int, bytes]:
    """(declared Content-Length, bytes received) of one result file."""
    with httpx.stream("GET", f"{url}/gradio_api/file={path}", timeout=60) as r:
        r.raise_for_status()
        body = b"".join(r.iter_raw())
        return int(r.headers["content-length"]), body


def _concurrently(url: str, event: str, data: list) -> list[dict]:
    """REQUESTS identical calls at once; per request, {path: (Content-Length, bytes)} of its
    files, downloaded while the other requests are still being answered."""
    fn, results, errors = fn_index(url, event), [], []
    barrier = threading.Barrier(REQUESTS)

    def one() -> None:
        try:
            barrier.wait(timeout=60)
            result = queue_call(url, fn, data)
            assert result.success, result.error
            files = {f["path"] for f in _files(result.output["data"])}
            results.append({path: _download(url, path) for path in files})
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(REQUESTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:3]
    return results


@pytest.mark.parametrize("event", ["translate", "translate_ui"])
def test_concurrent_identical_full_size_requests_each_get_their_whole_file(app, event):
    image = data_url_value(_png())
    if event == "translate":  # the API: image, model, resolution, seed
        data = [image, RESNET.id, "full", -1]
    else:  # the page: image, model, resolution, vary, seed, round trip, your model (state)
        data = [image, RESNET.id, "full", False, 0, False, None]
    results = _concurrently(app, event, data)
    per_request = 1 if event == "translate" else 2  # the page: the slider's input and output
    assert len(results) == REQUESTS and all(len(r) == per_request for r in results)
    for files in results:
        for path, (declared, body) in files.items():
            assert declared == len(body), f"{path}: {len(body)} of {declared} bytes"
            assert Image.open(io.BytesIO(body)).size == PHOTO
    paths = [path for files in results for path in files]
    assert len(set(paths)) == len(paths), "two responses were handed the same file"


def test_the_page_hands_gradio_paths_of_its_own_files(tmp_path):
    """Unit level: the values the Photo tab returns are paths of files it wrote (Gradio then
    serves them as they are), each under a name of its own, never PIL images."""
    from webui import photo

    img = random_image(40, 30)
    result = dict(model=RESNET.id, custom=None, resolution="full", seed=None, round_trip=True,
                  input=None, reverse=None, summary="s")  # fmt: skip
    first = photo._present(img, img, img, dict(result))
    second = photo._present(img, img, img, dict(result))
    values = [*first[0], first[1]["value"], first[2], *second[0], second[1]["value"], second[2]]
    assert all(isinstance(v, str) for v in values), [type(v) for v in values]
    slider, download = first[0], first[2]
    assert slider[1] == download  # the download is the result shown, not a second copy
    assert len(set(values)) == len(values) - 2  # each result's own files, nothing shared
    import gradio as gr

    cache = os.path.realpath(gr.utils.get_upload_folder())
    assert all(os.path.realpath(v).startswith(cache + os.sep) for v in values)


def test_the_result_writer_never_replaces_an_existing_name(tmp_path):
    """atomic.write_new: temporary + link: the name appears once, complete, or not at all."""
    target = tmp_path / "r.png"
    atomic.write_new(target, lambda f: f.write(b"first"))
    with pytest.raises(FileExistsError):
        atomic.write_new(target, lambda f: f.write(b"second"))
    assert target.read_bytes() == b"first"
    # Twelve writers racing for one name: exactly one wins; no temporary is left.
    wins, barrier = [], threading.Barrier(REQUESTS)

    def race(i: int) -> None:
        barrier.wait()
        try:
            atomic.write_new(tmp_path / "race.png", lambda f: f.write(bytes([i]) * 100_000))
            wins.append(i)
        except FileExistsError:
            pass

    threads = [threading.Thread(target=race, args=(i,)) for i in range(REQUESTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and (tmp_path / "race.png").read_bytes() == bytes(wins) * 100_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.png", "race.png"]
