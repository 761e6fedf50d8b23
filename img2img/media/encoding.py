"""How a translated clip is encoded: the input's codec, keyframe spacing and pixel format, kept.

A dataset stores its video in a chosen way (LeRobot: AV1, a keyframe every 2 frames, so that
any frame decodes after at most one other), and a translated clip that comes back as H.264 with
one keyframe is no longer what the dataset's readers expect. So `choose` measures the input
(`measure`: its codec, the distances between its first keyframes, its pixel format) and keeps
each where this FFmpeg can: the codec when an encoder for it exists here (ENCODERS) and the
output container holds it (HOLDS), else the container's default encoder, with a note that says
why; the keyframes where the input's are: a regular spacing as the encoder's GOP (scene-cut
keyframes off), an irregular one (scene cuts, an encoder's own placement) by following the
input frame by frame (`Encoding.follow`: video.py asks for a keyframe at each frame that was
one in the input, the encoder's GOP set past any gap so that it adds none; MPEG-4 Part 2 caps
its GOP at 600 frames); the pixel format when the encoder takes it and it is 4:2:0 (8 or
10 bit). 4:2:2 and 4:4:4 come out yuv420p: what players and hardware decoders take (High 4:4:4
H.264 plays in almost no browser). `codec` and `gop` override what the input says.

Timestamps are not chosen here: video.py writes every frame at its input pts, in the input's
time base (AVI excepted: it has no timestamps).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import av

from ..errors import VideoError

# SVT-AV1 prints ~20 lines of configuration per encoder to stderr unless told otherwise
# (its levels: 0 fatal, 1 error, 2 warning, 3 info); a caller's own setting wins.
os.environ.setdefault("SVT_LOG", "1")

# Codec (FFmpeg's canonical name) -> the encoder that writes it, in order of preference.
ENCODERS = {
    "av1": ("libsvtav1", "libaom-av1"),
    "h264": ("libx264",),
    "hevc": ("libx265",),
    "vp9": ("libvpx-vp9",),
    "mpeg4": ("mpeg4",),
}
CODECS = tuple(ENCODERS)
# Which codecs each container is written with here. PyAV's `supported_codecs` says "mov" takes
# AV1, but its muxer refuses it; AVI has no timestamps and is written as MPEG-4 Part 2 only.
HOLDS = {
    "mp4": {"av1", "h264", "hevc", "vp9", "mpeg4"},
    "mov": {"h264", "hevc", "mpeg4"},
    "matroska": {"av1", "h264", "hevc", "vp9", "mpeg4"},
    "webm": {"av1", "vp9"},
    "avi": {"mpeg4"},
}
DEFAULT_CODEC = {"mp4": "h264", "mov": "h264", "matroska": "h264", "webm": "vp9", "avi": "mpeg4"}
# Quality settings (constant quality; LeRobot writes AV1 at crf 30), and quiet x265 logs.
_OPTIONS = {
    "libx264": {"crf": "18"},
    "libx265": {"crf": "20", "x265-params": "log-level=error"},
    "libvpx-vp9": {"crf": "30", "b": "0"},
    "libsvtav1": {"crf": "30"},
}
# With a fixed GOP, keyframes only where the GOP puts them (no extra ones at scene cuts).
_NO_SCENECUT = {
    "libx264": {"x264-params": "scenecut=0"},
    "libx265": {"x265-params": "scenecut=0"},
    "mpeg4": {"sc_threshold": "1000000000"},
}
# Following the input's keyframes: a keyframe asked for is an IDR frame (x265 writes a
# non-IDR I frame otherwise), and the GOP is long enough that the encoder adds none.
_FORCED = {"libx265": {"forced-idr": "1"}}
FOLLOW_GOP = 100_000  # frames; mpeg4's encoder lowers it to 600
_KEPT_PIX_FMTS = ("yuv420p", "yuv420p10le")  # 4:2:0, 8 / 10 bit: what players decode
EVEN_SIDES = ("libx264", "libx265", "mpeg4")  # encoders whose 4:2:0 needs even sides
GOP_PACKETS = 300  # video packets read to find the input's keyframe spacing


@dataclass(frozen=True)
class Source:
    """How the input's video stream is stored."""

    codec: str  # FFmpeg's canonical name: "av1", "h264", ...
    pix_fmt: str | None
    gop: int | None  # frames from one keyframe to the next; None: one keyframe in what was read
    regular: bool = True  # every keyframe read `gop` frames after the one before it


@dataclass(frozen=True)
class Encoding:
    """What the output's video stream is written with."""

    codec: str  # canonical name, as a dataset's metadata says it ("av1")
    encoder: str  # FFmpeg encoder ("libsvtav1")
    pix_fmt: str
    gop: int | None  # None: the encoder's own keyframe placement
    options: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what could not be kept, and why
    follow: bool = False  # a keyframe at each frame that was one in the input (gop: FOLLOW_GOP)


