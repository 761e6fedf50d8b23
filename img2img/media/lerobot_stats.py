"""The image statistics of a LeRobot dataset's cameras, measured from its videos as written.

LeRobot normalises a policy's camera inputs with per-channel stats (its compute_stats.py):
`min`, `max`, `mean`, `std`, `count` (frames) and, since LeRobot 0.4, `q01` ... `q99`, each but
count (3, 1, 1) nested lists on pixels / 255. v2.0: meta/stats.json (the dataset's). v2.1:
meta/episodes_stats.jsonl, a line `{"episode_index": i, "stats": {feature: {...}}}` per
episode (LeRobot aggregates them on load and writes no stats.json; one left from v2.0 is
updated too). v3.0: meta/stats.json, and per episode the `stats/<feature>/<stat>` columns of
meta/episodes/chunk-XXX/file-XXX.parquet, whose `videos/<camera>/chunk_index`, `file_index`,
`from_timestamp`, `to_timestamp` place the episode in the camera's shared video file.

`read_stats` reads these before any work (an unreadable one: DatasetError); `write_stats`
measures the translated videos and writes the new values into the copy. The frames are
measured by decoding the written file back (PyAV, RGB24, as LeRobot's pyav backend reads it):
AV1 and 4:2:0 change what the network wrote, an odd side is padded, and a policy trains on what
the decoder returns (LeRobot's v2.0 -> v2.1 conversion measures decoded frames too). Every
frame and pixel counts (LeRobot samples ~100 frames an episode): min, max, mean, std, count are
exact, from per-channel histograms of the 8-bit values; quantiles are LeRobot's histogram
estimate (5000 bins from min to max, interpolated) on those histograms. The dataset's entry
aggregates episodes as LeRobot's aggregate_stats does: counts summed, count-weighted means,
variances combined with the means' spread, min of mins, max of maxes, quantiles bounded (the
episodes' min for q <= 50, max above).

Only the stats an entry holds are rewritten (unknown ones kept, with a note); a translated
camera missing from a file that holds other features' stats gets an entry; no stats file is
created. Other features, cameras not translated and depth-map cameras (note) are untouched.
JSON keeps the file's layout (LeRobot's: indent 4, no final newline). Without pyarrow the v3.0
parquet is kept (note) and meta/stats.json pools whole video files instead of episodes.
"""

from __future__ import annotations

import bisect
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from ..atomic import write_text
from ..errors import DatasetError

STATS = Path("meta", "stats.json")
EPISODES_STATS = Path("meta", "episodes_stats.jsonl")
EPISODES = Path("meta", "episodes")
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}  # LeRobot's
BASIC = ("min", "max", "mean", "std", "count")
BINS = 5000  # LeRobot's RunningQuantileStats histogram
IMAGES = ("video", "image")  # the dtypes LeRobot gives per-channel image stats


class Pixels:
    """Per-channel histograms of the 8-bit RGB values of some frames."""

    def __init__(self) -> None:
        self.hist = np.zeros((3, 256), np.int64)
        self.frames = 0

    def add(self, rgb: np.ndarray) -> None:
        """One (H, W, 3) uint8 frame."""
        for c in range(3):
            self.hist[c] += np.bincount(rgb[..., c].ravel(), minlength=256)
        self.frames += 1

    def stats(self) -> dict[str, np.ndarray]:
        """LeRobot's per-episode stats of these frames: (3, 1, 1) arrays in [0, 1], count (1,)."""
        v = np.arange(256)
        out: dict[str, list] = {k: [] for k in (*BASIC[:4], *QUANTILES)}
        for h in self.hist:
            n, s1, s2 = int(h.sum()), int(h @ v), int(h @ v**2)  # exact, in Python ints
            nz = np.flatnonzero(h)
            out["min"].append(nz[0])
            out["max"].append(nz[-1])
            out["mean"].append(s1 / n)
            out["std"].append(max(n * s2 - s1 * s1, 0) ** 0.5 / n)
            for q, p in QUANTILES.items():
                out[q].append(_quantile(h, nz[0], nz[-1], p))
        got = {k: np.array(x, np.float64).reshape(3, 1, 1) / 255 for k, x in out.items()}
        got["count"] = np.array([self.frames])
        return got


