"""A LeRobot-style dataset built here (v2.1 or v3.0 layout, AV1 camera videos with a keyframe
every 2 frames, as LeRobot writes them): for tests/test_lerobot.py and the docs' commands."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.videos import make_clip

CAMERAS = ("observation.images.top", "observation.images.wrist")
FPS, FRAMES = 30, 6  # frames per episode
LAYOUTS = {
    "v2.1": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
    "v3.0": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
}


def _feature() -> dict:
    info = {
        "video.height": 48, "video.width": 64, "video.codec": "av1",
        "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": FPS,
        "video.channels": 3, "has_audio": False,
    }  # fmt: skip
    return {"dtype": "video", "shape": [48, 64, 3], "names": ["height", "width", "channels"],
            "info": info}  # fmt: skip


def make_dataset(root: Path, version: str) -> Path:
    """Two cameras, two episodes of FRAMES frames; v2.1: a file per episode, v3.0: both
    episodes in one file. data/ and meta/ hold stand-in bytes (only copied, never read)."""
    features = {key: _feature() for key in CAMERAS}
    features["action"] = {"dtype": "float32", "shape": [2], "names": None}
    info = {"codebase_version": version, "fps": FPS, "total_episodes": 2,
            "video_path": LAYOUTS[version], "features": features}  # fmt: skip
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    (root / "meta" / "stats.json").write_text("{}")
    (root / "data" / "chunk-000").mkdir(parents=True)
    for i, key in enumerate(CAMERAS):
        if version == "v2.1":
            (root / "data/chunk-000" / f"episode_00000{i}.parquet").write_bytes(b"PAR1 %d" % i)
            (root / "meta" / "episodes.jsonl").write_text('{"episode_index": 0}\n')
            paths = [f"videos/chunk-000/{key}/episode_00000{e}.mp4" for e in range(2)]
            frames = FRAMES
        else:
            (root / "data/chunk-000/file-000.parquet").write_bytes(b"PAR1")
            (root / "meta/episodes/chunk-000").mkdir(parents=True, exist_ok=True)
            (root / "meta/episodes/chunk-000/file-000.parquet").write_bytes(b"PAR1 episodes")
            paths, frames = [f"videos/{key}/chunk-000/file-000.mp4"], 2 * FRAMES
        for rel in paths:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            make_clip(root / rel, frames=frames, fps=FPS, audio=False, codec="libsvtav1", gop=2)
    return root
