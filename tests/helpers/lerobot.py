"""A LeRobot-style dataset built here (v2.1 or v3.0 layout, AV1 camera videos with a keyframe
every 2 frames, as LeRobot writes them): for tests/test_lerobot.py and the docs' commands.

Its statistics are laid out as LeRobot writes them, computed here from the decoded input
clips with plain numpy (per channel, pixels / 255, shape (3, 1, 1); count = frames):
v2.1 meta/episodes_stats.jsonl (no quantiles, as v2.1 wrote; no stats.json unless asked, as
v2.1 wrote none), v3.0 meta/stats.json and the `stats/<feature>/<stat>` columns of
meta/episodes/chunk-000/file-000.parquet (with LeRobot 0.4's quantiles), an action feature's
stats beside the cameras'. Also: a dataset LeRobot itself wrote, kept as text and rebuilt
(`lerobot_dump`, `lerobot_rebuild`: tests/fixtures/lerobot_v30/)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import numpy as np

from helpers.videos import make_clip

CAMERAS = ("observation.images.top", "observation.images.wrist")
FPS, FRAMES = 30, 6  # frames per episode
LAYOUTS = {
    "v2.1": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
    "v3.0": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
}
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}


def _feature() -> dict:
    info = {
        "video.height": 48, "video.width": 64, "video.codec": "av1",
        "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": FPS,
        "video.channels": 3, "has_audio": False,
    }  # fmt: skip
    return {"dtype": "video", "shape": [48, 64, 3], "names": ["height", "width", "channels"],
            "info": info}  # fmt: skip


def frames_of(path: Path) -> np.ndarray:
    """Every frame of a clip, decoded: (N, H, W, 3) uint8."""
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def stats_of(values: np.ndarray, image: bool, quantiles: bool) -> dict:
    """LeRobot's stats of one feature over some frames: images (N, H, W, 3) uint8 per
    channel on / 255 with shape (3, 1, 1); vectors (N, D) per dimension. Quantiles exact
    (numpy's inverted CDF), where LeRobot estimates them from a histogram."""
    x = values.reshape(-1, 3) / 255.0 if image else values.astype(np.float64)
    got = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0)}
    if quantiles:
        got |= {q: np.quantile(x, p, axis=0, method="inverted_cdf") for q, p in QUANTILES.items()}
    out = {k: (v.reshape(3, 1, 1) if image else v).tolist() for k, v in got.items()}
    out["count"] = [len(values)]
    return {k: out[k] for k in ("min", "max", "mean", "std", "count", *got)}  # LeRobot's order


def make_dataset(root: Path, version: str, stats_json: bool | None = None) -> Path:
    """Two cameras, two episodes of FRAMES frames; v2.1: a file per episode, v3.0: both
    episodes in one file. data/ holds stand-in bytes (only copied, never read); meta/ holds
    the stats (module docstring). `stats_json`: write meta/stats.json (default: v3.0 only)."""
    features = {key: _feature() for key in CAMERAS}
    features["action"] = {"dtype": "float32", "shape": [2], "names": ["x", "y"]}
    info = {"codebase_version": version, "fps": FPS, "total_episodes": 2, "chunks_size": 1000,
            "video_path": LAYOUTS[version], "features": features}  # fmt: skip
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    (root / "data" / "chunk-000").mkdir(parents=True)
    action = np.random.default_rng(0).normal(size=(2 * FRAMES, 2)).astype(np.float32)
    frames = {}  # camera -> (2 * FRAMES, H, W, 3), both episodes
    for key in CAMERAS:
        if version == "v2.1":
            paths = [f"videos/chunk-000/{key}/episode_00000{e}.mp4" for e in range(2)]
            length = FRAMES
        else:
            paths, length = [f"videos/{key}/chunk-000/file-000.mp4"], 2 * FRAMES
        for e, rel in enumerate(paths):  # v2.1's episode 1 upside down: episodes differ
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            make_clip(root / rel, frames=length, fps=FPS, audio=False, codec="libsvtav1", gop=2,
                      turns=2 * e)  # fmt: skip
        frames[key] = np.concatenate([frames_of(root / rel) for rel in paths])
    quantiles = version != "v2.1"

    def stats(rows: slice) -> dict:
        got = {key: stats_of(frames[key][rows], True, quantiles) for key in CAMERAS}
        return got | {"action": stats_of(action[rows], False, quantiles)}

    episodes = [stats(slice(e * FRAMES, (e + 1) * FRAMES)) for e in range(2)]
    if stats_json if stats_json is not None else version != "v2.1":
        (root / "meta" / "stats.json").write_text(json.dumps(stats(slice(None)), indent=4))
    if version == "v2.1":
        _write_v21(root, episodes)
    else:
        _write_v30(root, episodes)
    return root


def _write_v21(root: Path, episodes: list[dict]) -> None:
    for e in range(2):
        (root / "data/chunk-000" / f"episode_00000{e}.parquet").write_bytes(b"PAR1 %d" % e)
    lines = {
        "episodes.jsonl": [{"episode_index": e, "tasks": ["pick"], "length": FRAMES}
                           for e in range(2)],
        "tasks.jsonl": [{"task_index": 0, "task": "pick"}],
        "episodes_stats.jsonl": [{"episode_index": e, "stats": s} for e, s in enumerate(episodes)],
    }  # fmt: skip
    for name, rows in lines.items():  # as jsonlines writes them
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (root / "meta" / name).write_text(text)


