"""`img2img translate --dataset`: a parquet / Hub dataset in, parquet shards out (same rows,
source columns intact, the translated column at the input's size), refusals (exit 2), a row
that cannot be read (exit 1, kept), a rerun resumes (also after SIGTERM mid-run), push to
the fake Hub, torchrun ranks sharing the rows."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.env import clean_env
from helpers.images import random_image
from helpers.paths import FIXTURES, ROOT
from helpers.servers import FakeHub, serving

from img2img.cli import main

datasets = pytest.importorskip("datasets")
CHECKPOINT = str(FIXTURES / "junyanz_resnet9_instance_ngf8.pth")
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """`datasets`' Arrow cache in the test's folder, never the user's (in-process runs)."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def cell(img, fmt: str = "JPEG") -> dict:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return {"bytes": buf.getvalue(), "path": None}


def source(path: Path, n: int = 6, broken: int | None = None) -> Path:
    """n rows of 40x24 JPEGs, a number and a caption, as one parquet file (row `broken`'s
    image is not an image)."""
    images = [cell(random_image(40, 24, seed=i)) for i in range(n)]
    if broken is not None:
        images[broken] = {"bytes": b"not an image", "path": None}
    rows = {"image": images, "n": list(range(n)), "caption": [f"row {i}" for i in range(n)]}
    ds = datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image())
    ds.to_parquet(path)
    return path


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "img2img", "translate", *args]
    full = clean_env(HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(ROOT), **ENV, **env)
    return subprocess.run(cmd, cwd=tmp_path, env=full, capture_output=True, text=True, timeout=300)


def read_out(out: Path) -> datasets.Dataset:
    files = sorted(str(p) for p in (out / "data").glob("train-*.parquet"))
    return datasets.load_dataset(
        "parquet", data_files=files, split="train", cache_dir=str(out.parent / "cache")
    )


