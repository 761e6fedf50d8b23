"""Video translation: frame count, rate, size and audio kept; bad input refused; no partials."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers.models import tiny_generators
from helpers.videos import (
    declare_seconds,
    decode,
    first_frame,
    frame_times_ms,
    make_clip,
)

from img2img import Cancelled, ConfigError, Translator, VideoError, VideoLimitError
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


def _stream(path) -> tuple[str, str | None, int]:
    """(pix_fmt, profile, display rotation of the first frame) of a clip's video stream."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        rotation = next(c.decode(video=0)).rotation
        return v.codec_context.pix_fmt, v.codec_context.profile, rotation


def test_odd_frame_sizes_come_out_as_yuv420p_that_players_take(tr, tmp_path):
    """H.264 4:2:0 needs even sides: an odd side gets its last row / column repeated (nothing
    of the picture lost), never 4:4:4 (High 4:4:4, which browsers and phones do not play)."""
    src = make_clip(tmp_path / "odd.mp4", frames=6, size=(65, 49), audio=False, pix_fmt="yuv444p")
    dst = tmp_path / "out.mp4"
    info = translate_video(tr, NET, src, dst, size=None, progress=False)
    assert decode(dst)["size"] == (66, 50) == (info.width, info.height)
    assert decode(dst)["frames"] == 6
    pix_fmt, profile, _ = _stream(dst)
    assert pix_fmt == "yuv420p" and profile in ("High", "Main", "Constrained Baseline")
    out = first_frame(dst).astype(int)
    assert np.abs(out[:, 65] - out[:, 64]).mean() < 4  # the repeated column
    assert np.abs(out[49] - out[48]).mean() < 4  # the repeated row


def test_a_display_matrix_is_applied_the_output_is_upright(tr, tmp_path):
    """A phone's portrait clip: pictures stored 64x48 with a matrix asking players to turn
    them 90 degrees counter-clockwise. The frames are turned before translation (the network
    sees them upright, as photos get their EXIF orientation), and the output is 48x64 with no
    matrix: it translates as its upright twin does."""
    phone = make_clip(tmp_path / "phone.mp4", frames=4, size=(64, 48), audio=False, rotation=90)
    twin = make_clip(tmp_path / "twin.mp4", frames=4, size=(48, 64), audio=False, turns=1)
    assert _stream(phone)[2] == 90 and probe_video(phone).rotation == 90
    assert (probe_video(phone).width, probe_video(phone).height) == (48, 64)
    outs = {}
    for clip in (phone, twin):
        dst = tmp_path / f"out-{clip.name}"
        info = translate_video(tr, NET, clip, dst, size=None, progress=False)
        assert (info.width, info.height) == decode(dst)["size"] == (48, 64)
        assert _stream(dst)[2] == 0  # upright: no matrix left for a player to apply twice
        outs[clip.name] = first_frame(dst).astype(int)
    same = np.abs(outs["phone.mp4"] - outs["twin.mp4"]).mean()
    flipped = np.abs(outs["phone.mp4"] - outs["twin.mp4"][::-1, ::-1]).mean()
    assert same < 6 and flipped > 3 * same, (same, flipped)


TIMES_MS = [0, 40, 90, 200, 210, 330, 450, 470, 600, 640]  # gaps of 10 to 120 ms


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm"])
def test_a_variable_frame_rate_keeps_every_frame_s_time(tr, tmp_path, suffix):
    """Each output frame keeps its input frame's timestamp (to 1 ms), instead of being
    re-timed to 1 / average rate (up to 120 ms late here)."""
    src = make_clip(tmp_path / "vfr.mkv", audio=False, times_ms=TIMES_MS)
    assert frame_times_ms(src) == TIMES_MS
    dst = tmp_path / f"out{suffix}"
    translate_video(tr, NET, src, dst, size=None, progress=False)
    got = frame_times_ms(dst)
    assert len(got) == len(TIMES_MS)
    assert max(abs(g - t) for g, t in zip(got, TIMES_MS, strict=True)) <= 1, got


def _lying_clip(kind: str, folder):
    """3 s of frames behind a header that declares no duration, or 0.5 s."""
    if kind == "no duration":
        clip = make_clip(folder / "live.mkv", frames=72, audio=False, live=True)
    else:
        clip = declare_seconds(make_clip(folder / "lies.mp4", frames=72, audio=True), 0.5)
    assert probe_video(clip).seconds <= 0.5  # what a header check sees
    return clip


@pytest.mark.parametrize("kind", ["no duration", "header says 0.5 s"])
def test_the_length_cap_counts_what_decodes_not_what_the_header_says(tr, tmp_path, kind):
    clip = _lying_clip(kind, tmp_path)
    dst = tmp_path / "out.mp4"
    with pytest.raises(VideoLimitError, match=r"over the 1 s limit") as e:
        translate_video(tr, NET, clip, dst, max_seconds=1, progress=False)
    assert "while decoding" in str(e.value)
    assert _leftovers(tmp_path, keep={clip.name}) == []


def test_the_length_cap_reads_frame_times_when_the_count_fits(tr, tmp_path):
    """11 frames (a count that fits 1 s at the declared rate) whose times reach 2 s."""
    times = [0, 40, 80, 120, 160, 200, 240, 280, 320, 360, 2000]
    clip = make_clip(tmp_path / "gap.mkv", audio=False, times_ms=times, live=True)
    with pytest.raises(VideoLimitError, match=r"frame 11 at 2.0 s.*over the 1 s limit"):
        translate_video(tr, NET, clip, tmp_path / "out.mp4", max_seconds=1, progress=False)
    assert _leftovers(tmp_path, keep={clip.name}) == []


def test_a_stop_request_ends_the_work_at_the_next_frame(tr, clip, tmp_path):
    """`should_stop` is asked before each decoded frame; once it says so, Cancelled is
    raised, nothing more is computed and nothing is written (an older output stays)."""
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"previous output")
    asked = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 5

    with pytest.raises(Cancelled, match="stopped after 5 of its frames"):
        translate_video(tr, NET, clip, dst, batch=4, should_stop=should_stop, progress=False)
    assert len(asked) == 6  # one question per frame, none after the answer
    assert dst.read_bytes() == b"previous output"
    assert _leftovers(tmp_path) == [dst.name]


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
