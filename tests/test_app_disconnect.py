"""A request whose client has gone stops computing: a Full size photo (in tiles) and a clip,
each joined over the queue as the page joins it, left once the work reports progress (the
event stream closed, as a closed tab closes it), then the server is watched: its log says it
stopped, the work ended before its last window / frame, and its CPU falls idle. The real
path: app.py, Gradio's queue, the library's loops (webui/cancel.py says how it works)."""

from __future__ import annotations

import json
import secrets
import time

import httpx
import numpy as np
import pytest
from helpers.app_server import app_env, fn_index, free_port, install_fixture_weights, running_app
from helpers.catalog import RESNET
from helpers.videos import make_clip
from PIL import Image

pytestmark = pytest.mark.slow
GONE = "has gone: stopping its work"


@pytest.fixture(scope="module")
def app(fixtures, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("disconnect")
    install_fixture_weights(tmp / "weights", fixtures)
    env = app_env(tmp, free_port(), IMG2IMG_MAX_SIDE="96", IMG2IMG_MAX_VIDEO_SECONDS="60")
    env["IMG2IMG_MEMORY_BUDGET_MB"] = "64"  # Full size tiles (untiled when it fits the budget)
    with running_app(env) as proc:
        yield proc, tmp / "app.log"


def _upload(url: str, path) -> dict:
    with open(path, "rb") as f:
        r = httpx.post(f"{url}/gradio_api/upload", files={"files": (path.name, f)}, timeout=60)
    r.raise_for_status()
    return {"path": r.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def _join_then_leave(url: str, fn: int, data: list, unit: str) -> None:
    """Join the queue, read the event stream until the work reports a `unit` done, then
    close the stream: the client has gone."""
    session = secrets.token_hex(8)
    payload = {"data": data, "fn_index": fn, "session_hash": session, "event_data": None}
    httpx.post(f"{url}/gradio_api/queue/join", json=payload, timeout=60).raise_for_status()
    params = {"session_hash": session}
    with httpx.stream("GET", f"{url}/gradio_api/queue/data", params=params, timeout=300) as s:
        for line in s.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            assert message.get("msg") != "process_completed", message  # finished too soon
            units = (message.get("progress_data") or []) if message.get("msg") == "progress" else []
            if any(u.get("unit") == unit and (u.get("index") or 0) >= 1 for u in units):
                return  # computing: leave now


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def _assert_stops(proc, log, already: int) -> str:
    """Within 20 s of leaving, the log says the work stopped; then the server idles."""
    left = time.monotonic()
    while GONE not in (text := log.read_text()[already:]) and time.monotonic() < left + 20:
        time.sleep(0.2)
    assert GONE in text, f"still computing 20 s after the client left:\n{text[-2000:]}"
    print(f"stopped {time.monotonic() - left:.1f} s after the client left")
    time.sleep(1)  # the batch under way ends
    before = _cpu_seconds(proc.pid)
    time.sleep(3)
    busy = _cpu_seconds(proc.pid) - before
    assert busy < 0.6, f"the server used {busy:.2f} s of CPU in 3 s after stopping"
    return log.read_text()[already:]


def test_a_full_size_photo_stops_when_its_client_goes(app, tmp_path):
    proc, log = app
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:3000, 0:4000]
    rgb = np.stack([x * 255 // 4000, y * 255 // 3000, (x + y) * 255 // 7000], -1)
    rgb = np.clip(rgb + rng.normal(0, 8, rgb.shape), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "big.jpg", quality=85)  # 12 MP: 336 windows
    already = len(log.read_text())
    data = [_upload(proc.url, tmp_path / "big.jpg"), RESNET.id, "full", -1]
    _join_then_leave(proc.url, fn_index(proc.url, "translate"), data, unit="window")
    text = _assert_stops(proc, log, already)
    assert "stopped after" in text and "of 336 windows" in text, text[-2000:]


def test_a_clip_stops_when_its_client_goes(app, tmp_path):
    proc, log = app
    clip = make_clip(tmp_path / "long.mp4", frames=480, fps=24, audio=True)  # 20 s
    already = len(log.read_text())
    data = [_upload(proc.url, clip), RESNET.id, "fast", None]  # None: your own model (state)
    _join_then_leave(proc.url, fn_index(proc.url, "translate_clip"), data, unit="frame")
    text = _assert_stops(proc, log, already)
    assert "long.mp4: stopped after" in text, text[-2000:]
    done = int(text.split("long.mp4: stopped after ")[1].split()[0])
    assert done < 480, done