def _quantile(h: np.ndarray, lo: int, hi: int, p: float) -> float:
    """LeRobot's quantile estimate (RunningQuantileStats._compute_single_quantile) of the
    values counted in `h`, through its BINS bins from `lo` to `hi`."""
    edges = np.linspace(lo - 1e-10, hi + 1e-10, BINS + 1)
    binned = np.histogram(np.arange(256), bins=edges, weights=h)[0]
    cum, target = np.cumsum(binned), p * h.sum()
    i = int(np.searchsorted(cum, target))
    if i == 0:
        return float(edges[0])
    if i >= len(cum):
        return float(edges[-1])
    inside = cum[i] - cum[i - 1]
    if inside == 0:
        return float(edges[i])
    return float(edges[i] + (target - cum[i - 1]) / inside * (edges[i + 1] - edges[i]))


def aggregate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """LeRobot's aggregate_feature_stats over episodes' stats of one feature."""
    counts = np.stack([s["count"] for s in parts]).astype(np.float64)  # (E, 1)
    total = counts.sum(axis=0)
    w = counts.reshape(-1, 1, 1, 1)
    means = np.stack([s["mean"] for s in parts])
    mean = (means * w).sum(axis=0) / total
    var = ((np.stack([s["std"] for s in parts]) ** 2 + (means - mean) ** 2) * w).sum(0) / total
    out = {
        "min": np.min([s["min"] for s in parts], axis=0),
        "max": np.max([s["max"] for s in parts], axis=0),
        "mean": mean,
        "std": np.sqrt(var),
        "count": np.array([sum(int(s["count"][0]) for s in parts)]),
    }
    for q in QUANTILES:  # bounds, not estimates: exact quantiles do not aggregate
        pick = np.min if int(q[1:]) <= 50 else np.max
        out[q] = pick([s[q] for s in parts], axis=0)
    return out


def measure(path: Path, spans: dict | None, fps: float) -> tuple[dict, int]:
    """Decode video `path`: its frames' Pixels per unit of `spans` ({unit: (from, to)}
    seconds of the file's timeline, a frame at t in [from, to), half a frame's slack), or
    all frames as unit None; and the count of frames in no span."""
    units: dict = defaultdict(Pixels)
    slack, outside = 0.5 / fps, 0
    order = sorted((a - slack, b - slack, u) for u, (a, b) in (spans or {}).items())
    starts = [a for a, _, _ in order]
    try:
        with av.open(str(path)) as c:
            for frame in c.decode(video=0):
                rgb = frame.to_ndarray(format="rgb24")
                if spans is None:
                    units[None].add(rgb)
                    continue
                t = frame.time
                i = bisect.bisect_right(starts, t) - 1 if t is not None else -1
                if i >= 0 and t < order[i][1]:
                    units[order[i][2]].add(rgb)
                else:
                    outside += 1
    except av.error.FFmpegError as e:
        raise DatasetError(f"{path.name}: cannot decode it back to measure its stats: {e}") from e
    return dict(units), outside


@dataclass
class Plan:
    """The stats files of a dataset, read before any work; what write_stats updates."""

    stats: dict | None = None  # meta/stats.json
    stats_text: str = ""
    lines: list | None = None  # meta/episodes_stats.jsonl, parsed, one per line
    lines_text: str = ""
    tables: dict = field(default_factory=dict)  # v3.0: relative parquet path -> pyarrow Table
    notes: list[str] = field(default_factory=list)


def read_stats(root: Path) -> Plan:
    """The stats files of dataset `root` (DatasetError for one that cannot be read)."""
    plan = Plan()
    if (root / STATS).is_file():
        plan.stats_text = _read(root / STATS)
        plan.stats = _json(plan.stats_text, root / STATS)
    if (root / EPISODES_STATS).is_file():
        plan.lines_text = _read(root / EPISODES_STATS)
        plan.lines = [
            _json(line, root / EPISODES_STATS) for line in plan.lines_text.splitlines() if line
        ]
    parquets = sorted((root / EPISODES).glob("chunk-*/file-*.parquet"))
    if parquets:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            plan.notes.append(
                "pyarrow is not installed: the per-episode stats in meta/episodes/ are left "
                "as they were (pip install pyarrow)"
            )
            return plan
        for p in parquets:
            try:
                plan.tables[p.relative_to(root)] = pq.read_table(p)
            except (OSError, ValueError) as e:  # ArrowInvalid is a ValueError
                raise DatasetError(f"{p} cannot be read as parquet: {e}") from e
    return plan


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path} cannot be read: {e}") from e


def _json(text: str, path: Path):
    try:
        got = json.loads(text)
    except ValueError as e:
        raise DatasetError(f"{path} cannot be read as JSON: {e}") from e
    if not isinstance(got, dict):
        raise DatasetError(f"{path} holds no JSON object")
    return got


