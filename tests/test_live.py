"""The Live tab's logic without a browser: running statistics across camera frames (a steady
picture, reset with the model), the meter (frame rate, model time, dropped frames, bounded)
and the count of frames each stream sent (the middleware that tells dropped frames)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch
from helpers.catalog import RESNET
from helpers.live import camera_frames
from helpers.models import tiny_generators
from PIL import Image

from img2img import ConfigError, Translator
from img2img.media import processing
from img2img.media.live import LiveMeter, translate_frame
from img2img.media.normstats import StatsRunner
from webui.live import LiveSession, live_frame
from webui.serving import CountFrames, StreamFrames

pytestmark = pytest.mark.usefixtures("one_thread")
NET = tiny_generators()["resnet"]


@pytest.fixture(scope="module")
def translator():
    return Translator(device="cpu", plan="eager")


def _levels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)


def test_the_first_frame_records_its_own_statistics_at_the_working_size(translator):
    frame = camera_frames(1, (320, 240))[0]
    done = translate_frame(translator, NET, frame, None, size=256)
    assert done.image.size == (256, 192)  # the working size, not resized back to 320x240
    alone = translator.translate(NET, [frame.resize((256, 192), Image.BICUBIC)], size=None)[0]
    assert np.abs(_levels(done.image) - _levels(alone)).max() <= 1  # its own statistics
    assert done.stats is not None and done.seconds > 0


def test_later_frames_use_the_running_statistics_and_update_them(translator):
    """Frame 2 is normalised with frame 1's statistics (not its own), and the statistics it
    hands on are the exponential mean: (1 - m) * before + m * what frame 2's layers saw."""
    one, two = camera_frames(2, (256, 192))
    first = translate_frame(translator, NET, one, None, size=256)
    second = translate_frame(translator, NET, two, first.stats, size=256, momentum=0.25)
    runner = StatsRunner(translator, NET)
    x = processing.prepare(two, 256, runner.multiple).tensor
    y, seen = runner.run(x, fixed=first.stats, record=True)
    expected = first.stats.blended(seen, 0.25)
    assert np.abs(_levels(second.image) - _levels(processing.to_image(y))).max() <= 1
    for name, s in expected.items():
        torch.testing.assert_close(second.stats[name].mean, s.mean)
        torch.testing.assert_close(second.stats[name].var, s.var)


def test_running_statistics_keep_the_rest_of_the_picture_steady(translator):
    """Something enters one corner of the camera's view: with each frame's own statistics
    the tone of the whole picture shifts (the statistics are the whole frame's), with the
    running statistics the far side of a ResNet's output stays as it was (it lies outside
    the corner's receptive field; the statistics move by `momentum` of the change)."""
    before = np.asarray(camera_frames(1, (256, 192))[0]).copy()
    after = before.copy()
    after[8:72, 8:72] = (255, 20, 20)  # a red square in the top-left corner
    still, entered = Image.fromarray(before), Image.fromarray(after)
    own = [_levels(translate_frame(translator, NET, img).image) for img in (still, entered)]
    stats = None
    for _ in range(5):  # the stream has been on the still scene for a few frames
        done = translate_frame(translator, NET, still, stats)
        stats = done.stats
    running = [_levels(done.image), _levels(translate_frame(translator, NET, entered, stats).image)]
    far = (slice(128, None), slice(160, None))  # the bottom-right corner
    shift_own = np.abs(own[1] - own[0])[far].mean()
    shift_running = np.abs(running[1] - running[0])[far].mean()
    assert shift_own > 1 and shift_running < 0.25 * shift_own, (shift_running, shift_own)


def test_statistics_of_another_model_are_refused(translator):
    """The caller starts afresh when the model changes: a record of one model does not fit
    another (ConfigError, never a silent mix)."""
    frame = camera_frames(1, (64, 48))[0]
    stats = translate_frame(translator, NET, frame).stats
    with pytest.raises(ConfigError, match="do not fit"):
        translate_frame(translator, tiny_generators()["unet"], frame, stats)


def test_the_meter_shows_the_recent_rate_model_time_and_dropped_frames():
    meter = LiveMeter(window_s=2.0)
    assert meter.fps == 0 and meter.model_ms == 0
    for i in range(5):  # frames 0.1 s apart, 40 ms of model each
        meter.sent(3 * (i + 1))  # the camera sent three frames per frame computed
        meter.translated(0.040, now=10 + 0.1 * i)
    assert meter.fps == pytest.approx(10)
    assert meter.model_ms == pytest.approx(40)
    # Sent 15 (the 5th computed included): 5 translated, 10 dropped.
    assert (meter.frames, meter.sent_count, meter.dropped) == (5, 15, 10)
    meter.sent(16)
    meter.refused()  # the 16th was unreadable: refused, not dropped
    assert (meter.bad, meter.dropped) == (1, 10)
    meter.translated(0.2, now=20)  # after a pause: the window holds the last frame alone
    assert meter.fps == 0 and meter.model_ms == pytest.approx(200)


def test_the_meter_stays_bounded_however_long_the_stream():
    meter = LiveMeter(window_s=1e9)
    for i in range(5000):
        meter.translated(0.001, now=i * 0.001)
    assert meter.frames == 5000 and len(meter._recent) <= 512


def test_stream_posts_are_counted_per_event_and_bounded():
    frames = StreamFrames(keep=3)
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["path"])

    middleware = CountFrames(app, frames)

    def post(path, method="POST"):
        asyncio.run(middleware({"type": "http", "method": method, "path": path}, None, None))

    event = "0123456789abcdef0123456789abcdef"
    for _ in range(4):
        post(f"/gradio_api/stream/{event}")
    post(f"/gradio_api/stream/{event}/close")  # the end of the stream is not a frame
    post(f"/gradio_api/stream/{event}", method="GET")
    post("/gradio_api/queue/join")
    assert frames.sent(event) == 4 and len(seen) == 7  # every request passed on
    for other in ("a" * 32, "b" * 32, "c" * 32):
        post(f"/gradio_api/stream/{other}")
    assert frames.sent(event) == 0  # forgotten: only the 3 most recent events are kept
    assert frames.sent(None) == 0


def test_a_frame_that_is_not_an_image_is_said_and_counted_not_raised():
    """The tab's handler on a bad frame (what raw_upload passes on from a data URL): a
    message in the status, the frame counted as refused, the session kept for the next."""
    shown, text, session = live_frame(b"not a jpeg", RESNET.id, None, None)
    assert shown is None and isinstance(session, LiveSession)
    assert "not an image we can read" in text and "1 refused" in text
    shown, text, again = live_frame(b"", RESNET.id, None, session)
    assert again is session and session.meter.bad == 2 and "2 refused" in text
