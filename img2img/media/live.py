"""Live camera frames: one frame at a time, with running normalisation statistics.

A webcam stream is a video whose frames come one by one and whose end nobody knows, so the
video path's policies (normstats.py; video.py's "shared" and "running") are applied per
frame: the first frame is normalised with its own statistics, which are recorded; every
later frame is normalised with the running statistics and updates them in the same forward,
as an exponential moving mean with weight `momentum` per frame. Per-frame statistics make
the whole picture pump with the camera's noise and auto-exposure (the flicker video.py
measures); fixed ones would never follow a new scene; the running mean does both, with a
time constant of about 1 / momentum frames (MOMENTUM = 0.1: ten frames, under a second at
15 frames per second). Statistics fit one model: the caller starts afresh (None) when the
model changes.

`translate_frame` is a pure function of (model, frame, statistics): the caller keeps the
statistics between frames, so the forward can run in another process (a ZeroGPU worker).
`LiveMeter` is what a stream shows: frames translated per second over the last seconds,
model milliseconds per frame, frames dropped (sent by the camera while an earlier one was
computing, and never computed: the newest frame wins).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from PIL import Image
from torch import nn

from . import processing
from .normstats import NormStats, StatsRunner

MOMENTUM = 0.1  # per-frame weight of the newest frame's statistics in the running mean
WINDOW_S = 3.0  # seconds of frames the frame rate and the model time are averaged over


@dataclass
class LiveFrame:
    """One translated frame, the statistics the next frame gets, and the model's seconds."""

    image: Image.Image  # at the working size (long side `size`), not resized back
    stats: NormStats | None  # None: the model has no per-input normalisation
    seconds: float  # pre-processing, forward and post-processing of this frame


def translate_frame(
    translator,
    model_or_id: str | nn.Module,
    img: Image.Image,
    stats: NormStats | None = None,
    size: int | None = 256,
    momentum: float = MOMENTUM,
) -> LiveFrame:
    """Translate one camera frame at working long side `size` (None: its own size).

    `stats`: the running statistics of the frames before, from the previous call's
    LiveFrame (None: this is the first frame, normalised with its own statistics). The
    output keeps the working size: a live view is shown scaled by the browser, and
    resizing it back to the camera's size would cost a resize per frame for no detail.
    """
    start = time.perf_counter()
    runner = StatsRunner(translator, model_or_id)  # the translator's cached model
    prep = processing.prepare(img, size, runner.multiple)
    if not runner.has_stats:
        y, new = runner.run(prep.tensor)[0], None
    elif stats is None:
        y, new = runner.run(prep.tensor, record=True)
    else:
        y, seen = runner.run(prep.tensor, fixed=stats, record=True)
        new = stats.blended(seen, momentum)
    w, h = prep.content_size
    out = processing.to_image(y[..., :h, :w])
    return LiveFrame(out, new, time.perf_counter() - start)


class LiveMeter:
    """Counts of one stream: frames translated, refused and dropped; the recent frame rate."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self.frames = 0  # translated
        self.bad = 0  # refused (undecodable, too large, a failed forward)
        self.dropped = 0  # sent while another frame was computing, never computed
        self.sent_count = 0  # frames the camera sent (as the caller counted them)
        # (time done, model seconds) of the frames of the last window_s; bounded, whatever
        # the rate (maxlen), so memory never grows with a stream's length.
        self._recent: deque[tuple[float, float]] = deque(maxlen=512)

    def translated(self, model_s: float, now: float | None = None) -> None:
        """One frame done, its model time `model_s` seconds (at `now`, monotonic seconds)."""
        now = time.monotonic() if now is None else now
        self.frames += 1
        self._recent.append((now, model_s))
        while self._recent and now - self._recent[0][0] > self.window_s:
            self._recent.popleft()

    def refused(self) -> None:
        self.bad += 1

    def sent(self, count: int) -> None:
        """The camera has sent `count` frames so far, this one included: those neither
        translated nor refused (this one counts as handled) were dropped."""
        self.sent_count = max(self.sent_count, count, self.frames + self.bad + 1)
        self.dropped = max(self.dropped, self.sent_count - self.frames - self.bad - 1)

    @property
    def fps(self) -> float:
        """Frames translated per second over the window (0 until two frames are done)."""
        if len(self._recent) < 2:
            return 0.0
        span = self._recent[-1][0] - self._recent[0][0]
        return (len(self._recent) - 1) / span if span > 0 else 0.0

    @property
    def model_ms(self) -> float:
        """Mean model milliseconds per frame over the window (0 before the first frame)."""
        if not self._recent:
            return 0.0
        return 1000 * sum(s for _, s in self._recent) / len(self._recent)
