"""Video translation through PyAV (FFmpeg): decoded, batched and encoded as a stream.

`translate_video` keeps the frame count and every frame's timestamp (a variable frame rate
stays variable; AVI, which has no timestamps, gets the declared rate), applies the image size
policy to every frame (processing.prepare / finish: working long side `size`, output at the
input's size), copies the audio packets unchanged when the output container takes their codec
(else re-encodes them: AAC, Opus for WebM), and writes through atomic.atomic_file, so the final
name only ever holds a complete file. Memory is one batch of frames, whatever the length.
Corrupt, unreadable or unsupported input raises VideoError.

The output keeps the input's codec, keyframe spacing and pixel format where this FFmpeg can
(encoding.py: an AV1 dataset clip with a keyframe every 2 frames stays so). What a player needs:
a display matrix (a phone's portrait clip, stored sideways) is applied to the frames before
they are translated, as photos get their EXIF orientation, and the output is upright with no
matrix; 4:2:2 / 4:4:4 come out 4:2:0, and where the encoder's 4:2:0 needs even sides (H.264,
HEVC, MPEG-4) an odd side gets its last row or column repeated.

Limits are enforced while decoding, not only from the header: `max_seconds` counts decoded
frames (against the declared rate) and reads their timestamps, so a header that declares no
duration (streamed Matroska) or too short a one does not let a long clip through
(VideoLimitError). `should_stop` is asked before every frame: a caller whose client has gone
stops the work (Cancelled), and nothing is written.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from ..atomic import atomic_file
from ..errors import Cancelled, ConfigError, VideoError, VideoLimitError
from . import processing
from .encoding import EVEN_SIDES, Encoding, choose, measure
from .normstats import NormStats, StatsRunner

STATS = ("shared", "running", "frame")
DEFAULT_STATS = "shared"
MOMENTUM = 0.05  # per-frame weight of the newest statistics in the running mean
# Output container by suffix: (FFmpeg format, audio encoder when re-encoding); the video
# encoder is the input's codec where the container holds it (encoding.py).
CONTAINERS = {
    ".mp4": ("mp4", "aac"),
    ".m4v": ("mp4", "aac"),
    ".mov": ("mov", "aac"),
    ".mkv": ("matroska", "aac"),
    ".webm": ("webm", "libopus"),
    ".avi": ("avi", "aac"),
}
VIDEO_SUFFIXES = tuple(CONTAINERS)
_TURNS = {
    1: Image.Transpose.ROTATE_90,
    2: Image.Transpose.ROTATE_180,
    3: Image.Transpose.ROTATE_270,
}


@dataclass(frozen=True)
class VideoInfo:
    """What a clip holds (as declared by its container, or as written)."""

    frames: int  # 0 when the container does not say
    fps: Fraction
    width: int  # upright: after the display matrix's rotation
    height: int
    seconds: float  # 0 when the container does not say
    audio: bool
    rotation: int = 0  # degrees counter-clockwise the display matrix turns the pictures
    codec: str = ""  # FFmpeg's canonical name ("av1", "h264"); as written, or as stored
    pix_fmt: str = ""
    gop: int | None = None  # frames from keyframe to keyframe asked of the encoder; None: its
    # own placement, or the input's irregular keyframes followed frame by frame (encoding.py)
    notes: tuple[str, ...] = ()  # what of the input's encoding could not be kept, and why


def _open(src: Path) -> av.container.InputContainer:
    if not src.is_file():
        raise VideoError(f"video not found: {src}")
    if src.stat().st_size == 0:
        raise VideoError(f"{src.name} is empty (0 bytes)")
    try:
        return av.open(str(src))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise VideoError(f"{src.name} is not a video we can read (corrupt, or unknown): {e}") from e


def _rotation(src: Path) -> int:
    """Degrees counter-clockwise (0, 90, 180, 270) that the first frame's display matrix
    turns the picture; 0 when it has none or does not decode (the decode loop says why)."""
    with _open(src) as container:
        try:
            for frame in container.decode(video=0):
                return round(frame.rotation / 90) % 4 * 90
        except av.error.FFmpegError:
            pass
    return 0


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
    rotation = _rotation(src)
    w, h = (v.height, v.width) if rotation % 180 else (v.width, v.height)
    audio = bool(container.streams.audio)
    codec, pix_fmt = v.codec_context.codec.canonical_name, v.codec_context.pix_fmt or ""
    return VideoInfo(v.frames, Fraction(fps), w, h, seconds, audio, rotation, codec, pix_fmt)


def probe_video(src: str | os.PathLike) -> VideoInfo:
    """Frame count, rate, upright size, duration, audio and rotation of a clip, from its
    header and its first frame (the display matrix)."""
    src = Path(src)
    with _open(src) as container:
        return _info(container, src)


def _check_caps(info: VideoInfo, src: Path, max_seconds: float | None, max_pixels: int) -> None:
    if max_seconds is not None and info.seconds > max_seconds:
        raise VideoLimitError(
            f"{src.name} lasts {info.seconds:.1f} s, over the {max_seconds:g} s limit"
        )
    if info.width * info.height > max_pixels:
        raise VideoLimitError(
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
    """The output container: video encoder, audio copied or re-encoded, monotonic pts.

    Video timestamps are the input's (`time_base`: the input stream's), except in AVI, whose
    mpeg4 stream is written at the declared rate. Sides are rounded up to even where the
    encoder's 4:2:0 needs it (the last row / column repeated)."""

    def __init__(
        self, f, suffix: str, enc: Encoding, info: VideoInfo, time_base: Fraction, audio_in
    ) -> None:
        fmt, acodec = CONTAINERS[suffix]
        self.out = av.open(f, "w", format=fmt)
        self.video = self.out.add_stream(enc.encoder, rate=info.fps, options=enc.options)
        self.in_base = time_base
        self.time_base = 1 / info.fps if fmt == "avi" else time_base
        self.video.codec_context.time_base = self.time_base
        if enc.gop is not None:
            self.video.codec_context.gop_size = enc.gop
        self.follow = enc.follow  # a keyframe where the input had one (encoding.py)
        even = enc.encoder in EVEN_SIDES
        self.width = info.width + (even and info.width % 2)
        self.height = info.height + (even and info.height % 2)
        self.video.width, self.video.height = self.width, self.height
        self.video.pix_fmt = enc.pix_fmt
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
        self._step = max(1, round(1 / (info.fps * self.time_base)))  # one frame, in time_base

    def write_frame(self, img: Image.Image, pts: int | None, key: bool = False) -> None:
        """`img` shown from `pts` (in the input's time base; None: one frame after the last);
        `key`: the input's frame was a keyframe (one is asked for where the encoding follows
        the input's keyframes)."""
        if img.size != (self.width, self.height):  # an odd side: repeat the last row / column
            pad = ((0, self.height - img.height), (0, self.width - img.width), (0, 0))
            img = Image.fromarray(np.pad(np.asarray(img), pad, mode="edge"))
        frame = av.VideoFrame.from_image(img)
        if pts is None:
            pts = self._pts + self._step
        elif self.time_base != self.in_base:
            pts = round(pts * self.in_base / self.time_base)
        self._pts = frame.pts = max(pts, self._pts + 1)  # strictly increasing, one per input
        frame.time_base = self.time_base
        if key and self.follow:
            frame.pict_type = av.video.frame.PictureType.I
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
    """("frame", (upright RGB image, pts, time in seconds, keyframe?)) for each video frame and
    ("audio", packet) for each audio packet, in file order. Raises VideoError when demuxing
    or decoding fails."""
    streams = [container.streams.video[0], *container.streams.audio[:1]]
    count = 0
    try:
        for packet in container.demux(*streams):
            if packet.stream.type == "audio":
                yield "audio", packet
                continue
            for frame in packet.decode():
                count += 1
                img, turns = frame.to_image(), round(frame.rotation / 90) % 4
                yield (
                    "frame",
                    (
                        img.transpose(_TURNS[turns]) if turns else img,
                        frame.pts,
                        frame.time,
                        frame.key_frame,
                    ),  # fmt: skip
                )
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
    should_stop: Callable[[], bool] | None = None,
    codec: str | None = None,
    gop: int | None = None,
) -> VideoInfo:
    """Translate clip `src` into `dst` (container chosen by its suffix, VIDEO_SUFFIXES).

    `size`: the working long side of every frame (None: the frame's own size); the output
    has the input's upright size (sides rounded up to even for H.264), frame count and
    timestamps. `stats`: "shared", "running" or "frame" (module docstring). `batch`: frames
    per forward (default: the translator's max_batch). `max_seconds`: refuse longer clips,
    from the header and again while decoding (the translator's max_pixels caps the frame
    size). `should_stop`: asked before every frame; True stops the work (Cancelled).
    The input's codec, keyframe spacing and pixel format are kept where this FFmpeg can write
    them into `dst`'s container (encoding.py; the returned `notes` say what was not);
    `codec` ("av1", "h264", "hevc", "vp9", "mpeg4") and `gop` (frames from keyframe to
    keyframe) override the input's. Returns what was written. Raises VideoError
    (VideoLimitError over a limit); `dst` is never left half-written.
    """
    src, dst = Path(src), Path(dst)
    if stats not in STATS:
        raise ConfigError(f"stats must be one of {STATS}, got {stats!r}")
    if dst.suffix.lower() not in CONTAINERS:
        raise VideoError(f"cannot write {dst.name}: the output must end in one of {VIDEO_SUFFIXES}")
    if gop is not None and gop < 1:
        raise ConfigError(f"gop must be 1 or more frames, got {gop}")
    policy = _Stats(StatsRunner(translator, model_or_id), stats, momentum)
    with _open(src) as container:
        info = _info(container, src)
        _check_caps(info, src, max_seconds, translator.max_pixels)
        enc = choose(measure(src), CONTAINERS[dst.suffix.lower()][0], codec, gop)
        audio = container.streams.audio[0] if container.streams.audio else None
        batch = batch or translator.max_batch
        job = _Job(container, info, policy, size, batch, src, max_seconds, should_stop, audio)
        time_base = container.streams.video[0].time_base or 1 / info.fps
        bar = tqdm(total=info.frames or None, unit="frame", disable=not progress, leave=False)
        try:
            with atomic_file(dst, "wb") as f:
                writer = _Writer(f, dst.suffix.lower(), enc, info, time_base, job.audio)
                written = _translate(job, writer, bar)
        except (av.error.FFmpegError, OSError) as e:
            raise VideoError(f"cannot write {dst.name}: {e}") from e
        finally:
            bar.close()
    w, h, audio, e = writer.width, writer.height, job.audio is not None, enc
    seconds = float(written / info.fps)
    gop = None if e.follow else e.gop
    return VideoInfo(written, info.fps, w, h, seconds, audio, 0, e.codec, e.pix_fmt, gop, e.notes)


