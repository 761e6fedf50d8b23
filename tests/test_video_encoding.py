"""A translated clip is stored as its input was: codec, keyframe spacing, pixel format and
timestamps, read back from the output's packets; --codec / --gop override; what cannot be
kept falls back with a note (or, asked for explicitly, is refused)."""

from __future__ import annotations

import av
import pytest
from helpers.models import tiny_generators
from helpers.videos import make_clip, stored

from img2img import ConfigError, Translator, VideoError
from img2img.media.video import probe_video, translate_video

NET = tiny_generators()["resnet"]
TIMES_MS = [0, 40, 90, 200, 210, 330, 450, 470, 600, 640]  # a variable frame rate


@pytest.fixture(scope="module")
def tr() -> Translator:
    return Translator(device="cpu", plan="eager")


@pytest.fixture(scope="module")
def av1(tmp_path_factory):
    """What a LeRobot dataset stores: AV1 (SVT-AV1), a keyframe every 2 frames, yuv420p."""
    path = tmp_path_factory.mktemp("clips") / "av1.mp4"
    return make_clip(path, frames=12, fps=30, audio=False, codec="libsvtav1", gop=2)


def _translate(tr, src, dst, **kwargs):
    return translate_video(tr, NET, src, dst, size=None, progress=False, **kwargs)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm"])
def test_an_av1_clip_with_a_keyframe_every_2_frames_comes_out_so(tr, av1, tmp_path, suffix):
    dst = tmp_path / f"out{suffix}"
    info = _translate(tr, av1, dst)
    src, out = stored(av1), stored(dst)
    assert src["codec"] == "av1" and src["keys"] == "K." * 6
    assert out["codec"] == info.codec == "av1"
    assert out["keys"] == "K." * 6 and info.gop == 2
    assert out["pix_fmt"] == info.pix_fmt == "yuv420p"
    assert out["size"] == src["size"] == (64, 48)
    if suffix == ".mp4":  # the same container: the same time base and the very same pts
        assert (out["time_base"], out["pts"]) == (src["time_base"], src["pts"])
    assert info.notes == ()