@pytest.mark.slow
def test_a_parquet_dataset_gives_the_same_rows_with_a_translated_column(tmp_path):
    src = source(tmp_path / "src.parquet")
    out = tmp_path / "out"
    done = run(["--dataset", str(src), "-o", str(out), "--checkpoint", CHECKPOINT, "--size", "32"],
               tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "6 rows of train in 1 shards" in done.stderr
    back, before = read_out(out), datasets.load_dataset("parquet", data_files=str(src))["train"]
    assert back.column_names == ["image", "n", "caption", "image_translated"]
    assert back["n"] == before["n"] and back["caption"] == before["caption"]
    raw = back.cast_column("image", datasets.Image(decode=False))
    raw_src = before.cast_column("image", datasets.Image(decode=False))
    assert [r["image"]["bytes"] for r in raw] == [r["image"]["bytes"] for r in raw_src]
    assert {img.size for img in back["image_translated"]} == {(40, 24)}  # the input's size
    again = run(["--dataset", str(src), "-o", str(out), "--checkpoint", CHECKPOINT, "--size", "32"],
                tmp_path)  # fmt: skip
    assert again.returncode == 0 and "(6 from an earlier run)" in again.stderr
    other = run(["--dataset", str(src), "-o", str(out), "--checkpoint", CHECKPOINT], tmp_path)
    assert other.returncode == 2 and "other settings (size" in other.stderr


@pytest.mark.slow
def test_a_row_that_cannot_be_read_is_kept_empty_and_exit_1(tmp_path):
    src = source(tmp_path / "src.parquet", n=4, broken=2)
    out = tmp_path / "out"
    done = run(["--dataset", str(src), "-o", str(out), "--checkpoint", CHECKPOINT, "--size", "32"],
               tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    assert "failed" in done.stderr and "row 2" in done.stderr and "1 failed" in done.stderr
    back = read_out(out)
    assert back["n"] == [0, 1, 2, 3]
    assert [img is None for img in back["image_translated"]] == [False, False, True, False]


@pytest.mark.parametrize(
    "extra,message",
    [
        (["photo.png"], "give no INPUT"),
        (["--tile"], "--tile applies to files"),
        (["--private"], "--private applies with --push-to-hub"),
        (["--column", "caption"], "'caption' is not an image column; the columns: image (Image)"),
        (["--split", "test"], "has no split 'test'"),
    ],
)
def test_refusals_exit_2_before_any_work(tmp_path, monkeypatch, capsys, extra, message):
    src = source(tmp_path / "src.parquet", n=2)
    monkeypatch.chdir(tmp_path)
    assert main(["translate", "--dataset", str(src), "-o", "out", "--checkpoint", CHECKPOINT,
                 *extra]) == 2  # fmt: skip
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_dataset_options_need_dataset_and_files_need_an_input(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["translate", "x.png", "-o", "out", "--checkpoint", "c", "--split", "t"]) == 2
    assert "--split applies to --dataset" in capsys.readouterr().err
    assert main(["translate", "-o", "out", "--checkpoint", CHECKPOINT]) == 2
    assert "arguments are required: INPUT" in capsys.readouterr().err


@pytest.mark.slow
def test_a_hub_dataset_translated_and_pushed_to_the_fake_hub(tmp_path):
    src = source(tmp_path / "src.parquet")
    files = {("datasets/me/photos", "data/train-00000-of-00001.parquet"): src.read_bytes()}
    with serving(FakeHub(files)) as hub:
        done = run(
            ["--dataset", "me/photos", "-o", "out", "--checkpoint", CHECKPOINT, "--size", "32",
             "--push-to-hub", "me/photos-translated"],
            tmp_path, HF_ENDPOINT=hub.url, HF_TOKEN="hf_x",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        pushed = {f for repo, f in hub.files if repo == "datasets/me/photos-translated"}
    assert pushed == {"README.md", "data/train-00000-of-00001-00000.parquet"}
    assert "photos-translated" in done.stdout  # the commit URL
    assert read_out(tmp_path / "out")["n"] == list(range(6))


@pytest.mark.slow
def test_two_torchrun_ranks_write_every_row_once_and_rank_0_pushes(tmp_path):
    src = source(tmp_path / "src.parquet", n=7)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd = [*torchrun, "--nproc-per-node", "2", "-m", "img2img", "translate", "--dataset", str(src)]
    cmd += ["-o", "out", "--checkpoint", CHECKPOINT, "--size", "32"]
    with serving(FakeHub()) as hub:
        env = clean_env(HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(ROOT), HF_ENDPOINT=hub.url,
                        HF_TOKEN="hf_x", **ENV)  # fmt: skip
        done = subprocess.run([*cmd, "--push-to-hub", "me/t"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        pushed = sorted(f for repo, f in hub.files if repo == "datasets/me/t")
    names = [f"data/train-0000{r}-of-00002-00000.parquet" for r in (0, 1)]
    assert pushed == ["README.md", *names]  # both ranks' shards: pushed after the barrier
    assert done.stdout.count("datasets/me/t") == 1  # rank 0 alone pushes
    back = read_out(tmp_path / "out")
    assert sorted(back["n"]) == list(range(7))  # every row exactly once
    assert "rank 0 of 2: 4 rows" in done.stderr and "rank 1 of 2: 3 rows" in done.stderr


@pytest.mark.slow
def test_sigterm_keeps_finished_shards_and_the_rerun_resumes_after_them(tmp_path):
    """SIGTERM mid-run: exit 143, only whole shards under OUT/data (nothing half-written
    under a final name), and the same command again translates only the rows left: the
    result equals an uninterrupted run's."""
    n, per_shard = 96, 8
    images = [cell(random_image(96, 64, seed=i)) for i in range(n)]
    rows = {"image": images, "n": list(range(n))}
    src = tmp_path / "src.parquet"
    datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image()).to_parquet(src)
    args = ["--dataset", str(src), "--checkpoint", CHECKPOINT, "--size", "96",
            "--rows-per-shard", str(per_shard)]  # fmt: skip
    whole = run([*args, "-o", str(tmp_path / "whole")], tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "img2img", "translate", *args, "-o", str(out)]
    env = clean_env(HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(ROOT), **ENV)
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((out / "data").glob("train-*.parquet")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no shard was written in 2 minutes"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "the same command resumes after them" in err
    shards = sorted((out / "data").iterdir())
    assert shards and all(p.name.startswith("train-") for p in shards)  # no temporaries
    kept = read_out(out)["n"]
    assert 0 < len(kept) < n and len(kept) % per_shard == 0 and kept == list(range(len(kept)))

    again = run([*args, "-o", str(out)], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"({len(kept)} from an earlier run)" in again.stderr
    got, want = read_out(out), read_out(tmp_path / "whole")
    assert got["n"] == list(range(n))
    assert encoded(got, "image_translated") == encoded(want, "image_translated")


def encoded(ds: datasets.Dataset, column: str) -> list[bytes]:
    return [r[column]["bytes"] for r in ds.cast_column(column, datasets.Image(decode=False))]
