"""The app as its users reach it: `python app.py` and gradio_client calls of /translate."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import numpy as np
import pytest
from helpers.app_server import (
    FIXTURE_WEIGHTS,
    MISSING,
    app_env,
    free_port,
    install_fixture_weights,
)
from helpers.catalog import HUGGAN, PROJECT, RESNET, UNET
from helpers.images import random_image
from helpers.paths import ROOT
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402


@pytest.fixture(scope="module")
def app(app_servers):
    """The standard offline app, shared with the other modules that ask for it."""
    app = app_servers.get()
    client = Client(app.url, analytics_enabled=False, verbose=False)
    return app.url, client, app.tmp, app.startup_s


@pytest.mark.slow
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
    missing = MISSING  # offline, and nothing under IMG2IMG_WEIGHTS_DIR
    assert missing.sources and missing.id not in FIXTURE_WEIGHTS
    with pytest.raises(AppError, match=f"not available.*{missing.env_var}"):
        client.predict(handle_file(tmp_path / "ok.png"), missing.id, api_name="/translate")
    with pytest.raises(AppError, match="unknown model id .cyclegan/nope.; did you mean"):
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


@pytest.mark.slow
def test_page_is_built_without_torch(tmp_path):
    """Cold start: importing app.py builds the whole page, examples included, without
    importing torch (~2 s, loaded right after launch) and without running any model (the
    examples are cached lazily); img2img's torch-backed names stay reachable lazily."""
    import subprocess
    import sys

    env = app_env(tmp_path, free_port(), IMG2IMG_EXAMPLES_DIR=str(ROOT / "examples"))
    code = (
        "import sys, os, app, gradio\n"
        "assert 'torch' not in sys.modules, 'app.py imported torch before launch'\n"
        "assert app.demo.fns, 'no events built'\n"
        "sets = [b for b in app.demo.blocks.values() if isinstance(b, gradio.Dataset)]\n"
        "assert sets and len(sets[0].samples) >= 8, 'the examples are not on the page'\n"
        "assert not os.listdir(os.environ['GRADIO_EXAMPLES_CACHE']), 'an example ran'\n"
        "import img2img\n"
        "assert callable(img2img.load_generator) and 'torch' in sys.modules\n"
        "assert app.translator() is app.translator()\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_the_api_is_documented(app):
    """Was: empty parameter descriptions in /gradio_api/info and an output named value_26."""
    _, client, _, _ = app
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    params = {p["parameter_name"]: p for p in api["/translate"]["parameters"]}
    assert list(params) == ["image", "model_id", "resolution", "seed"]
    assert all(p["python_type"]["description"] for p in params.values()), params
    assert "catalog id" in params["model_id"]["python_type"]["description"]
    assert "4294967295" in params["seed"]["python_type"]["description"]
    (out,) = api["/translate"]["returns"]
    assert out["label"] == "Translated image" and not out["label"].startswith("value_")


def test_unpublished_and_own_models_are_refused_before_any_work(app, tmp_path):
    """The refusal comes before the upload is even decoded (this one is not an image)."""
    _, client, _, _ = app
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(AppError, match=f"{PROJECT.id} is not published yet.*What you can do"):
        client.predict(handle_file(tmp_path / "bad.png"), PROJECT.id, api_name="/translate")
    with pytest.raises(AppError, match="for the page only"):
        client.predict(handle_file(tmp_path / "bad.png"), "custom", api_name="/translate")


def _python(code: str, env: dict[str, str]) -> str:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_zerogpu_one_reservation_per_request_sized_by_the_work(fixtures, tmp_path):
    """On ZeroGPU (a stand-in `spaces`, tests/helpers/zerogpu): the default pair is loaded
    before launch, compile is refused, and each request (a round trip included) is one
    @spaces.GPU call whose duration grows with the pixels, below the 60 s default."""
    # A torch plan (on ZeroGPU the device is cuda; here the CPU would pick openvino, which
    # has no compile step), with compile asked for: refused.
    env = app_env(
        tmp_path, free_port(), SPACES_ZERO_GPU="true", IMG2IMG_COMPILE="1", IMG2IMG_PLAN="eager"
    )
    env.update(IMG2IMG_DEFAULT_MODEL=RESNET.id, FAKE_SPACES_LOG=str(tmp_path / "gpu.jsonl"))
    env["PYTHONPATH"] = str(ROOT / "tests" / "helpers" / "zerogpu")
    install_fixture_weights(tmp_path / "weights", fixtures)
    random_image(1000, 800).save(tmp_path / "photo.png")
    code = (
        "import app\n"
        "app.preload_defaults()\n"
        "t = app.translator()\n"
        f"assert t.is_loaded({RESNET.id!r}) and t.is_loaded({RESNET.reverse!r})\n"
        "assert not t.plan.compile\n"
        f"photo = {str(tmp_path / 'photo.png')!r}\n"
        "for res, trip in (('fast', True), ('full', False)):\n"
        f"    out = list(app.translate_ui(photo, {RESNET.id!r}, res, False, 0, trip, None,\n"
        "                                progress=app._no_progress))[-1]\n"
        "    assert out[4] is not None, out[3]\n"
    )
    stdout = _python(code, env)
    assert "IMG2IMG_COMPILE=1 refused: ZeroGPU does not support torch.compile" in stdout
    calls = [json.loads(line) for line in (tmp_path / "gpu.jsonl").read_text().splitlines()]
    assert [c["fn"] for c in calls] == ["_run", "_run"]  # one reservation per request
    trip, full = calls
    assert trip["args"][:2] == [RESNET.id, RESNET.reverse] and full["args"][1] is None
    assert trip["duration"] < full["duration"] < 60  # 2 x 256 px passes vs one 1000x800


def test_a_deployer_can_switch_your_own_model_off(tmp_path):
    env = app_env(tmp_path, free_port(), IMG2IMG_ALLOW_CUSTOM="0")
    code = (
        "import app\n"
        "assert 'custom' not in [v for _, v in app.model_choices(live=False)]\n"
        "ids = {getattr(b, 'elem_id', None) for b in app.demo.blocks.values()}\n"
        "assert 'load-custom' not in ids and 'checkpoint' not in ids, ids\n"
        "from webui.media import MAX_VIDEO_BYTES as v\n"
        "assert app.launch_kwargs()['max_file_size'] == max(app.MAX_UPLOAD, v)\n"
        "print('ok')\n"
    )
    assert _python(code, env).strip().endswith("ok")
