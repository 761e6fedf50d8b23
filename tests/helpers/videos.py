"""Generated test clips, written with PyAV: moving colour bars and an optional sine tone."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

RATE = 44100  # audio sample rate


def make_clip(
    path: Path,
    frames: int = 48,
    fps: int = 24,
    size: tuple[int, int] = (64, 48),
    audio: bool = True,
    pix_fmt: str = "yuv420p",
) -> Path:
    """An H.264 clip (container from the suffix) of `frames` frames at `fps`, (w, h) `size`,
    with a 440 Hz mono AAC tone as long as the video when `audio`."""
    w, h = size
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, pix_fmt
        tone = out.add_stream("aac", rate=RATE, layout="mono") if audio else None
        for i in range(frames):
            out.mux(video.encode(_frame(i, w, h)))
        out.mux(video.encode())
        if tone is not None:
            t = np.arange(RATE * frames // fps) / RATE
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for k in range(0, len(samples), 1024):
                chunk = av.AudioFrame.from_ndarray(samples[None, k : k + 1024], "flt", "mono")
                chunk.sample_rate, chunk.pts = RATE, k
                out.mux(tone.encode(chunk))
            out.mux(tone.encode())
    return path


def _frame(i: int, w: int, h: int) -> av.VideoFrame:
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([(xx * 4 + i * 5) % 256, yy * 255 // max(h - 1, 1), (xx + yy + i) % 256], -1)
    frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
    frame.pts = i
    return frame


def decode(path: Path) -> dict:
    """What a clip holds, by decoding it: frames, rate, size, audio codec and packets."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"fps": v.average_rate, "size": (v.width, v.height)}
        info["audio"] = c.streams.audio[0].codec_context.name if c.streams.audio else None
        info["frames"] = sum(1 for _ in c.decode(video=0))
    with av.open(str(path)) as c:
        info["audio_packets"] = (
            [bytes(p) for p in c.demux(audio=0) if p.size] if info["audio"] else []
        )
    return info
