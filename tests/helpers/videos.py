"""Generated test clips, written with PyAV: moving colour bars and an optional sine tone;
clips that hold what a player needs (a display matrix, uneven frame times), and clips whose
header lies about their length."""

from __future__ import annotations

import struct
from fractions import Fraction
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
    rotation: int = 0,
    times_ms: list[int] | None = None,
    live: bool = False,
    turns: int = 0,
    codec: str = "libx264",
    gop: int | None = None,
    keys: tuple[int, ...] = (),
) -> Path:
    """An H.264 clip (container from the suffix) of `frames` frames at `fps`, (w, h) `size`,
    with a 440 Hz mono AAC tone as long as the video when `audio`. `codec`: another encoder
    (e.g. "libsvtav1"); `gop`: a keyframe every `gop` frames; `keys`: keyframes at those
    frames and no others (an irregular spacing, as scene cuts give). `rotation`: a display
    matrix asking players to turn the picture that many degrees counter-clockwise (as a
    phone writes it). `times_ms`: each frame's timestamp (a variable frame rate; `frames`
    is then its length). `live`: Matroska written as a live stream, with no duration.
    `turns`: every picture turned that many quarter turns counter-clockwise (`size` is then
    the turned size): the upright twin of a clip that a display matrix turns."""
    w, h = size
    frames = len(times_ms) if times_ms else frames
    options = {"live": "1"} if live else {}
    with av.open(str(path), "w", options=options) as out:
        fixed = {
            "libx264": {"x264-params": "scenecut=0"},
            "libx265": {"x265-params": "scenecut=0:log-level=error", "forced-idr": "1"},
            "mpeg4": {"sc_threshold": "1000000000"},
        }.get(codec, {}) if gop or keys else {}  # fmt: skip
        video = out.add_stream(codec, rate=fps, options=fixed)
        video.width, video.height, video.pix_fmt = w, h, pix_fmt
        if gop is not None or keys:
            video.codec_context.gop_size = gop or (600 if codec == "mpeg4" else 100_000)
        if rotation:
            video.set_display_rotation(rotation)
        if times_ms:
            video.codec_context.time_base = Fraction(1, 1000)
        tone = out.add_stream("aac", rate=RATE, layout="mono") if audio else None
        for i in range(frames):
            frame = _frame(i, w, h, turns)
            if times_ms:
                frame.pts, frame.time_base = times_ms[i], Fraction(1, 1000)
            if i in keys:
                frame.pict_type = av.video.frame.PictureType.I
            out.mux(video.encode(frame))
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


def _frame(i: int, w: int, h: int, turns: int = 0) -> av.VideoFrame:
    if turns % 2:
        w, h = h, w  # drawn at the unturned size, then turned
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([(xx * 4 + i * 5) % 256, yy * 255 // max(h - 1, 1), (xx + yy + i) % 256], -1)
    rgb = np.ascontiguousarray(np.rot90(rgb, turns))
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


def stored(path: Path) -> dict:
    """How a clip's video is stored: codec, pix_fmt, size, time base, and per packet (in
    display order) its pts and whether it is a keyframe ("K.K." for a keyframe every 2)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        packets = sorted((p.pts, p.is_keyframe) for p in c.demux(v) if p.size)
        return {
            "codec": v.codec_context.codec.canonical_name,
            "pix_fmt": v.codec_context.pix_fmt,
            "size": (v.width, v.height),
            "time_base": v.time_base,
            "pts": [pts for pts, _ in packets],
            "keys": "".join("K" if key else "." for _, key in packets),
        }


def frame_times_ms(path: Path) -> list[float]:
    """Each decoded video frame's presentation time, in milliseconds."""
    with av.open(str(path)) as c:
        return [float(f.time) * 1000 for f in c.decode(video=0)]


def first_frame(path: Path) -> np.ndarray:
    """(H, W, 3) RGB of the first frame, as stored (no display matrix applied)."""
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def declare_seconds(path: Path, seconds: float) -> Path:
    """Rewrite an MP4's declared durations (mvhd, every tkhd and mdhd) to `seconds`, in
    place; the samples, and so what decodes, stay as they are (a header that lies)."""
    data = bytearray(path.read_bytes())
    movie_scale = 1

    def walk(start: int, end: int) -> None:
        nonlocal movie_scale
        i = start
        while i < end:
            size, kind = struct.unpack_from(">I4s", data, i)
            body = i + 8  # version 0 boxes: version + flags, creation, modification, ...
            if kind in (b"mvhd", b"mdhd"):
                scale = struct.unpack_from(">I", data, body + 12)[0]
                movie_scale = scale if kind == b"mvhd" else movie_scale
                struct.pack_into(">I", data, body + 16, round(seconds * scale))
            elif kind == b"tkhd":  # + track id, reserved, then the duration (movie scale)
                struct.pack_into(">I", data, body + 20, round(seconds * movie_scale))
            elif kind in (b"moov", b"trak", b"mdia"):
                walk(body, i + size)
            i += size

    walk(0, len(data))
    path.write_bytes(data)
    return path
