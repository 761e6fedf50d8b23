"""LeRobot datasets (v2.1 and v3.0 layouts, built here with AV1 camera videos, a keyframe every
2 frames, as LeRobot writes them): translated into a copy that is still a valid dataset: the
same files, the videos translated and stored as before, info.json true of the files, the input
untouched, nothing half-written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from helpers.lerobot import CAMERAS, LAYOUTS, make_dataset
from helpers.models import tiny_generators
from helpers.videos import stored

from img2img import DatasetError, Translator
from img2img.cli import build_parser, main
from img2img.cli_media import translate_datasets
from img2img.media.lerobot import camera_videos, is_dataset, read_info, translate_dataset
from img2img.models import ResnetGenerator

NET = tiny_generators()["resnet"]


def _files(root: Path) -> dict[str, str]:
    """Every file below `root`: its sha256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)


def _described_truly(root: Path) -> None:
    """Every camera's info.json entry says what its files hold."""
    info = read_info(root)
    for key, files in camera_videos(root, info).items():
        meta, shape = info["features"][key]["info"], info["features"][key]["shape"]
        for rel in files:
            got = stored(root / rel)
            with av.open(str(root / rel)) as c:
                fps = float(c.streams.video[0].average_rate)
            assert meta["video.codec"] == got["codec"], rel
            assert meta["video.pix_fmt"] == got["pix_fmt"], rel
            assert (meta["video.width"], meta["video.height"]) == got["size"], rel
            assert shape[:2] == [got["size"][1], got["size"][0]], rel
            assert meta["video.fps"] == pytest.approx(fps), rel


@pytest.fixture(scope="module")
def tr() -> Translator:
    return Translator(device="cpu", plan="eager")


@pytest.mark.parametrize("version", LAYOUTS)
def test_a_dataset_is_copied_with_its_videos_translated_and_stays_valid(tr, tmp_path, version):
    src = make_dataset(tmp_path / "ds", version)
    before = _files(src)
    result = translate_dataset(tr, NET, src, tmp_path / "out" / "ds", size=None, progress=False)
    out = tmp_path / "out" / "ds"
    assert is_dataset(out) and result.root == out and result.changed == {}
    assert _files(src) == before  # the input untouched
    after = _files(out)
    assert sorted(after) == sorted(before)  # the same files, nothing more
    videos = {str(p) for files in camera_videos(src, read_info(src)).values() for p in files}
    assert result.videos == len(videos) == (4 if version == "v2.1" else 2)
    for rel in before:
        if rel in videos:
            a, b = stored(src / rel), stored(out / rel)
            assert b["codec"] == "av1" and b["keys"] == a["keys"] == "K." * (len(a["pts"]) // 2)
            assert (b["time_base"], b["pts"], b["size"]) == (a["time_base"], a["pts"], a["size"])
            assert np.abs(_first_frame(src / rel) - _first_frame(out / rel)).mean() > 5
        else:
            assert after[rel] == before[rel], rel  # info.json too: every description holds
    _described_truly(out)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["ds"]  # no temporary left


def test_one_camera_and_a_codec_that_changes_the_description(tr, tmp_path):
    """--camera: the other camera's videos stay as they were; a codec asked for (H.264,
    GOP 3) is written into info.json for the translated camera only."""
    src = make_dataset(tmp_path / "ds", "v2.1")
    top, wrist = CAMERAS
    result = translate_dataset(
        tr, NET, src, tmp_path / "out", cameras=[top], size=None, progress=False,
        codec="h264", gop=3,
    )  # fmt: skip
    assert result.cameras == (top,) and result.changed == {top: {"video.codec": "h264"}}
    info = read_info(tmp_path / "out")
    assert info["features"][wrist]["info"]["video.codec"] == "av1"
    for rel in camera_videos(src, info)[wrist]:
        assert (tmp_path / "out" / rel).read_bytes() == (src / rel).read_bytes()
    for rel in camera_videos(src, info)[top]:
        assert stored(tmp_path / "out" / rel)["keys"] == "K.." * 2
    _described_truly(tmp_path / "out")


def test_what_cannot_work_is_refused_before_any_work(tr, tmp_path):
    src = make_dataset(tmp_path / "ds", "v3.0")
    with pytest.raises(DatasetError, match=r"no camera \['cam'\]: its cameras are"):
        translate_dataset(tr, NET, src, tmp_path / "out", cameras=["cam"], progress=False)
    with pytest.raises(DatasetError, match="inside the dataset"):
        translate_dataset(tr, NET, src, src / "out", progress=False)
    (tmp_path / "taken").mkdir()
    with pytest.raises(DatasetError, match="exists"):
        translate_dataset(tr, NET, src, tmp_path / "taken", progress=False)
    (tmp_path / "bad" / "meta").mkdir(parents=True)
    (tmp_path / "bad" / "meta" / "info.json").write_text("{")
    with pytest.raises(DatasetError, match="cannot be read as JSON"):
        translate_dataset(tr, NET, tmp_path / "bad", tmp_path / "out", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "ds", "taken"]


def test_a_video_that_fails_leaves_no_dataset_and_no_temporary(tr, tmp_path):
    src = make_dataset(tmp_path / "ds", "v2.1")
    victim = camera_videos(src, read_info(src))[CAMERAS[1]][-1]
    (src / victim).write_bytes(b"not a video")
    with pytest.raises(Exception, match="not a video we can read"):
        translate_dataset(tr, NET, src, tmp_path / "out" / "ds", size=None, progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_the_command_line_translates_a_dataset_into_out_dir(tmp_path, capsys):
    """`img2img translate DATASET -o OUT --checkpoint G --camera KEY` (cli_media)."""
    src = make_dataset(tmp_path / "ds", "v3.0")
    ckpt = tmp_path / "g.pth"
    torch.manual_seed(0)
    torch.save(ResnetGenerator(ngf=8, n_blocks=2).state_dict(), ckpt)
    argv = ["translate", str(src), "-o", str(tmp_path / "out"), "--checkpoint", str(ckpt),
            "--device", "cpu", "--size", "native", "--camera", CAMERAS[0]]  # fmt: skip
    assert main(argv) == 0  # the command itself (cli.translate_command hands datasets over)
    assert "1 videos of observation.images.top translated" in capsys.readouterr().err
    _described_truly(tmp_path / "out" / "ds")
    assert main(argv) == 1  # exists: kept
    assert "exists" in capsys.readouterr().err
    files = build_parser().parse_args(["translate", str(ckpt), "-o", "x", "--checkpoint", "c"])
    assert translate_datasets(files) is None  # not a dataset: cli.py's usual way
    assert main([*argv[:1], str(ckpt), *argv[2:]]) == 2  # --camera with files: refused
    assert "--camera applies to LeRobot datasets" in capsys.readouterr().err