@dataclass
class _Job:
    container: object  # av InputContainer
    info: VideoInfo
    policy: _Stats
    size: int | None
    batch: int
    src: Path
    max_seconds: float | None
    should_stop: Callable[[], bool] | None
    audio: object | None  # the first audio stream, if any
    start: float | None = None  # the first frame's time, in seconds


def _check_frame(job: _Job, count: int, t: float | None) -> None:
    """Before frame `count` (from 1) at time `t` is taken: asked to stop, or over the length
    cap by frame count (against the declared rate) or by timestamp?"""
    if job.should_stop is not None and job.should_stop():
        raise Cancelled(f"{job.src.name}: stopped after {count - 1} of its frames, as asked")
    if job.max_seconds is None:
        return
    job.start = t if job.start is None else job.start
    late = t is not None and job.start is not None and t - job.start >= job.max_seconds
    if late or count > job.max_seconds * float(job.info.fps) + 1:
        at = f" at {t - job.start:.1f} s" if late else ""
        raise VideoLimitError(
            f"{job.src.name} runs on past {job.max_seconds:g} s (found while decoding: frame "
            f"{count}{at}; its header says {job.info.seconds:.1f} s), over the "
            f"{job.max_seconds:g} s limit"
        )


def _translate(job: _Job, writer: _Writer, bar: tqdm) -> int:
    """Stream frames through the network into `writer`; returns the frames written."""
    pending: list[tuple[Image.Image, int | None, bool]] = []
    written = count = 0
    size = (job.info.width, job.info.height)
    try:
        for kind, item in _decoded(job.container, job.src):
            if kind == "audio":
                writer.write_audio(item)
                continue
            img, pts, t, key = item
            count += 1
            _check_frame(job, count, t)
            if img.size != size:
                raise VideoError(f"{job.src.name}: the frame size changes mid-stream ({img.size})")
            pending.append((img, pts, key))
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
    preps = [processing.prepare(img, job.size, mult) for img, _, _ in pending]
    y = job.policy.run(torch.cat([p.tensor for p in preps]))
    for j, (prep, (_, pts, key)) in enumerate(zip(preps, pending, strict=True)):
        writer.write_frame(processing.finish(y[j : j + 1], prep), pts, key)
    n = len(pending)
    bar.update(n)
    pending.clear()
    return n
