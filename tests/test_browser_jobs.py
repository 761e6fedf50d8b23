"""Long jobs in a real browser (Debian's chromium via Playwright): a Full size photo in tiles
(a pinned small memory budget, the tiny ResNet) is announced with its estimate, shows Stop,
and Stop ends it: the status says Stopped, no result is shown, and the server's worker stops
between two batches of windows (its log says so; then its CPU idles). Closing the page
mid-job stops it too. A job estimated over IMG2IMG_MAX_JOB_SECONDS is refused up front."""

from __future__ import annotations

import time

import numpy as np
import pytest
from helpers.app_server import app_env, free_port, install_fixture_weights, running_app
from helpers.browser import ARGS, CHROMIUM, MARKS
from helpers.catalog import RESNET
from helpers.paths import ROOT
from PIL import Image
from test_app_disconnect import _cpu_seconds

SHOTS = ROOT / "test-artifacts"
pytestmark = [*MARKS, pytest.mark.slow]


def _server(fixtures, tmp, **extra):
    install_fixture_weights(tmp / "weights", fixtures)
    env = app_env(tmp, free_port(), IMG2IMG_MAX_SIDE="96", IMG2IMG_DEFAULT_MODEL=RESNET.id)
    env.update(IMG2IMG_MEMORY_BUDGET_MB="64", **extra)  # Full size tiles
    return running_app(env)


@pytest.fixture(scope="module")
def app(fixtures, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser-jobs")
    with _server(fixtures, tmp) as proc:
        yield proc, tmp / "app.log"


@pytest.fixture(scope="module")
def big_photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "big.jpg"
    y, x = np.mgrid[0:3000, 0:4000]
    rgb = np.stack([x * 255 // 4000, y * 255 // 3000, (x + y) * 255 // 7000], -1)
    noise = np.random.default_rng(0).normal(0, 8, rgb.shape)
    Image.fromarray(np.clip(rgb + noise, 0, 255).astype(np.uint8)).save(path, quality=85)
    return path  # 12 MP: 336 windows


def _start_full_size(page, url, photo):
    page.goto(url, wait_until="domcontentloaded")
    page.locator("#input-image input[type=file]").set_input_files(str(photo))
    page.locator("#input-image img").first.wait_for(state="visible")
    page.get_by_label("Full size", exact=False).check()
    page.locator("#go").click()


def _wait_log(log, text, since, timeout=60.0) -> str:
    end = time.monotonic() + timeout
    while text not in (seen := log.read_text()[since:]) and time.monotonic() < end:
        time.sleep(0.2)
    assert text in seen, seen[-3000:]
    return seen


def _assert_idle(pid):
    time.sleep(1.5)  # the batch under way ends
    before = _cpu_seconds(pid)
    time.sleep(3)
    assert _cpu_seconds(pid) - before < 0.6, "the server kept computing after the stop"


def test_stop_ends_a_full_size_job_and_its_computation(app, big_photo):
    sync_api = pytest.importorskip("playwright.sync_api")
    proc, log = app
    SHOTS.mkdir(exist_ok=True)
    already = len(log.read_text())
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(180_000)
        _start_full_size(page, proc.url, big_photo)
        status = page.locator("#status")
        status.get_by_text("Translating at full size: about").wait_for()
        stop = page.locator("#stop")
        stop.wait_for(state="visible")
        _wait_log(log, "speed ", already)  # the first guess's probe ran: tiles are next
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "jobs-running.png"))
        announced = status.inner_text()
        stop.click()
        status.get_by_text("Stopped").wait_for()
        page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / "jobs-stopped.png"))
        stop_visible = stop.is_visible()
        slider_images = page.locator("#slider img").count()
        browser.close()
    assert "on this CPU" in announced, announced
    assert not stop_visible
    assert slider_images == 0, "a result is shown after Stop"
    text = _wait_log(log, "stopped after", already)
    assert "Stop asked for the photo job" in text and "of 336 windows" in text, text[-2000:]
    _assert_idle(proc.pid)


def test_closing_the_page_stops_a_full_size_job(app, big_photo):
    sync_api = pytest.importorskip("playwright.sync_api")
    proc, log = app
    already = len(log.read_text())
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(180_000)
        _start_full_size(page, proc.url, big_photo)
        page.locator("#stop").wait_for(state="visible")
        page.wait_for_timeout(4000)  # computing its windows
        page.close()
        browser.close()
    text = _wait_log(log, "stopped after", already)
    assert "has gone: stopping its work" in text, text[-2000:]
    _assert_idle(proc.pid)


def test_a_job_over_the_limit_is_refused_before_it_runs(fixtures, tmp_path, big_photo):
    """IMG2IMG_MAX_JOB_SECONDS=0.001: the estimate (a first guess) is over it; the status says
    what to do and nothing is computed."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with _server(fixtures, tmp_path, IMG2IMG_MAX_JOB_SECONDS="0.001") as proc:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(180_000)
            _start_full_size(page, proc.url, big_photo)
            status = page.locator("#status")
            status.get_by_text("IMG2IMG_MAX_JOB_SECONDS").first.wait_for()
            page.screenshot(path=str(SHOTS / "jobs-refused.png"))
            text = status.inner_text()
            browser.close()
        log = (tmp_path / "app.log").read_text()
    assert "img2img translate" in text and "--tile" in text and "Fast" in text, text
    assert "[tiles]" not in log, log[-2000:]  # no tiled pass ran