def _write_v30(root: Path, episodes: list[dict]) -> None:
    (root / "data/chunk-000/file-000.parquet").write_bytes(b"PAR1")
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    path.parent.mkdir(parents=True)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # the stats tests skip; the others only copy it
        path.write_bytes(b"PAR1 episodes")
        return
    table: dict[str, list] = {"episode_index": [0, 1], "tasks": [["pick"]] * 2,
                              "length": [FRAMES] * 2, "data/chunk_index": [0, 0],
                              "data/file_index": [0, 0], "dataset_from_index": [0, FRAMES],
                              "dataset_to_index": [FRAMES, 2 * FRAMES]}  # fmt: skip
    for key in CAMERAS:
        table |= {f"videos/{key}/chunk_index": [0, 0], f"videos/{key}/file_index": [0, 0],
                  f"videos/{key}/from_timestamp": [0.0, FRAMES / FPS],
                  f"videos/{key}/to_timestamp": [FRAMES / FPS, 2 * FRAMES / FPS]}  # fmt: skip
    for feature, stats in episodes[0].items():  # flatten_dict({"stats": ...}) order
        for name in stats:
            table[f"stats/{feature}/{name}"] = [ep[feature][name] for ep in episodes]
    table |= {"meta/episodes/chunk_index": [0, 0], "meta/episodes/file_index": [0, 0]}
    pq.write_table(pa.Table.from_pydict(table), path, compression="snappy")


# A dataset LeRobot wrote (tests/fixtures/lerobot_v30/make.py), kept as text: its JSON files
# as they are, its parquet files as schema (field names, Arrow types, nullability, schema
# metadata) and rows, its camera videos as the frames fed to LeRobot, encoded here as LeRobot
# encodes them (libsvtav1, crf 30, a keyframe every 2 frames, yuv420p).
_ARROW = {"int64": "int64", "float": "float32", "double": "float64", "string": "string",
          "large_string": "large_string"}  # fmt: skip


def lerobot_frame(camera: int, episode: int, i: int) -> np.ndarray:
    """Frame `i` of `episode` for camera number `camera`: the pattern fed to LeRobot."""
    y, x = np.mgrid[0:48, 0:64]
    rgb = [(x * 4 + i * 20 + camera * 50) % 256, (y * 5 + episode * 60) % 256,
           ((x + y) * 3 + i * 7) % 256]  # fmt: skip
    return np.stack(rgb, -1).astype(np.uint8)


def _arrow_type(text: str):
    """The Arrow type `str(type)` printed (the kinds LeRobot writes)."""
    import pyarrow as pa

    if text in _ARROW:
        return getattr(pa, _ARROW[text])()
    if m := re.fullmatch(r"fixed_size_list<element: (.+)>\[(\d+)\]", text):
        return pa.list_(_arrow_type(m[1]), int(m[2]))
    if m := re.fullmatch(r"list<element: (.+)>", text):
        return pa.list_(_arrow_type(m[1]))
    raise ValueError(f"an Arrow type this fixture does not rebuild: {text}")


def lerobot_dump(root: Path) -> dict:
    """The text form of the dataset at `root` (JSON files, parquet schemas and rows)."""
    import pyarrow.parquet as pq

    out: dict = {"json": {}, "parquet": {}}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".json":
            out["json"][rel] = path.read_text(encoding="utf-8")
        elif path.suffix == ".parquet":
            table = pq.read_table(path)
            fields = [[f.name, str(f.type), f.nullable] for f in table.schema]
            meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
            out["parquet"][rel] = {"fields": fields, "metadata": meta, "rows": table.to_pylist()}
    return out


def lerobot_rebuild(text: dict, root: Path) -> Path:
    """Write the dataset `text` (lerobot_dump's) holds under `root`: its JSON files and
    parquet files as LeRobot wrote them, and its camera videos encoded again."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for rel, body in text["json"].items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(body, encoding="utf-8")
    for rel, part in text["parquet"].items():
        fields = [pa.field(n, _arrow_type(t), nullable) for n, t, nullable in part["fields"]]
        schema = pa.schema(fields, metadata=part["metadata"] or None)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(part["rows"], schema=schema), root / rel)
    info = json.loads(text["json"]["meta/info.json"])
    episodes = text["parquet"]["meta/episodes/chunk-000/file-000.parquet"]["rows"]
    for c, key in enumerate(CAMERAS):
        rel = info["video_path"].format(video_key=key, chunk_index=0, file_index=0)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(root / rel), "w") as out:
            video = out.add_stream("libsvtav1", rate=info["fps"], options={"crf": "30"})
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
            video.codec_context.gop_size = 2
            n = 0
            for row in episodes:
                for i in range(row["length"]):
                    frame = av.VideoFrame.from_ndarray(
                        lerobot_frame(c, row["episode_index"], i), format="rgb24"
                    )
                    frame.pts, n = n, n + 1
                    out.mux(video.encode(frame))
            out.mux(video.encode())
    return root
