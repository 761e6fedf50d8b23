"""LeRobot datasets: translate the camera videos of a dataset, and it stays a valid dataset.

A LeRobot dataset (codebase v2.x and v3.0) is a folder with `meta/info.json`, whose
"features" name each camera (dtype "video") and say how its videos are stored ("info":
"video.codec", "video.pix_fmt", "video.fps", "video.height", "video.width", ...), whose
"video_path" template says where they are (v2.x:
`videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4`, one file per
episode; v3.0: `videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4`, many
episodes a file), with the frames' other data under `data/` (parquet) and the episode index,
tasks and statistics under `meta/`.

`translate_dataset` writes a copy: every file as it is (hard links where the disk allows,
copies under `meta/`), except the camera videos, which are translated (all cameras, or those
asked for) and written as the input stored them (video.py keeps codec, keyframe spacing, pixel
format, size and every frame's timestamp, so the episode index's timestamps still point at the
same frames), and `meta/info.json`, rewritten only where a description no longer holds (a codec
that could not be kept, an odd side made even). The copy is built in a hidden temporary folder
beside the output and renamed into place when complete: the output name never holds half a
dataset, and the input is never written to.

The translated cameras' image statistics, which LeRobot normalises a policy's inputs with, are
measured from the written videos and rewritten in the copy (lerobot_stats.py: v2.0's
meta/stats.json, v2.1's meta/episodes_stats.jsonl, v3.0's meta/stats.json and the per-episode
`stats/<camera>/...` columns of meta/episodes/); every other feature's stats stay as they were.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..atomic import fsync_dir, write_text
from ..errors import DatasetError
from .lerobot_stats import read_stats, write_stats
from .video import VideoInfo, translate_video

INFO = Path("meta", "info.json")


@dataclass(frozen=True)
class DatasetResult:
    """What translate_dataset wrote."""

    root: Path
    videos: int  # video files translated
    cameras: tuple[str, ...]  # their feature keys
    changed: dict[str, dict]  # per camera: the info.json entries rewritten, with new values
    notes: tuple[str, ...]  # what the videos could not keep (video.VideoInfo.notes), and
    # what of the stats could not be updated (lerobot_stats.write_stats)


def is_dataset(path: str | os.PathLike) -> bool:
    """Whether `path` is a LeRobot dataset's root (it holds meta/info.json)."""
    return (Path(path) / INFO).is_file()


def read_info(root: Path) -> dict:
    """meta/info.json, checked to have "features" (DatasetError otherwise)."""
    try:
        info = json.loads((root / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{root / INFO} cannot be read as JSON: {e}") from e
    if not isinstance(info, dict) or not isinstance(info.get("features"), dict):
        raise DatasetError(f'{root / INFO} has no "features": not a LeRobot dataset')
    return info


def camera_videos(root: Path, info: dict) -> dict[str, list[Path]]:
    """Each camera's video files (relative to `root`), found through the "video_path"
    template (every field but {video_key} matching anything)."""
    template = info.get("video_path")
    keys = [
        k for k, f in info["features"].items() if isinstance(f, dict) and f.get("dtype") == "video"
    ]
    if keys and not isinstance(template, str):
        raise DatasetError(f'{root / INFO} names cameras {keys} but no "video_path"')
    found = {}
    for key in keys:
        parts = re.split(r"(\{[^}]*\})", template)
        pattern = "".join(
            glob.escape(key) if p == "{video_key}" else "*" if p.startswith("{") else glob.escape(p)
            for p in parts
        )
        found[key] = sorted(p.relative_to(root) for p in root.glob(pattern) if p.is_file())
    return found


def _check(src: Path, dst: Path, cams: dict, cameras, overwrite: bool) -> list[str]:
    """The cameras to translate; DatasetError for what cannot work (before any work)."""
    if src.resolve() == dst.resolve() or src.resolve() in dst.resolve().parents:
        raise DatasetError(f"the output {dst} is inside the dataset {src}: never written to")
    if dst.resolve() in src.resolve().parents:
        raise DatasetError(f"the output {dst} holds the dataset {src}: never replaced")
    if os.path.lexists(dst) and not overwrite:
        raise DatasetError(f"{dst} exists (overwrite replaces it)")
    unknown = sorted(set(cameras or ()) - set(cams))
    if unknown:
        raise DatasetError(f"{src.name} has no camera {unknown}: its cameras are {sorted(cams)}")
    chosen = list(cameras) if cameras else list(cams)
    if not any(cams[k] for k in chosen):
        raise DatasetError(f"{src.name}: no video files of {chosen} found")
    return chosen


def translate_dataset(
    translator,
    model_or_id,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    cameras: list[str] | None = None,
    overwrite: bool = False,
    **video: object,
) -> DatasetResult:
    """Write dataset `src` to `dst` with the camera videos translated (all, or `cameras`).

    `video`: translate_video's settings (size, stats, batch, codec, gop, max_seconds, ...).
    `overwrite`: replace an existing `dst` (else DatasetError). Raises DatasetError for a
    folder that is not a dataset, unknown cameras, or an output inside the input; VideoError
    for a video that cannot be translated (then nothing is written)."""
    src, dst = Path(src), Path(dst)
    info = read_info(src)
    cams = camera_videos(src, info)
    chosen = _check(src, dst, cams, cameras, overwrite)
    todo = {rel: key for key in chosen for rel in cams[key]}
    plan = read_stats(src)  # an unreadable stats file: refused before any work
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=_suffix()))
    try:
        written = _copy(translator, model_or_id, src, tmp, todo, video)
        stats_notes = write_stats(tmp, info, {rel: k for rel, (k, _) in written.items()}, plan)
        changed = _describe(info, chosen, written)
        if changed:
            write_text(tmp / INFO, json.dumps(info, indent=4, ensure_ascii=False) + "\n")
        else:
            shutil.copy2(src / INFO, tmp / INFO)
        _replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    notes = tuple(dict.fromkeys([*(n for w in written.values() for n in w[1].notes), *stats_notes]))
    return DatasetResult(dst, len(written), tuple(chosen), changed, notes)


