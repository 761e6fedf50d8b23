"""LeRobot datasets (v2.1 and v3.0 layouts, built here with AV1 camera videos, a keyframe every
2 frames, as LeRobot writes them): translated into a copy that is still a valid dataset: the
same files, the videos translated and stored as before, info.json true of the files, the
cameras' image stats (per episode and aggregated) true of the translated videos as decoded
here, every other stat as it was, the input untouched, nothing half-written."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from helpers.lerobot import (
    CAMERAS,
    FRAMES,
    LAYOUTS,
    QUANTILES,
    frames_of,
    lerobot_rebuild,
    make_dataset,
    stats_of,
)
from helpers.models import tiny_generators
from helpers.videos import stored

from img2img import DatasetError, Translator
from img2img.cli import build_parser, main
from img2img.cli_media import translate_datasets
from img2img.media.lerobot import camera_videos, is_dataset, read_info, translate_dataset
from img2img.models import ResnetGenerator

NET = tiny_generators()["resnet"]
STATS_FILES = {
    "v2.1": ["meta/episodes_stats.jsonl"],
    "v3.0": ["meta/stats.json", "meta/episodes/chunk-000/file-000.parquet"],
}


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


def _episodes_stats(root: Path) -> dict[int, dict]:
    """Per episode, its stats {feature: {stat: value}} as the dataset stores them (v2.1's
    episodes_stats.jsonl, v3.0's episodes parquet)."""
    jsonl = root / "meta" / "episodes_stats.jsonl"
    if jsonl.is_file():
        rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
        assert all(line == json.dumps(json.loads(line)) for line in jsonl.read_text().splitlines())
        return {row["episode_index"]: row["stats"] for row in rows}
    pq = pytest.importorskip("pyarrow.parquet")
    out: dict[int, dict] = {}
    for row in pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist():
        for col, value in row.items():
            if col.startswith("stats/"):
                _, feature, name = col.split("/", 2)
                out.setdefault(row["episode_index"], {}).setdefault(feature, {})[name] = value
    return out


def _episode_frames(root: Path, key: str) -> list[np.ndarray]:
    """Each episode's frames of camera `key`, decoded from the dataset's videos."""
    files = camera_videos(root, read_info(root))[key]  # v2.1: episode 0, 1; v3.0: one file
    frames = np.concatenate([frames_of(root / rel) for rel in files])
    return [frames[e * FRAMES : (e + 1) * FRAMES] for e in range(2)]


def _close(got: dict, want: dict) -> None:
    """The same stats in the same order; quantiles within LeRobot's histogram estimate."""
    assert list(got) == list(want)
    for name, value in want.items():
        tol = 1e-3 if name in QUANTILES else 1e-9  # 5000 bins over [0, 1]: 2e-4 wide
        np.testing.assert_allclose(got[name], value, rtol=0, atol=tol, err_msg=name)


def _stats_true(src: Path, out: Path, translated: tuple[str, ...]) -> None:
    """The translated cameras' stats are those of their videos as decoded here, per episode
    and aggregated (meta/stats.json, if any: pooled over every frame; quantiles bounded as
    LeRobot's aggregate_stats bounds them); every other entry is the input's."""
    quantiles = read_info(src)["codebase_version"] != "v2.1"
    before, after = _episodes_stats(src), _episodes_stats(out)
    assert sorted(after) == [0, 1]
    for ep, features in before.items():
        for feature in set(features) - set(translated):
            assert after[ep][feature] == features[feature], (ep, feature)
    for key in translated:
        episodes = _episode_frames(out, key)
        for ep, frames in enumerate(episodes):
            _close(after[ep][key], stats_of(frames, True, quantiles))
            assert after[ep][key] != before[ep].get(key)
        if (out / "meta" / "stats.json").is_file():
            text = (out / "meta" / "stats.json").read_text()
            assert text.startswith('{\n    "') and not text.endswith("\n")  # LeRobot's layout
            want = stats_of(np.concatenate(episodes), True, quantiles)
            for q in QUANTILES if quantiles else ():
                pick = np.min if int(q[1:]) <= 50 else np.max
                want[q] = pick([after[ep][key][q] for ep in after], axis=0).tolist()
            _close(json.loads(text)[key], want)
    if (src / "meta" / "stats.json").is_file():
        old, new = (json.loads((r / "meta" / "stats.json").read_text()) for r in (src, out))
        assert {k: v for k, v in new.items() if k not in translated} == {
            k: v for k, v in old.items() if k not in translated
        }


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
        if rel in STATS_FILES[version]:
            assert after[rel] != before[rel], rel  # the cameras' stats: checked below
        elif rel in videos:
            a, b = stored(src / rel), stored(out / rel)
            assert b["codec"] == "av1" and b["keys"] == a["keys"] == "K." * (len(a["pts"]) // 2)
            assert (b["time_base"], b["pts"], b["size"]) == (a["time_base"], a["pts"], a["size"])
            assert np.abs(_first_frame(src / rel) - _first_frame(out / rel)).mean() > 5
        else:
            assert after[rel] == before[rel], rel  # info.json too: every description holds
    _described_truly(out)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["ds"]  # no temporary left
    _stats_true(src, out, translated=CAMERAS)
    assert result.notes == ()


def test_one_camera_and_a_codec_that_changes_the_description(tr, tmp_path):
    """--camera: the other camera's videos stay as they were; a codec asked for (H.264,
    GOP 3) is written into info.json for the translated camera only."""
    src = make_dataset(tmp_path / "ds", "v2.1", stats_json=True)  # as v2.0 left it
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
    _stats_true(src, tmp_path / "out", translated=(top,))  # wrist's and action's as they were


def test_a_camera_missing_from_the_stats_files_gets_its_entries(tr, tmp_path):
    """v3.0 with no stats of the top camera (stats.json, episodes parquet): they are added,
    named as the other features' are, typed as the other camera's columns."""
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    src = make_dataset(tmp_path / "ds", "v3.0")
    top, wrist = CAMERAS
    stats = json.loads((src / "meta" / "stats.json").read_text())
    names = list(stats.pop(top))
    (src / "meta" / "stats.json").write_text(json.dumps(stats, indent=4))
    episodes = src / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(episodes)
    pq.write_table(table.drop([c for c in table.column_names if c.startswith(f"stats/{top}/")]),
                   episodes)  # fmt: skip
    translate_dataset(tr, NET, src, tmp_path / "out", cameras=[top], size=None, progress=False)
    assert list(json.loads((tmp_path / "out" / "meta" / "stats.json").read_text())[top]) == names
    got = pq.read_table(tmp_path / "out" / "meta/episodes/chunk-000/file-000.parquet")
    for name in names:
        assert (
            got.schema.field(f"stats/{top}/{name}").type
            == table.schema.field(f"stats/{wrist}/{name}").type
        )
    assert isinstance(got.schema.field(f"stats/{top}/count").type, pa.ListType)
    _stats_true(src, tmp_path / "out", translated=(top,))


def test_without_pyarrow_the_episodes_parquet_is_kept_and_stats_json_still_true(
    tr, tmp_path, monkeypatch
):
    """No pyarrow (its import fails, as where it is not installed): a note says the v3.0
    per-episode stats are left as they were; meta/stats.json is pooled over whole files."""
    pytest.importorskip("pyarrow")  # to build the dataset
    src = make_dataset(tmp_path / "ds", "v3.0")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import raises ImportError
    result = translate_dataset(tr, NET, src, tmp_path / "out", size=None, progress=False)
    assert any("pyarrow is not installed" in n for n in result.notes), result.notes
    episodes = "meta/episodes/chunk-000/file-000.parquet"
    assert _files(tmp_path / "out")[episodes] == _files(src)[episodes]
    stats = json.loads((tmp_path / "out" / "meta" / "stats.json").read_text())
    for key in CAMERAS:
        frames = np.concatenate(_episode_frames(tmp_path / "out", key))
        _close(stats[key], stats_of(frames, True, quantiles=True))


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
    (src / "meta" / "stats.json").write_text("{")
    with pytest.raises(DatasetError, match=r"stats.json cannot be read as JSON"):
        translate_dataset(tr, NET, src, tmp_path / "out", progress=False)
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


LEROBOT_WROTE = Path(__file__).parent / "fixtures" / "lerobot_v30"  # make.py: LeRobot 0.4.4


@pytest.fixture(scope="module")
def lerobot_copy(tr, tmp_path_factory) -> tuple[Path, Path]:
    """The dataset LeRobot itself wrote (tests/fixtures/lerobot_v30/dataset.json: its own
    JSON files and parquet files, stats and episode index; its AV1 videos encoded again as
    LeRobot encodes them), rebuilt, and its translation."""
    pytest.importorskip("pyarrow")
    base = tmp_path_factory.mktemp("lerobot_wrote")
    text = json.loads((LEROBOT_WROTE / "dataset.json").read_text(encoding="utf-8"))
    src = lerobot_rebuild(text, base / "dataset")
    translate_dataset(tr, NET, src, base / "out" / "dataset", size=None, progress=False)
    return src, base / "out" / "dataset"


def test_a_dataset_lerobot_wrote_is_translated_and_stays_valid(lerobot_copy):
    """The same checks as above on LeRobot's own metadata and parquet files, not ones written
    here: the same files, only the camera videos and the stats files changed (info.json holds
    as it was), the videos AV1 with a keyframe every 2 frames and the input's pts, every camera
    stat (per episode in the index, aggregated in stats.json, in LeRobot's order and layout)
    true of the output."""
    pq = pytest.importorskip("pyarrow.parquet")
    src, out = lerobot_copy
    before, after = _files(src), _files(out)
    assert sorted(after) == sorted(before)
    videos = {str(p) for files in camera_videos(src, read_info(src)).values() for p in files}
    assert len(videos) == 2
    for rel in before:
        if rel in STATS_FILES["v3.0"]:
            assert after[rel] != before[rel], rel
        elif rel in videos:
            a, b = stored(src / rel), stored(out / rel)
            assert b["codec"] == "av1" and b["keys"] == a["keys"] == "K." * FRAMES
            assert (b["time_base"], b["pts"], b["size"]) == (a["time_base"], a["pts"], a["size"])
            assert np.abs(_first_frame(src / rel) - _first_frame(out / rel)).mean() > 5
        else:
            assert after[rel] == before[rel], rel
    _described_truly(out)
    _stats_true(src, out, translated=CAMERAS)
    episodes = "meta/episodes/chunk-000/file-000.parquet"
    old, new = pq.read_table(src / episodes), pq.read_table(out / episodes)
    assert new.schema == old.schema  # LeRobot's column types, every column kept
    kept = [c for c in old.column_names if not any(c.startswith(f"stats/{k}/") for k in CAMERAS)]
    assert new.select(kept).equals(old.select(kept))


def test_lerobot_itself_loads_the_translated_copy(lerobot_copy):
    """LeRobotDataset opens the copy, decodes every frame within its timestamp tolerance (the
    frame PyAV decodes at each index), answers a delta_timestamps window, and its stats are
    those of the frames it decodes (tests/fixtures/lerobot_v30/make.py --check). Where LeRobot
    is installed (see that file's docstring; not a dependency: it pins torch < 2.11)."""
    pytest.importorskip("lerobot.datasets.lerobot_dataset")
    spec = importlib.util.spec_from_file_location("lerobot_make", LEROBOT_WROTE / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    got = make.check(lerobot_copy[1])
    assert got["frames"] == 2 * FRAMES and got["episodes"] == 2
    assert all(c["stats_mean_error"] < 1e-6 for c in got["cameras"].values()), got
