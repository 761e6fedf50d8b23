"""The Live tab in a real browser (Debian's chromium, driven by Playwright) whose camera is
a generated clip (--use-file-for-fake-video-capture): Record streams it through the model,
the translated frames keep coming and are the model's output, the page shows the frame rate
(reported: printed and as the test's `live_fps` property), and Stop ends the server's work.
A model that cannot load is said in the status while the stream goes on, and picking
another model mid-stream carries on with it."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from helpers.app_server import CORRUPT
from helpers.browser import CHROMIUM, MARKS
from helpers.catalog import RESNET
from helpers.live import (
    camera_frames,
    launch,
    open_live,
    output_src,
    pick,
    record,
    status,
    wait_frames,
    write_y4m,
)
from helpers.paths import ROOT
from PIL import Image, ImageOps

SHOTS = ROOT / "test-artifacts" / "screenshots"
CAMERA = (320, 240)

pytestmark = [*MARKS, pytest.mark.slow]


@pytest.fixture(scope="module")
def app(app_servers):
    return app_servers.get()


@pytest.fixture
def page(app, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    y4m = write_y4m(tmp_path / "camera.y4m", frames=60, size=CAMERA)
    with sync_api.sync_playwright() as p:
        browser = launch(p, CHROMIUM, y4m)
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, permissions=["camera"])
        page.set_default_timeout(120_000)
        yield page
        browser.close()


def _shown(page) -> Image.Image:
    src = output_src(page)
    assert src.startswith("data:image/jpeg;base64,"), src[:60]
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB")


def _closest_input(img: Image.Image) -> float:
    """Mean level difference between `img` and the camera frame (either way round: the
    webcam view is mirrored) that it resembles most."""
    best = float("inf")
    for frame in camera_frames(60, CAMERA):
        for candidate in (frame, ImageOps.mirror(frame)):
            small = np.asarray(candidate.resize(img.size, Image.BICUBIC), dtype=np.float64)
            best = min(best, float(np.abs(small - np.asarray(img, dtype=np.float64)).mean()))
    return best


def test_live_translates_the_camera_shows_the_frame_rate_and_stops(app, page, record_property):
    SHOTS.mkdir(parents=True, exist_ok=True)
    open_live(page, app.url, RESNET.label)
    record(page)
    first = wait_frames(page, 5)
    sources = set()
    end = time.monotonic() + 8
    while time.monotonic() < end:  # the shown result keeps being replaced
        sources.add(output_src(page))
        time.sleep(0.25)
    figures = wait_frames(page, first["frames"] + 5)
    page.screenshot(path=str(SHOTS / "live-1-streaming.png"), full_page=True)
    print(f"\nLive tab, {RESNET.id} (fixture ResNet-9, ngf 8) at 256 px: {figures}")
    record_property("live_fps", figures["fps"])
    record_property("live_model_ms", figures["model_ms"])
    record_property("live_dropped", figures["dropped"])
    assert len(sources - {""}) >= 3, "the result is replaced as frames come"
    shown = _shown(page)
    assert shown.size == (256, 192)  # the working size: 320x240 with its long side at 256
    assert _closest_input(shown) > 20, "the model's output, not the camera's frame"
    assert figures["fps"] > 0 and figures["model_ms"] > 0
    assert figures["sent"] >= figures["frames"] + figures["dropped"] - 1

    record(page)  # Stop
    page.locator("#live-status", has_text="Stopped.").wait_for()
    stopped = status(page)
    last = output_src(page)
    time.sleep(3)
    assert output_src(page) == last and status(page) == stopped, "nothing after Stop"
    log = (app.tmp / "app.log").read_text()
    ended = [line for line in log.splitlines() if line.startswith("* Live stream ")]
    assert ended and f"{stopped['frames']} frames translated" in ended[-1], ended


def test_a_model_that_cannot_load_is_said_and_another_takes_over(app, page):
    open_live(page, app.url, CORRUPT.label)
    record(page)
    try:
        page.locator("#live-status", has_text="⚠️").wait_for(timeout=60_000)
    finally:
        page.screenshot(path=str(SHOTS / "live-2-refused.png"), full_page=True)
    assert "refused" in page.locator("#live-status").inner_text()
    pick(page, RESNET.label)  # mid-stream: the next frames use this one
    figures = wait_frames(page, 3)
    assert "⚠️" not in page.locator("#live-status").inner_text()
    assert figures["frames"] >= 3 and _shown(page).size == (256, 192)
    record(page)