def write_stats(root: Path, info: dict, videos: dict[Path, str], plan: Plan) -> list[str]:
    """Measure the translated `videos` ({path relative to `root`: camera key}) and write
    their cameras' stats into the files `plan` read, under `root`; the notes."""
    notes = list(plan.notes)
    per_episode, parts = _measure_all(root, info, videos, plan, notes)
    if plan.stats is not None and parts:
        for key, got in parts.items():
            _put(plan.stats, key, aggregate(got), notes, STATS)
        write_text(root / STATS, _dump_like(plan.stats, plan.stats_text))
    if plan.lines is not None and per_episode:
        lines = {x.get("episode_index"): x for x in plan.lines if isinstance(x.get("stats"), dict)}
        for (key, ep), stats in per_episode.items():
            if ep in lines:
                _put(lines[ep]["stats"], key, stats, notes, EPISODES_STATS)
            else:
                notes.append(f"{EPISODES_STATS} has no stats of episode {ep}: not added")
        sep = (", ", ": ") if '": ' in plan.lines_text else (",", ":")
        text = "".join(json.dumps(x, ensure_ascii=False, separators=sep) + "\n" for x in plan.lines)
        write_text(root / EPISODES_STATS, text)
    feats = info["features"]
    images = {k for k, f in feats.items() if isinstance(f, dict) and f.get("dtype") in IMAGES}
    for rel, table in plan.tables.items():
        _write_table(root / rel, table, per_episode, list(parts), images, notes)
    return list(dict.fromkeys(notes))


def _measure_all(root: Path, info: dict, videos: dict, plan: Plan, notes: list):
    """Each translated camera's stats: {(camera, episode): stats} where the episode is
    known (v2.x: from the file name; v3.0: from the parquet's spans), and per camera the
    list the dataset's entry aggregates (episodes, or whole files where none is known)."""
    fps = float(info.get("fps") or 30)
    depth = sorted({k for k in videos.values() if _is_depth(info["features"].get(k))})
    if depth:
        notes.append(f"stats of the depth-map cameras {depth} are left as they were")
    spans, lengths = _spans(plan.tables, info, set(videos.values()) - set(depth))
    per_episode: dict[tuple[str, int], dict] = {}
    parts: dict[str, list] = defaultdict(list)
    for rel, key in sorted(videos.items()):
        if key in depth:
            continue
        mine = spans.get((key, rel))
        got, outside = measure(root / rel, mine, fps)
        if outside:
            notes.append(f"{rel}: {outside} frames lie in no episode's span (not counted)")
        for ep in set(mine or ()) - set(got):
            notes.append(f"{rel}: no frames in episode {ep}'s span: its stats left as they were")
        episode = _episode(info.get("video_path", ""), rel) if mine is None else None
        for unit, px in got.items():
            ep = episode if unit is None else unit
            parts[key].append(stats := px.stats())
            if ep is None:
                continue
            per_episode[key, ep] = stats
            if lengths.get(ep, px.frames) != px.frames:
                notes.append(
                    f"{key} episode {ep}: {px.frames} frames, its length says {lengths[ep]}"
                )
    return per_episode, dict(parts)


def _is_depth(feature: dict | None) -> bool:
    """As LeRobot's configs.is_depth_map reads a feature."""
    feature = feature or {}
    meta, video = feature.get("info") or {}, feature.get("video_info")
    legacy = isinstance(video, dict) and video.get("video.is_depth_map")
    return bool(meta.get("is_depth_map") or meta.get("video.is_depth_map") or legacy)


def _episode(template: str, rel: Path) -> int | None:
    """The episode index in a v2.x video path (its template's {episode_index} field)."""
    pattern = ""
    for part in re.split(r"(\{[^}]*\})", template):
        name = part[1:-1].split(":")[0] if part.startswith("{") else None
        pattern += (
            re.escape(part) if name is None
            else r"(?P<episode_index>\d+)" if name == "episode_index" and "?P<" not in pattern
            else r"[^/]+"
        )  # fmt: skip
    m = re.fullmatch(pattern, rel.as_posix())
    return int(m["episode_index"]) if m and "episode_index" in m.groupdict() else None