@pytest.mark.parametrize(
    "codec, suffix, gop",
    [("libx264", ".mp4", 3), ("libx265", ".mkv", 4), ("libvpx-vp9", ".webm", 3)],
)
def test_other_codecs_and_keyframe_spacings_are_kept(tr, tmp_path, codec, suffix, gop):
    src = make_clip(tmp_path / f"in{suffix}", frames=12, audio=False, codec=codec, gop=gop)
    dst = tmp_path / f"out{suffix}"
    _translate(tr, src, dst)
    a, b = stored(src), stored(dst)
    keys = ("K" + "." * (gop - 1)) * (12 // gop)
    assert a["keys"] == b["keys"] == keys, (a["keys"], b["keys"])
    assert a["codec"] == b["codec"] and (a["time_base"], a["pts"]) == (b["time_base"], b["pts"])


IRREGULAR = (0, 3, 4, 11, 20, 21)  # keyframes as scene cuts place them: no one spacing


@pytest.mark.parametrize(
    "codec, suffix",
    [("libsvtav1", ".mkv"), ("libx264", ".mp4"), ("libx265", ".mp4"), ("libvpx-vp9", ".webm"),
     ("mpeg4", ".avi")],
)  # fmt: skip
def test_irregular_keyframes_come_out_where_the_input_had_them(tr, tmp_path, codec, suffix):
    """No one spacing: each frame that was a keyframe in the input is one in the output, and
    no other frame is (the encoder follows the input frame by frame: encoding.py)."""
    if codec not in av.codecs_available:
        pytest.skip(f"no {codec} in this FFmpeg")
    src = make_clip(tmp_path / f"in{suffix}", frames=24, audio=False, codec=codec,
                    keys=IRREGULAR)  # fmt: skip
    want = "".join("K" if i in IRREGULAR else "." for i in range(24))
    assert stored(src)["keys"] == want  # the input is what it says
    info = _translate(tr, src, tmp_path / f"out{suffix}")
    out = stored(tmp_path / f"out{suffix}")
    assert out["keys"] == want and out["codec"] == stored(src)["codec"]
    assert info.gop is None and info.notes == ()
    _translate(tr, src, tmp_path / f"g4{suffix}", gop=4)  # --gop still overrides
    assert stored(tmp_path / f"g4{suffix}")["keys"] == "K..." * 6


def test_a_10_bit_av1_clip_stays_10_bit(tr, tmp_path):
    src = make_clip(
        tmp_path / "deep.mkv", frames=6, audio=False, codec="libsvtav1", gop=2,
        pix_fmt="yuv420p10le",
    )  # fmt: skip
    info = _translate(tr, src, tmp_path / "out.mkv")
    assert stored(tmp_path / "out.mkv")["pix_fmt"] == info.pix_fmt == "yuv420p10le"


def test_av1_keeps_a_variable_frame_rate(tr, tmp_path):
    src = make_clip(tmp_path / "vfr.mkv", audio=False, times_ms=TIMES_MS, codec="libsvtav1", gop=2)
    _translate(tr, src, tmp_path / "out.mkv")
    a, b = stored(src), stored(tmp_path / "out.mkv")
    assert b["codec"] == "av1" and (a["time_base"], a["pts"]) == (b["time_base"], b["pts"])
    assert b["pts"] == TIMES_MS


def test_codec_and_gop_override_the_input(tr, av1, tmp_path):
    info = _translate(tr, av1, tmp_path / "h264.mp4", codec="h264", gop=4)
    out = stored(tmp_path / "h264.mp4")
    assert out["codec"] == info.codec == "h264" and out["keys"] == "K..." * 3
    _translate(tr, av1, tmp_path / "g3.mkv", gop=3)
    assert stored(tmp_path / "g3.mkv")["keys"] == "K.." * 4  # still AV1, every 3
    assert stored(tmp_path / "g3.mkv")["codec"] == "av1"


def test_a_container_that_cannot_hold_the_codec_falls_back_with_a_note(tr, av1, tmp_path):
    """MOV is not written with AV1 here (FFmpeg's mov muxer refuses it): H.264, said why;
    the keyframe spacing is still kept."""
    info = _translate(tr, av1, tmp_path / "out.mov")
    out = stored(tmp_path / "out.mov")
    assert out["codec"] == info.codec == "h264" and out["keys"] == "K." * 6
    assert info.notes == (
        "written as h264, not av1: mov files are written with h264, hevc, mpeg4 here",
    )


def test_an_impossible_or_unknown_codec_asked_for_is_refused_before_any_work(tr, av1, tmp_path):
    with pytest.raises(VideoError, match="cannot write av1 into mov"):
        _translate(tr, av1, tmp_path / "out.mov", codec="av1")
    with pytest.raises(VideoError, match="unknown codec 'theora'"):
        _translate(tr, av1, tmp_path / "out.mkv", codec="theora")
    with pytest.raises(ConfigError, match="gop must be 1 or more"):
        _translate(tr, av1, tmp_path / "out.mkv", gop=0)
    assert list(tmp_path.iterdir()) == []


def test_probe_says_how_the_clip_is_stored(av1):
    info = probe_video(av1)
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("av1", "yuv420p", 64, 48)


def test_the_cli_offers_the_codecs_encoding_writes_and_checks_gop(capsys):
    from img2img import cli_media
    from img2img.cli import build_parser
    from img2img.media import encoding

    assert cli_media.CODECS == encoding.CODECS  # listed twice: --help imports no PyAV
    base = ["translate", "clip.mp4", "-o", "out", "--checkpoint", "c"]
    args = build_parser().parse_args([*base, "--codec", "av1", "--gop", "2"])
    assert (args.codec, args.gop) == ("av1", 2)
    with pytest.raises(SystemExit):
        build_parser().parse_args([*base, "--gop", "0"])
    assert "1 or more" in capsys.readouterr().err