def measure(src: Path) -> Source:
    """The codec, pixel format and keyframe spacing of `src`'s first video stream, from its
    header and its first GOP_PACKETS packets (no decoding), in display order. A spacing that
    changes after them is not seen here (video.py follows only what this found irregular)."""
    try:
        with av.open(str(src)) as container:
            v = container.streams.video[0]
            codec = v.codec_context.codec.canonical_name
            pix_fmt = v.codec_context.pix_fmt
            packets = []  # (pts, keyframe?) in decode order
            for packet in container.demux(v):
                if len(packets) >= GOP_PACKETS:
                    break
                if packet.size and packet.pts is not None:
                    packets.append((packet.pts, packet.is_keyframe))
    except (av.error.FFmpegError, IndexError) as e:
        raise VideoError(f"{src.name}: cannot read how its video is stored: {e}") from e
    shown = [key for _, key in sorted(packets)]  # display order (B-frames come later there)
    keys = [i for i, key in enumerate(shown) if key]
    gaps = [b - a for a, b in zip(keys, keys[1:], strict=False)]
    gop = _spacing(gaps)
    # The frames read after the last keyframe: more than a GOP without one is irregular too.
    tail = len(shown) - keys[-1] if keys else 0
    regular = len(set(gaps)) <= 1 and (gop is None or tail <= gop)
    return Source(codec, pix_fmt, gop, regular)


def _spacing(gaps: list[int]) -> int | None:
    """The most common distance between consecutive keyframes (ties: the shortest)."""
    if not gaps:
        return None
    return min(set(gaps), key=lambda g: (-gaps.count(g), g))


def encoder_for(codec: str) -> str | None:
    """The first encoder for `codec` that this FFmpeg has, or None."""
    return next((e for e in ENCODERS.get(codec, ()) if e in av.codecs_available), None)


def choose(source: Source, fmt: str, codec: str | None = None, gop: int | None = None) -> Encoding:
    """The encoding of the output (FFmpeg format `fmt`): `source`'s, kept where it can be.

    `codec` / `gop` override the input's; a `codec` that this FFmpeg cannot write or `fmt`
    cannot hold raises VideoError (asked for explicitly, it is never replaced silently)."""
    notes: list[str] = []
    if codec is not None:
        if codec not in ENCODERS:
            raise VideoError(f"unknown codec {codec!r}: one of {', '.join(CODECS)}")
        if encoder_for(codec) is None or codec not in HOLDS[fmt]:
            raise VideoError(f"cannot write {codec} into {fmt}: {_why_not(codec, fmt)}")
    else:
        codec = source.codec
        if encoder_for(codec) is None or codec not in HOLDS[fmt]:
            default = DEFAULT_CODEC[fmt]
            notes.append(f"written as {default}, not {codec}: {_why_not(codec, fmt)}")
            codec = default
    encoder = encoder_for(codec)
    follow = gop is None and source.gop is not None and not source.regular
    gop = FOLLOW_GOP if follow else gop if gop is not None else source.gop
    options = dict(_OPTIONS.get(encoder, {}))
    extra = {**_NO_SCENECUT.get(encoder, {}), **(_FORCED.get(encoder, {}) if follow else {})}
    if gop is not None:
        for key, value in extra.items():
            options[key] = f"{options[key]}:{value}" if key in options else value
    pix_fmt = _pix_fmt(source.pix_fmt, encoder)
    if source.pix_fmt and pix_fmt != source.pix_fmt:
        notes.append(f"pixel format {pix_fmt}, not {source.pix_fmt} (what players decode)")
    return Encoding(codec, encoder, pix_fmt, gop, options, tuple(notes), follow)


def _why_not(codec: str, fmt: str) -> str:
    if encoder_for(codec) is None:
        return f"no {codec} encoder in this FFmpeg ({', '.join(ENCODERS.get(codec, ()))})"
    return f"{fmt} files are written with {', '.join(sorted(HOLDS[fmt]))} here"


def _pix_fmt(pix_fmt: str | None, encoder: str) -> str:
    """The input's pixel format where `encoder` takes it and it is 4:2:0, else yuv420p
    (yuv420p10le for a deeper input where the encoder takes it)."""
    formats = {f.name for f in av.codec.Codec(encoder, "w").video_formats or ()}
    if pix_fmt in _KEPT_PIX_FMTS and pix_fmt in formats:
        return pix_fmt
    deep = pix_fmt is not None and any(d in pix_fmt for d in ("10", "12", "16"))
    return "yuv420p10le" if deep and "yuv420p10le" in formats else "yuv420p"
