"""The app's big pictures and moving pictures (issue 13), as clients reach them: "full" photos
above IMG2IMG_MAX_SIDE computed at their own size in tiles (equal to the library's tiled run),
downscaled only above IMG2IMG_MAX_FULL_MP; the Video tab's event with a real clip uploaded
through Gradio's upload route (frame count, rate, size and audio kept), and its caps."""

from __future__ import annotations

import os

import httpx
import numpy as np
import pytest
from helpers.app_server import (
    FIXTURE_WEIGHTS,
    app_env,
    dependencies,
    free_port,
    install_fixture_weights,
    queue_call,
    running_app,
)
from helpers.catalog import RESNET, UNET, first
from helpers.images import random_image
from helpers.videos import declare_seconds, decode, make_clip
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
from gradio_client import Client, handle_file  # noqa: E402

MAX_SIDE, MAX_FULL_MP = 96, 0.05  # small caps, so that small images take the tiled path
BUDGET_MB = 1  # an untiled forward's memory budget no photo here fits
UNPUBLISHED = first(lambda e: not e.sources and e.id not in FIXTURE_WEIGHTS)


@pytest.fixture(scope="module")
def app(fixtures, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("media")
    install_fixture_weights(tmp / "weights", fixtures)
    env = app_env(
        tmp,
        free_port(),
        IMG2IMG_MAX_SIDE=str(MAX_SIDE),
        IMG2IMG_MAX_FULL_MP=str(MAX_FULL_MP),
        IMG2IMG_MAX_VIDEO_SECONDS="3",
        IMG2IMG_PLAN="openvino-f32",  # pinned: the tiles are compared with eager fp32
        IMG2IMG_MEMORY_BUDGET_MB=str(BUDGET_MB),  # so small that Full size over MAX_SIDE tiles
    )
    with running_app(env) as proc:
        yield proc, Client(proc.url, analytics_enabled=False, verbose=False), tmp


def _clip_event(url: str) -> int:
    return next(d["id"] for d in dependencies(url) if d.get("api_name") == "translate_clip")


def _upload(url: str, path) -> dict:
    with open(path, "rb") as f:
        r = httpx.post(f"{url}/gradio_api/upload", files={"files": (path.name, f)}, timeout=60)
    r.raise_for_status()
    return {"path": r.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def _fetch(url: str, value: dict, dst):
    path = value.get("video", value)["path"] if isinstance(value, dict) else value
    r = httpx.get(f"{url}/gradio_api/file={path}", timeout=60)
    r.raise_for_status()
    dst.write_bytes(r.content)
    return dst


@pytest.mark.parametrize("model", [RESNET, UNET], ids=lambda e: e.id)
@pytest.mark.slow
def test_full_size_above_max_side_is_tiled_at_the_photo_s_size(app, fixtures, tmp_path, model):
    _, client, tmp = app
    photo = random_image(200, 120, seed=3)  # long side over MAX_SIDE, 0.024 MP under the cap
    photo.save(tmp_path / "p.png")
    out = client.predict(handle_file(tmp_path / "p.png"), model.id, "full", api_name="/translate")
    got = np.asarray(Image.open(out).convert("RGB"), dtype=np.int16)
    assert got.shape == (120, 200, 3)
    # The same as the library's full-size translation of the same checkpoint (8-bit PNG),
    # under the app's memory budget: over it, so in tiles.
    from img2img import Translator
    from img2img.media.tiles import translate_full, would_tile

    weights = tmp / "weights" / model.id / FIXTURE_WEIGHTS[model.id]
    eager, budget = Translator(plan="eager"), BUDGET_MB * 2**20
    assert would_tile(eager, str(weights), photo, budget=budget)
    want = translate_full(eager, str(weights), photo, budget=budget, progress=False)
    diff = np.abs(got - np.asarray(want.convert("RGB"), dtype=np.int16))
    assert diff.max() <= 2, diff.max()  # the app's plan may differ from eager by a level


def test_full_size_downscales_only_above_the_megapixel_cap(app, tmp_path):
    _, client, _ = app
    random_image(400, 250).save(tmp_path / "big.png")  # 0.1 MP: twice the cap
    out = Image.open(client.predict(handle_file(tmp_path / "big.png"), RESNET.id, "full"))
    w, h = out.size
    assert w * h <= MAX_FULL_MP * 1e6 and abs(w / h - 400 / 250) < 0.02, out.size
    random_image(90, 60).save(tmp_path / "small.png")  # under MAX_SIDE: one piece, own size
    out = Image.open(client.predict(handle_file(tmp_path / "small.png"), RESNET.id, "full"))
    assert out.size == (90, 60)


def test_a_clip_round_trips_with_frames_rate_size_and_audio(app, tmp_path):
    proc, _, _ = app
    clip = make_clip(tmp_path / "drive.mp4", frames=48, fps=24, size=(64, 48), audio=True)
    data = [_upload(proc.url, clip), RESNET.id, "fast", None]  # None: your own model (state)
    result = queue_call(proc.url, _clip_event(proc.url), data)
    assert result.success, result
    video, status = result.output["data"]
    assert "48 frames" in status and "audio copied" in status, status
    got = decode(_fetch(proc.url, video, tmp_path / "out.mp4"))
    want = decode(clip)
    assert (got["frames"], got["fps"], got["size"]) == (48, want["fps"], (64, 48))
    assert got["audio"] == "aac" and got["audio_packets"] == want["audio_packets"]


def test_clip_caps_and_bad_clips_get_clear_messages(app, tmp_path):
    proc, _, _ = app
    long = make_clip(tmp_path / "long.mp4", frames=96, fps=24, audio=False)  # 4 s > 3 s cap
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    fine = make_clip(tmp_path / "fine.mp4", frames=12, fps=24, audio=False)
    cases = [
        (long, RESNET.id, "over this app's 3 s limit"),
        (broken, RESNET.id, "broken.mp4"),
        (fine, UNPUBLISHED.id, "not published yet"),
    ]
    for clip, model_id, expect in cases:
        result = queue_call(
            proc.url, _clip_event(proc.url), [_upload(proc.url, clip), model_id, "fast", None]
        )
        assert result.success, result  # the failure is shown in the tab, not raised
        video, status = result.output["data"]
        assert video is None and expect in status, (clip.name, status)
    # Nothing half-written is offered, and the server still serves.
    ok = queue_call(
        proc.url, _clip_event(proc.url), [_upload(proc.url, fine), RESNET.id, "fast", None]
    )
    assert ok.success and ok.output["data"][0] is not None


@pytest.mark.parametrize("kind", ["no duration", "header says 0.5 s"])
def test_a_clip_whose_header_hides_its_length_is_refused_while_decoding(app, tmp_path, kind):
    """4 s of frames (over the 3 s cap) as streamed Matroska, which declares no duration, or
    as an MP4 whose header says 0.5 s: both pass a header check, and the decode loop stops
    them. The tab says why; no clip is offered and none is left in the outputs folder."""
    proc, _, tmp = app
    if kind == "no duration":
        clip = make_clip(tmp_path / "stream.mkv", frames=96, fps=24, audio=False, live=True)
    else:
        clip = declare_seconds(make_clip(tmp_path / "short.mp4", frames=96, fps=24), 0.5)
    result = queue_call(
        proc.url, _clip_event(proc.url), [_upload(proc.url, clip), RESNET.id, "fast", None]
    )
    assert result.success, result
    video, status = result.output["data"]
    status = status.replace("\\", "")  # Markdown escapes
    assert video is None and "over the 3 s limit" in status and clip.name in status, status
    assert "found while decoding" in status and "Trim it" in status, status
    outputs = tmp / "tmp" / "img2img-outputs"
    assert not list(outputs.glob(f"*/{clip.stem}*")), list(outputs.glob("*/*"))
