"""Video translation: frame count, rate, size and audio kept; bad input refused; no partials."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers.models import tiny_generators
from helpers.videos import decode, make_clip

from img2img import ConfigError, Translator, VideoError
from img2img.media.video import STATS, probe_video, translate_video

NET = tiny_generators()["resnet"]


@pytest.fixture(scope="module")
def tr() -> Translator:
    return Translator(device="cpu", plan="eager")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """2 s: 48 frames at 24 fps, 64x48, with a sine tone."""
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


def _leftovers(folder, keep=()) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm"])
def test_round_trip_keeps_frames_rate_size_and_audio(tr, clip, tmp_path, suffix):
    """Frames go through the image size policy (working side 128, back to 64x48); AAC audio
    is copied packet for packet where the container takes it, re-encoded (Opus) for WebM."""
    dst = tmp_path / f"out{suffix}"
    info = translate_video(tr, NET, clip, dst, size=128, progress=False)
    src, out = decode(clip), decode(dst)
    assert out["frames"] == src["frames"] == info.frames == 48
    assert out["fps"] == src["fps"] == info.fps == 24
    assert out["size"] == src["size"] == (info.width, info.height) == (64, 48)
    assert info.audio and out["audio"] == ("opus" if suffix == ".webm" else "aac")
    if suffix != ".webm":
        assert out["audio_packets"] == src["audio_packets"]  # remuxed, not re-encoded
    assert _leftovers(tmp_path) == [dst.name]


def test_no_audio_in_no_audio_out(tr, tmp_path):
    src = make_clip(tmp_path / "silent.mp4", frames=10, audio=False)
    dst = tmp_path / "out.mp4"
    info = translate_video(tr, NET, src, dst, size=None, progress=False)
    assert not info.audio and decode(dst)["audio"] is None
    assert decode(dst)["frames"] == 10


@pytest.mark.parametrize("stats", STATS)
def test_every_statistics_mode_runs_on_every_frame(tr, tmp_path, stats):
    src = make_clip(tmp_path / "c.mkv", frames=11, audio=False)
    dst = tmp_path / "out.mkv"
    translate_video(tr, NET, src, dst, size=None, stats=stats, batch=4, progress=False)
    assert decode(dst)["frames"] == 11


def test_odd_frame_sizes_are_kept(tr, tmp_path):
    src = make_clip(tmp_path / "odd.mp4", frames=6, size=(65, 49), audio=False, pix_fmt="yuv444p")
    dst = tmp_path / "out.mp4"
    translate_video(tr, NET, src, dst, size=None, progress=False)
    assert decode(dst)["size"] == (65, 49) and decode(dst)["frames"] == 6


def _corrupt(kind: str, folder, clip) -> os.PathLike:
    path = folder / f"{kind}.mp4"
    data = clip.read_bytes()
    content = {
        "empty": b"",
        "noise": os.urandom(20000),
        "text": b"this is not a video\n" * 100,
        "truncated": data[: len(data) // 2],  # an MP4's index (moov) comes last: cut off
    }[kind]
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "kind, match",
    [
        ("empty", "is empty"),
        ("noise", "not a video we can read"),
        ("text", "not a video we can read"),
        ("truncated", "not a video we can read"),
        ("missing", "video not found"),
    ],
)
def test_corrupt_video_is_refused_and_nothing_is_written(tr, clip, tmp_path, kind, match):
    src = tmp_path / "missing.mp4" if kind == "missing" else _corrupt(kind, tmp_path, clip)
    dst = tmp_path / "out.mp4"
    with pytest.raises(VideoError, match=match):
        translate_video(tr, NET, src, dst, progress=False)
    assert not dst.exists()
    assert _leftovers(tmp_path, keep={src.name}) == []


def test_a_failure_mid_clip_leaves_no_partial_file_and_the_old_one_intact(tr, clip, tmp_path):
    """The network fails on the second batch (as a GPU out of memory would): the previous
    output stays as it was and no temporary file remains."""
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"previous output")
    net = tiny_generators()["resnet"]
    calls = []

    def fail_second(module, args):
        calls.append(1)
        if len(calls) == 3:  # shared statistics: the first batch runs twice
            raise RuntimeError("out of memory")

    net.register_forward_pre_hook(fail_second)
    with pytest.raises(RuntimeError, match="out of memory"):
        translate_video(tr, net, clip, dst, size=None, batch=8, progress=False)
    assert dst.read_bytes() == b"previous output"
    assert _leftovers(tmp_path) == [dst.name]


def test_a_clip_with_no_video_stream_is_refused(tmp_path, tr):
    import av

    src = tmp_path / "tone.m4a"
    with av.open(str(src), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "flt", "mono")
        frame.sample_rate, frame.pts = 8000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    with pytest.raises(VideoError, match="has no video stream"):
        translate_video(tr, NET, src, tmp_path / "out.mp4", progress=False)
    assert not (tmp_path / "out.mp4").exists()


def test_limits_and_settings_are_checked_before_any_work(tr, clip, tmp_path):
    with pytest.raises(VideoError, match="over the 1 s limit"):
        translate_video(tr, NET, clip, tmp_path / "o.mp4", max_seconds=1, progress=False)
    small = Translator(device="cpu", plan="eager", max_pixels=1000)
    with pytest.raises(VideoError, match="over the 0.001 MP limit"):
        translate_video(small, NET, clip, tmp_path / "o.mp4", progress=False)
    with pytest.raises(VideoError, match="must end in one of"):
        translate_video(tr, NET, clip, tmp_path / "o.gif", progress=False)
    with pytest.raises(ConfigError, match="stats must be one of"):
        translate_video(tr, NET, clip, tmp_path / "o.mp4", stats="window", progress=False)
    assert _leftovers(tmp_path) == []


def test_probe_reports_the_clip(clip):
    info = probe_video(clip)
    assert (info.frames, info.fps, info.width, info.height, info.audio) == (48, 24, 64, 48, True)
    assert info.seconds == pytest.approx(2.0, abs=0.1)
