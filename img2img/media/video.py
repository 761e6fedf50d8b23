"""Video translation through PyAV (FFmpeg): decoded, batched and encoded as a stream.

`translate_video` keeps the frame count and frame rate, applies the image size policy to every
frame (processing.prepare / finish: working long side `size`, output at the input's size),
copies the audio packets unchanged when the output container takes their codec (else
re-encodes them: AAC, Opus for WebM), and writes through atomic.atomic_file, so the final
name only ever holds a complete file. Memory is one batch of frames, whatever the length.
Corrupt, unreadable or unsupported input raises VideoError.

Normalisation statistics (`stats`), the flicker question (normstats.py):
    "shared"   default. Statistics pooled over the first batch of frames, then held fixed:
               every frame is normalised alike, so tone no longer jumps from frame to frame.
    "running"  as "shared", then followed by an exponential running mean (per-frame weight
               `momentum`), measured in the same forwards: adapts to a changing scene.
    "frame"    each frame normalised with its own statistics (what a still image gets).
Why "shared" is the default: per-frame statistics amplify small changes (noise, a pan) into
frame-to-frame changes of the whole output; shared statistics remove that part, and the
running mean, measured under its own changing statistics, lets some of it back in
(bench/bench_video.py measures flicker of all three; the figures are in bench/RESULTS.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from ..atomic import atomic_file
from ..errors import ConfigError, VideoError
from . import processing
from .normstats import NormStats, StatsRunner

STATS = ("shared", "running", "frame")
DEFAULT_STATS = "shared"
MOMENTUM = 0.05  # per-frame weight of the newest statistics in the running mean
# Output container by suffix: (FFmpeg format, video encoder, audio encoder when re-encoding).
CONTAINERS = {
    ".mp4": ("mp4", "libx264", "aac"),
    ".m4v": ("mp4", "libx264", "aac"),
    ".mov": ("mov", "libx264", "aac"),
    ".mkv": ("matroska", "libx264", "aac"),
    ".webm": ("webm", "libvpx-vp9", "libopus"),
    ".avi": ("avi", "mpeg4", "aac"),
}
VIDEO_SUFFIXES = tuple(CONTAINERS)
_ENCODER_OPTIONS = {"libx264": {"crf": "18"}, "libvpx-vp9": {"crf": "30", "b": "0"}}


@dataclass(frozen=True)
class VideoInfo:
    """What a clip holds (as declared by its container, or as written)."""

    frames: int  # 0 when the container does not say
    fps: Fraction
    width: int
    height: int
    seconds: float
    audio: bool


def _open(src: Path) -> av.container.InputContainer:
    if not src.is_file():
        raise VideoError(f"video not found: {src}")
    if src.stat().st_size == 0:
        raise VideoError(f"{src.name} is empty (0 bytes)")
    try:
        return av.open(str(src))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise VideoError(f"{src.name} is not a video we can read (corrupt, or unknown): {e}") from e


def _info(container, src: Path) -> VideoInfo:
    if not container.streams.video:
        raise VideoError(f"{src.name} has no video stream")
    v = container.streams.video[0]
    fps = v.average_rate or v.guessed_rate or v.base_rate
    if not fps or v.width <= 0 or v.height <= 0:
        raise VideoError(f"{src.name}: the video stream declares no frame rate or size")
    if container.duration:
        seconds = container.duration / av.time_base
    elif v.duration and v.time_base:
        seconds = float(v.duration * v.time_base)
    else:
        seconds = v.frames / fps if v.frames else 0.0
    return VideoInfo(
        v.frames, Fraction(fps), v.width, v.height, seconds, bool(container.streams.audio)
    )


def probe_video(src: str | os.PathLike) -> VideoInfo:
    """Frame count, rate, size, duration and audio of a clip, without decoding it."""
    src = Path(src)
    with _open(src) as container:
        return _info(container, src)


def _check_caps(info: VideoInfo, src: Path, max_seconds: float | None, max_pixels: int) -> None:
    if max_seconds is not None and info.seconds > max_seconds:
        raise VideoError(f"{src.name} lasts {info.seconds:.1f} s, over the {max_seconds:g} s limit")
    if info.width * info.height > max_pixels:
        raise VideoError(
            f"{src.name} frames are {info.width}x{info.height}, over the "
            f"{max_pixels / 1e6:g} MP limit"
        )


class _Stats:
    """The statistics policy over a clip: which fixed statistics the next batch gets."""

    def __init__(self, runner: StatsRunner, mode: str, momentum: float) -> None:
        self.runner, self.mode, self.momentum = runner, mode, momentum
        self.fixed: NormStats | None = None

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "frame" or not self.runner.has_stats:
            return self.runner.run(x)[0]
        if self.fixed is None:  # the first batch: its pooled statistics
            self.fixed = self.runner.run(x, record=True)[1]
        y, seen = self.runner.run(x, fixed=self.fixed, record=self.mode == "running")
        if seen is not None:
            weight = 1 - (1 - self.momentum) ** x.shape[0]  # `momentum` per frame
            self.fixed = self.fixed.blended(seen, weight)
        return y


class _Writer:
    """The output container: video encoder, audio copied or re-encoded, monotonic pts."""

    def __init__(self, f, suffix: str, info: VideoInfo, audio_in) -> None:
        fmt, vcodec, acodec = CONTAINERS[suffix]
        self.fps = info.fps
        self.out = av.open(f, "w", format=fmt)
        self.video = self.out.add_stream(
            vcodec, rate=info.fps, options=_ENCODER_OPTIONS.get(vcodec)
        )
        self.video.width, self.video.height = info.width, info.height
        even = info.width % 2 == 0 and info.height % 2 == 0
        self.video.pix_fmt = "yuv420p" if even or vcodec != "libx264" else "yuv444p"
        self.audio, self.copy_audio = None, False
        if audio_in is not None:
            self.copy_audio = audio_in.codec_context.name in self.out.supported_codecs
            if self.copy_audio:
                self.audio = self.out.add_stream_from_template(audio_in)
            else:
                # Opus takes 48 kHz (of its few rates) whatever the source; the encoder resamples.
                rate = 48000 if acodec == "libopus" else audio_in.rate or 48000
                self.audio = self.out.add_stream(acodec, rate=rate)
        self._pts = -1

    def write_frame(self, img: Image.Image, seconds: float | None) -> None:
        frame = av.VideoFrame.from_image(img)
        pts = self._pts + 1 if seconds is None else round(seconds * self.fps)
        self._pts = frame.pts = max(pts, self._pts + 1)  # strictly increasing, one per input
        frame.time_base = 1 / self.fps
        self.out.mux(self.video.encode(frame))

    def write_audio(self, packet) -> None:
        if self.audio is None or packet.dts is None:
            return
        if self.copy_audio:
            packet.stream = self.audio
            self.out.mux(packet)
        else:
            for frame in packet.decode():
                self.out.mux(self.audio.encode(frame))

    def close(self) -> None:
        self.out.mux(self.video.encode())
        if self.audio is not None and not self.copy_audio:
            self.out.mux(self.audio.encode())
        self.out.close()

    def abort(self) -> None:
        """Release the container after a failure (the temporary file is deleted anyway)."""
        try:
            self.out.close()
        except (av.error.FFmpegError, OSError, ValueError):
            pass


def _decoded(container, src: Path) -> Iterator[tuple[str, object]]:
    """("frame", (RGB image, time in seconds)) for each video frame and ("audio", packet) for
    each audio packet, in file order. Raises VideoError when demuxing or decoding fails."""
    streams = [container.streams.video[0], *container.streams.audio[:1]]
    count = 0
    try:
        for packet in container.demux(*streams):
            if packet.stream.type == "audio":
                yield "audio", packet
                continue
            for frame in packet.decode():
                count += 1
                yield "frame", (frame.to_image(), frame.time)
    except av.error.FFmpegError as e:
        raise VideoError(f"{src.name}: cannot decode frame {count + 1} (corrupt?): {e}") from e
    if count == 0:
        raise VideoError(f"{src.name} has no decodable video frames")


def translate_video(
    translator,
    model_or_id: str | nn.Module,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    size: int | None = 256,
    stats: str = DEFAULT_STATS,
    batch: int | None = None,
    progress: bool = True,
    max_seconds: float | None = None,
    momentum: float = MOMENTUM,
) -> VideoInfo:
    """Translate clip `src` into `dst` (container chosen by its suffix, VIDEO_SUFFIXES).

    `size`: the working long side of every frame (None: the frame's own size); the output
    has the input's size, frame count and rate. `stats`: "shared", "running" or "frame"
    (module docstring). `batch`: frames per forward (default: the translator's max_batch).
    `max_seconds`: refuse longer clips (the translator's max_pixels caps the frame size).
    Returns what was written. Raises VideoError; `dst` is never left half-written.
    """
    src, dst = Path(src), Path(dst)
    if stats not in STATS:
        raise ConfigError(f"stats must be one of {STATS}, got {stats!r}")
    if dst.suffix.lower() not in CONTAINERS:
        raise VideoError(f"cannot write {dst.name}: the output must end in one of {VIDEO_SUFFIXES}")
    policy = _Stats(StatsRunner(translator, model_or_id), stats, momentum)
    with _open(src) as container:
        info = _info(container, src)
        _check_caps(info, src, max_seconds, translator.max_pixels)
        audio = container.streams.audio[0] if container.streams.audio else None
        batch = batch or translator.max_batch
        job = _Job(container, info, policy, size, batch, src, max_seconds, audio)
        bar = tqdm(total=info.frames or None, unit="frame", disable=not progress, leave=False)
        try:
            with atomic_file(dst, "wb") as f:
                written = _translate(job, _Writer(f, dst.suffix.lower(), info, job.audio), bar)
        except (av.error.FFmpegError, OSError) as e:
            raise VideoError(f"cannot write {dst.name}: {e}") from e
        finally:
            bar.close()
    seconds = float(written / info.fps)
    return VideoInfo(written, info.fps, info.width, info.height, seconds, job.audio is not None)


@dataclass
class _Job:
    container: object  # av InputContainer
    info: VideoInfo
    policy: _Stats
    size: int | None
    batch: int
    src: Path
    max_seconds: float | None

    audio: object | None  # the first audio stream, if any


def _translate(job: _Job, writer: _Writer, bar: tqdm) -> int:
    """Stream frames through the network into `writer`; returns the frames written."""
    pending: list[tuple[Image.Image, float | None]] = []
    written = 0
    fps, name = float(job.info.fps), job.src.name
    limit = None if job.max_seconds is None else job.max_seconds * fps + 1
    try:
        for kind, item in _decoded(job.container, job.src):
            if kind == "audio":
                writer.write_audio(item)
                continue
            img, t = item
            if img.size != (job.info.width, job.info.height):
                raise VideoError(f"{name}: the frame size changes mid-stream ({img.size})")
            pending.append((img, t))
            if limit is not None and written + len(pending) > limit:
                raise VideoError(f"{name} holds more frames than its declared duration")
            if len(pending) == job.batch:
                written += _flush(job, writer, pending, bar)
        if pending:
            written += _flush(job, writer, pending, bar)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return written


def _flush(job: _Job, writer: _Writer, pending: list, bar: tqdm) -> int:
    """Translate and encode the pending frames (one forward); returns how many."""
    mult = job.policy.runner.multiple
    preps = [processing.prepare(img, job.size, mult) for img, _ in pending]
    y = job.policy.run(torch.cat([p.tensor for p in preps]))
    for j, (prep, (_, t)) in enumerate(zip(preps, pending, strict=True)):
        writer.write_frame(processing.finish(y[j : j + 1], prep), t)
    n = len(pending)
    bar.update(n)
    pending.clear()
    return n