def _spans(tables: dict, info: dict, cameras: set[str]) -> tuple[dict, dict]:
    """v3.0: {(camera, video path): {episode: (from, to)}} from the episodes parquet, and
    each episode's length."""
    spans: dict = defaultdict(dict)
    lengths = {}
    for table in tables.values():
        names = set(table.column_names)
        for row in table.select([c for c in table.column_names if not c.startswith("stats/")]
                                ).to_pylist():  # fmt: skip
            ep = row.get("episode_index")
            if "length" in names:
                lengths[ep] = row["length"]
            for key in cameras:
                col = f"videos/{key}/"
                try:
                    rel = Path(info["video_path"].format(
                        video_key=key, chunk_index=row[col + "chunk_index"],
                        file_index=row[col + "file_index"],
                    ))  # fmt: skip
                    spans[key, rel][ep] = (row[col + "from_timestamp"], row[col + "to_timestamp"])
                except (KeyError, IndexError, ValueError, TypeError):
                    continue  # not this layout: the file is measured whole
    return dict(spans), lengths


def _plain(name: str, value: np.ndarray) -> list:
    return [int(value[0])] if name == "count" else value.tolist()


def _put(stats: dict, key: str, new: dict, notes: list, where: Path) -> None:
    """Camera `key`'s entry of `stats` (a file's or an episode's features) rewritten with
    `new`: the stats it holds; a new entry, of the stats its neighbours hold, where there
    are neighbours but no entry."""
    entry = stats.get(key)
    if isinstance(entry, dict):
        for name in entry:
            if name in new:
                entry[name] = _plain(name, new[name])
        stale = [n for n in entry if n not in new]
        if stale:
            notes.append(f"{where}: {key}'s stats {stale} are not known here: left as they were")
    elif entry is None and stats:
        names = next((list(v) for v in stats.values() if isinstance(v, dict)), list(BASIC))
        stats[key] = {n: _plain(n, new[n]) for n in names if n in new} or {
            n: _plain(n, new[n]) for n in BASIC
        }


def _dump_like(data: dict, old: str) -> str:
    """JSON laid out as `old` was (LeRobot's write_json: indent 4, no final newline)."""
    m = re.search(r"\n( +)\"", old)
    indent = len(m[1]) if m else (4 if "\n" in old.strip() or not old.strip() else None)
    return json.dumps(data, indent=indent, ensure_ascii=False) + (
        "\n" if old.endswith("\n") else ""
    )


def _write_table(
    path: Path, table, per_episode: dict, cameras: list[str], images: set[str], notes: list
) -> None:
    """The v3.0 episodes parquet `table` with the cameras' `stats/<camera>/<stat>` columns
    rewritten for the measured episodes (other rows, columns and the schema kept), written
    to `path` as LeRobot writes it (snappy)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    episodes = (
        table.column("episode_index").to_pylist() if "episode_index" in table.column_names else []
    )
    for key in cameras:
        if not any((key, ep) in per_episode for ep in episodes):
            continue
        prefix = f"stats/{key}/"
        mine = [c for c in table.column_names if c.startswith(prefix)]
        if not mine:
            table = _add_columns(table, key, images - {key}, notes, path)
            mine = [c for c in table.column_names if c.startswith(prefix)]
        for col in mine:
            name = col[len(prefix) :]
            if name not in BASIC and name not in QUANTILES:
                notes.append(f"{path.name}: {col} is not known here: left as it was")
                continue
            old = table.column(col).to_pylist()
            new = [
                _plain(name, per_episode[key, ep][name]) if (key, ep) in per_episode else v
                for ep, v in zip(episodes, old, strict=True)
            ]
            i = table.column_names.index(col)
            table = table.set_column(
                i, table.schema.field(i), pa.array(new, table.schema.field(i).type)
            )
    pq.write_table(table, path, compression="snappy")


def _add_columns(table, key: str, others: set[str], notes: list, path: Path):
    """Null `stats/<key>/<stat>` columns, typed (and described in the schema metadata) as
    another camera's are; the table unchanged when no other camera has stats columns."""
    import pyarrow as pa

    owners = [c.split("/")[1] for c in table.column_names if c.startswith("stats/")]
    other = next((k for k in owners if k in others), None)
    if other is None:
        notes.append(f"{path.name}: no camera has stats columns to copy: {key}'s not added")
        return table
    meta = dict(table.schema.metadata or {})
    hf = json.loads(meta[b"huggingface"]) if b"huggingface" in meta else None
    for col in [c for c in table.column_names if c.startswith(f"stats/{other}/")]:
        new, f = f"stats/{key}/{col.split('/', 2)[2]}", table.schema.field(col)
        table = table.append_column(pa.field(new, f.type), pa.nulls(len(table), f.type))
        described = (hf or {}).get("info", {}).get("features", {})
        if col in described:
            described[new] = described[col]
    if hf is not None:
        meta[b"huggingface"] = json.dumps(hf).encode()
    return table.replace_schema_metadata(meta)
