"""The Video tab's result plays in a real browser (Debian's chromium, driven by Playwright):
a phone's portrait clip at an odd size (65x49 stored, a 90° display matrix) is uploaded in the
tab, translated, and the result's <video> element loads its frames (readyState >= 2, no
error) at the upright, even size (50x66: yuv420p, the last row and column repeated)."""

from __future__ import annotations

import pytest
from helpers.app_server import app_env, free_port, install_fixture_weights, running_app
from helpers.browser import ARGS, CHROMIUM, MARKS
from helpers.videos import make_clip

pytestmark = [*MARKS, pytest.mark.slow]


@pytest.fixture(scope="module")
def page_url(fixtures, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser-video")
    install_fixture_weights(tmp / "weights", fixtures)
    with running_app(app_env(tmp, free_port())) as (url, _):
        yield url


def test_the_result_of_an_odd_sized_portrait_clip_plays_upright(page_url, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    clip = make_clip(
        tmp_path / "phone.mp4", frames=24, size=(65, 49), pix_fmt="yuv444p", rotation=90
    )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(180_000)
        page.goto(page_url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Video").click()
        page.locator("#clip input[type=file]").set_input_files(str(clip))
        page.locator("#clip video").first.wait_for(state="attached")
        page.locator("#clip-go").click()
        page.wait_for_function(
            """() => { const v = document.querySelector('#clip-out video');
                       return v && (v.error || v.readyState >= 2); }"""
        )
        state = page.evaluate(
            """() => { const v = document.querySelector('#clip-out video');
                       return {ready: v.readyState, error: v.error && v.error.code,
                               width: v.videoWidth, height: v.videoHeight}; }"""
        )
        status = page.locator("#clip-status").inner_text()
        browser.close()
    assert state["error"] is None and state["ready"] >= 2, (state, status)
    assert (state["width"], state["height"]) == (50, 66), (state, status)
