"""The picker in Chromium (issue 20): your models kept in <weights>/custom/<name>/ are listed
first, under "Your models", on the Photo and the Video tab, and translate; a server whose
probe found no network marks remote models so; a local file that cannot serve is marked so.
Screenshot: test-artifacts/screenshots/models-picker.png."""

from __future__ import annotations

import pytest
import torch
from helpers.app_server import (
    FIXTURE_WEIGHTS,
    app_env,
    free_port,
    install_fixture_weights,
    running_app,
)
from helpers.blackhole import blackhole
from helpers.browser import ARGS, CHROMIUM, MARKS
from helpers.catalog import RESNET, first
from helpers.images import random_image
from helpers.models import tiny_generators
from helpers.paths import ROOT

from img2img import save_pretrained

SHOTS = ROOT / "test-artifacts" / "screenshots"
pytestmark = [*MARKS, pytest.mark.slow]
REMOTE = first(lambda e: e.sources and e.id not in FIXTURE_WEIGHTS)
SPARE = first(
    lambda e: e.architecture["architecture"] == "resnet" and e.id not in (RESNET.id, RESNET.reverse)
)


@pytest.fixture(scope="module")
def page_url(fixtures, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("models")
    install_fixture_weights(tmp / "weights", fixtures)
    save_pretrained(tiny_generators()["huggan_resnet"], tmp / "weights" / "custom" / "zebras")
    (tmp / "weights" / SPARE.id).mkdir(parents=True)
    config = {"architecture": "resnet", "ngf": 8, "n_blocks": 2, "in_channels": 1}
    from img2img.models import build_generator

    torch.save(build_generator(config).state_dict(), tmp / "weights" / SPARE.id / "g.pth")
    with blackhole() as dead:
        env = app_env(
            tmp,
            free_port(),
            HF_HUB_OFFLINE="0",  # downloads allowed, but the network is not there
            HF_ENDPOINT=dead,
            IMG2IMG_URL_MIRROR=dead,
            IMG2IMG_PROBE_TIMEOUT="0.5",
        )
        with running_app(env) as (url, _):
            yield url


def _options(page, picker: str) -> list[str]:
    page.locator(f"{picker} input").click()
    items = page.locator("ul[role=listbox] li")
    items.first.wait_for()
    texts = [t.strip().split("\n")[-1] for t in items.all_inner_texts()]
    return texts


def _close(page) -> None:
    page.locator("#tagline").click()
    page.locator("ul[role=listbox]").wait_for(state="detached")


def test_your_models_on_both_tabs_and_offline_marks(page_url, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(page_url, wait_until="domcontentloaded")
        page.wait_for_function(
            "() => (document.querySelector('#model input')?.value || '').includes('—')"
        )
        options = _options(page, "#model")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("ul[role=listbox]").evaluate("e => { e.scrollTop = 0; }")
        page.screenshot(path=str(SHOTS / "models-picker.png"))
        _close(page)
        assert options[0] == "Your models · zebras — ✓ ready (HugGAN ResNet-2)", options[:3]
        marks = {o.split(" — ")[0]: o.split(" — ")[1] for o in options if " — " in o}
        remote = next(k for k in marks if k.endswith(f"· {REMOTE.label}"))
        assert marks[remote] == "✗ not on this machine (no network)"
        spare = next(k for k in marks if k.endswith(f"· {SPARE.label}"))
        assert marks[spare] == "✗ local file unusable: other input / output channels"
        ranks = [0 if "✓" in o else 1 if "↓" in o else 2 for o in options if " — " in o]
        assert ranks == sorted(ranks), options  # ready first over the whole list
        # Picked, it says what it is, and translates.
        random_image(64, 48).save(tmp_path / "photo.png")
        page.locator("#input-image input[type=file]").set_input_files(str(tmp_path / "photo.png"))
        page.locator("#input-image img").first.wait_for(state="visible")
        page.locator("#model input").click()
        page.locator("ul[role=listbox] li", has_text="Your models · zebras").first.click()
        page.locator("#model-card").get_by_text("custom/zebras").first.wait_for()
        assert "HugGAN ResNet" in page.locator("#model-card").inner_text()
        page.locator("#go").click()
        page.locator("#status").get_by_text("px in").first.wait_for()
        assert "Your model zebras" in page.locator("#status").inner_text()
        # The Video tab lists it too, and offers "Your own model".
        page.get_by_role("tab", name="Video").click()
        video = _options(page, "#clip-model")
        page.screenshot(path=str(SHOTS / "models-video-picker.png"))
        _close(page)
        assert video[0].startswith("Your models · zebras — ✓ ready"), video[:3]
        assert any(o.startswith("★ Your own model") for o in video)
        browser.close()