def _suffix() -> str:
    return f".img2img-{os.getpid()}.tmp"  # as atomic.py names its temporaries


def _copy(translator, model, src: Path, out: Path, todo: dict, video: dict) -> dict:
    """Every file of `src` into `out`; the videos in `todo` translated. Returns
    {relative path: (camera key, VideoInfo)} for those."""
    written: dict[Path, tuple[str, VideoInfo]] = {}
    for folder, _, files in os.walk(src):
        rel_dir = Path(folder).relative_to(src)
        (out / rel_dir).mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            rel = rel_dir / name
            if rel == INFO:
                continue  # written last, described anew
            if rel in todo:
                got = translate_video(translator, model, src / rel, out / rel, **video)
                written[rel] = (todo[rel], got)
            elif rel.parts[0] == "meta":
                shutil.copy2(src / rel, out / rel)  # small, and ours to rewrite later
            else:
                _link_or_copy(src / rel, out / rel)
    return written


def _link_or_copy(a: Path, b: Path) -> None:
    try:
        os.link(a, b)
    except OSError:  # another disk, or no hard links there
        shutil.copy2(a, b)


_DESCRIBED = {"video.codec": "codec", "video.pix_fmt": "pix_fmt"}


def _describe(info: dict, chosen: list[str], written: dict) -> dict[str, dict]:
    """Update the cameras' entries of `info` (in place) to what was written; the changes."""
    changed = {}
    for key in chosen:
        outs = [v for k, v in written.values() if k == key]
        if not outs:
            continue
        got = outs[0]
        feature = info["features"][key]
        meta = feature.get("info") or feature.get("video_info") or {}
        new = {m: getattr(got, attr) for m, attr in _DESCRIBED.items() if m in meta}
        new |= {
            m: v for m, v in (("video.height", got.height), ("video.width", got.width)) if m in meta
        }
        diff = {m: v for m, v in new.items() if meta.get(m) != v}
        shape = _shape(feature, got)
        if shape is not None and shape != feature.get("shape"):
            diff["shape"] = feature["shape"] = shape
        meta.update({m: v for m, v in diff.items() if m != "shape"})
        if diff:
            changed[key] = diff
    return changed


def _shape(feature: dict, got: VideoInfo) -> list[int] | None:
    """The feature's "shape" with the written height and width (its "names" say where)."""
    shape, names = feature.get("shape"), feature.get("names")
    if not isinstance(shape, list) or not isinstance(names, list) or len(shape) != len(names):
        return None
    sides = {"height": got.height, "width": got.width}
    return [sides.get(n, s) for n, s in zip(names, shape, strict=True)]


def _replace(tmp: Path, dst: Path) -> None:
    """Rename the complete copy `tmp` to `dst` (an existing `dst` moved aside, then removed)."""
    old = None
    if os.path.lexists(dst):
        old = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.old.", suffix=_suffix()))
        os.replace(dst, old / dst.name)
    os.replace(tmp, dst)
    fsync_dir(dst.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
