"""The app as its users reach it: `python app.py` and gradio_client calls of /translate."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import numpy as np
import pytest
from helpers.app_server import (
    FIXTURE_WEIGHTS,
    app_env,
    free_port,
    install_fixture_weights,
    running_app,
)
from helpers.catalog import HUGGAN, UNET, first
from helpers.images import random_image
from helpers.paths import ROOT
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402


@pytest.fixture(scope="module")
def app(fixtures, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    install_fixture_weights(tmp / "weights", fixtures)
    (tmp / "examples").mkdir()
    random_image(96, 64).save(tmp / "examples" / "gradient.png")
    with running_app(app_env(tmp, free_port())) as (url, startup_s):
        client = Client(url, analytics_enabled=False, verbose=False)
        yield url, client, tmp, startup_s


def test_translate_returns_an_image_of_the_input_size(app, tmp_path):
    _, client, _, startup_s = app
    print(f"app answered {startup_s:.1f} s after start")
    random_image(300, 180).save(tmp_path / "photo.jpg")
    for model_id in FIXTURE_WEIGHTS:
        out = client.predict(handle_file(tmp_path / "photo.jpg"), model_id, api_name="/translate")
        img = Image.open(out)
        assert img.size == (300, 180) and img.format == "PNG", model_id


def test_api_options_and_alpha(app, tmp_path):
    _, client, _, _ = app
    random_image(120, 90, mode="RGBA").save(tmp_path / "alpha.png")
    model = UNET.id  # pix2pix: dropout, so the seed matters
    full = client.predict(
        handle_file(tmp_path / "alpha.png"), model, "full", -1, api_name="/translate"
    )
    assert Image.open(full).mode == "RGBA" and Image.open(full).size == (120, 90)
    a = client.predict(handle_file(tmp_path / "alpha.png"), model, "fast", 7, api_name="/translate")
    b = client.predict(handle_file(tmp_path / "alpha.png"), model, "fast", 7, api_name="/translate")
    assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty"),
        (b"just text, renamed", "not an image"),
    ],
)
def test_bad_upload_gets_a_clear_message_and_server_keeps_serving(app, tmp_path, content, message):
    _, client, _, _ = app
    (tmp_path / "bad.png").write_bytes(content)
    with pytest.raises(AppError, match=message) as e:
        client.predict(handle_file(tmp_path / "bad.png"), HUGGAN.id, api_name="/translate")
    assert str(tmp_path) not in str(e.value) and "/gradio/" not in str(e.value)
    random_image(32, 32).save(tmp_path / "ok.png")
    assert client.predict(handle_file(tmp_path / "ok.png"), HUGGAN.id, api_name="/translate")


def test_unavailable_and_unknown_models(app, tmp_path):
    _, client, _, _ = app
    random_image(32, 32).save(tmp_path / "ok.png")
    missing = first(lambda e: e.sources and e.id not in FIXTURE_WEIGHTS)  # offline: no weights
    with pytest.raises(AppError, match=f"not available.*{missing.env_var}"):
        client.predict(handle_file(tmp_path / "ok.png"), missing.id, api_name="/translate")
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(handle_file(tmp_path / "ok.png"), "cyclegan/nope", api_name="/translate")


def test_only_translate_is_public(app):
    _, client, _, _ = app
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {
        "/translate"
    }


@pytest.mark.parametrize("path", ["/etc/passwd", str(ROOT / "app.py"), "weights"])
def test_no_file_access_beyond_gradio(app, path):
    url, _, tmp, _ = app
    targets = [
        path if path != "weights" else str(tmp / "weights" / HUGGAN.id / FIXTURE_WEIGHTS[HUGGAN.id])
    ]
    for target in targets:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{url}/gradio_api/file={target}", timeout=10)
        assert e.value.code in (403, 404)


def test_page_is_built_without_torch(tmp_path):
    """Cold start: importing app.py builds the whole page without importing torch (~2 s),
    which `python app.py` loads right after launch; img2img's torch-backed names stay
    reachable lazily."""
    import subprocess
    import sys

    env = app_env(tmp_path, free_port())
    code = (
        "import sys, app\n"
        "assert 'torch' not in sys.modules, 'app.py imported torch before launch'\n"
        "assert app.demo.fns, 'no events built'\n"
        "import img2img\n"
        "assert callable(img2img.load_generator) and 'torch' in sys.modules\n"
        "assert app.translator() is app.translator()\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
