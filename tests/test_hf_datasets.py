"""Hugging Face datasets in and out: parquet / save_to_disk / image folder / Hub (fake Hub)
sources, the translated dataset written as parquet shards (same rows, source columns
intact), sharding and streaming, a stopped run resumed, push to the Hub, and train.py on
`--dataset hf:` (paired columns, unpaired splits, exact resume).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.env import clean_env
from helpers.images import random_image
from helpers.models import tiny_config
from helpers.paths import ROOT
from helpers.servers import FakeHub, serving
from helpers.train_proc import same_training_state
from PIL import Image

from img2img import Translator, errors
from img2img.data import hf, hf_train, translate_dataset
from img2img.models import build_generator

datasets = pytest.importorskip("datasets")
pytestmark = pytest.mark.usefixtures("one_thread")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """`datasets`' Arrow cache in the test's folder, never the user's."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def cell(img, fmt: str = "PNG") -> dict:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return {"bytes": buf.getvalue(), "path": None}


def image_set(n: int = 10, size: int = 32, seed: int = 0) -> datasets.Dataset:
    """n rows: an image (JPEG: passing it through unchanged is visible), a number, a caption."""
    rows = {
        "image": [cell(random_image(size, size, seed=seed + i), "JPEG") for i in range(n)],
        "n": list(range(n)),
        "caption": [f"row {i}" for i in range(n)],
    }
    return datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image())


def write_parquet(ds: datasets.Dataset, folder: Path, split: str, files: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(files):
        ds.shard(files, k, contiguous=True).to_parquet(
            folder / f"{split}-{k:05d}-of-{files:05d}.parquet"
        )
    return folder


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_generator(tiny_config("resnet")).eval()


@pytest.fixture(scope="module")
def translator():
    return Translator(device="cpu", plan="eager")


def read_out(out: Path, split: str = "train") -> datasets.Dataset:
    files = sorted(str(p) for p in (out / "data").glob(f"{split}-*.parquet"))
    return datasets.load_dataset("parquet", data_files=files, split="train")


def test_a_parquet_dataset_in_gives_a_dataset_out_with_the_same_rows(tmp_path, model, translator):
    src = image_set(10)
    folder = write_parquet(src, tmp_path / "src" / "data", "train", files=2)
    out = tmp_path / "out"
    done = translate_dataset(
        translator, model, folder.parent, out, size=32, rows_per_shard=4, batch_size=3
    )
    assert (done.split, done.column, done.output_column, done.rows) == (
        "train",
        "image",
        "image_translated",
        10,
    )
    assert [p.name for p in done.files] == [
        f"train-00000-of-00001-{k:05d}.parquet" for k in range(3)
    ]
    back = read_out(out)
    assert back.column_names == ["image", "n", "caption", "image_translated"]
    assert back["n"] == src["n"] and back["caption"] == src["caption"]
    raw, raw_src = (d.cast_column("image", datasets.Image(decode=False)) for d in (back, src))
    assert [r["image"]["bytes"] for r in raw] == [r["image"]["bytes"] for r in raw_src]  # untouched
    first = back[0]["image_translated"]
    expected = translator.translate(model, [src[0]["image"]], size=32)[0]
    assert first.size == (32, 32) and first.tobytes() == expected.tobytes()
    # the folder is a dataset itself (README.md declares the split), and one file is a source
    assert len(datasets.load_dataset(str(out), split="train")) == 10
    single = tmp_path / "one.parquet"
    src.to_parquet(single)
    again = translate_dataset(translator, model, single, tmp_path / "out2", size=32)
    assert again.rows == 10


def test_save_to_disk_folder_and_image_folder_sources(tmp_path, model, translator):
    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": image_set(3), "test": image_set(5, seed=50)}).save_to_disk(saved)
    with pytest.raises(errors.DatasetError, match=r"no split 'val'.*\['train', 'test'\]"):
        translate_dataset(translator, model, saved, tmp_path / "x", split="val")
    done = translate_dataset(translator, model, saved, tmp_path / "o1", split="test", size=32)
    assert read_out(tmp_path / "o1", "test")["n"] == list(range(5)) and done.split == "test"
    pics = tmp_path / "pics" / "train"
    pics.mkdir(parents=True)
    for i in range(4):
        random_image(32, 32, seed=i).save(pics / f"{i}.png")
    done = translate_dataset(translator, model, tmp_path / "pics", tmp_path / "o2", size=32)
    back = read_out(tmp_path / "o2")
    assert done.rows == 4 and back[0]["image"].size == (32, 32)  # embedded, not a path


def test_the_image_column_is_chosen_or_the_columns_are_listed(tmp_path, model, translator):
    two = image_set(2).add_column("other", [cell(random_image(8, 8))] * 2)
    two = two.cast_column("other", datasets.Image())
    path = tmp_path / "two.parquet"
    two.to_parquet(path)
    with pytest.raises(errors.DatasetError, match=r"2 image columns.*--column.*image \(Image\)"):
        hf.open_rows(path)
    with pytest.raises(errors.DatasetError, match="'caption' is not an image column"):
        hf.open_rows(path, column="caption")
    with pytest.raises(errors.DatasetError, match="'nope' does not exist"):
        hf.open_rows(path, column="nope")
    assert hf.open_rows(path, column="other").column == "other"
    done = translate_dataset(translator, model, path, tmp_path / "o", column="other", size=32)
    assert done.output_column == "other_translated"
    with pytest.raises(errors.DatasetError, match="already has a column 'image'"):
        translate_dataset(
            translator, model, path, tmp_path / "o3", column="other", output_column="image"
        )
    with pytest.raises(errors.DatasetError, match="neither a local path nor a Hub id"):
        hf.find_source(str(tmp_path / "missing"))


@pytest.mark.parametrize("streaming,files", [(True, 3), (True, 4), (False, 1)])
def test_two_shards_cover_every_row_exactly_once(tmp_path, model, translator, streaming, files):
    """3 files over 2 ranks: every other row; 4: two files each; map-style: contiguous halves."""
    folder = write_parquet(image_set(9, size=16), tmp_path / "src", "train", files)
    out = tmp_path / "out"
    for rank in (0, 1):
        rows = hf.open_rows(folder, streaming=streaming, rank=rank, world=2)
        assert rows.streaming is streaming
        translate_dataset(
            translator, model, folder, out, streaming=streaming, rank=rank, world=2, size=16
        )
    back = read_out(out)
    assert sorted(back["n"]) == list(range(9))
    names = sorted(p.name for p in (out / "data").iterdir())
    assert names == ["train-00000-of-00002-00000.parquet", "train-00001-of-00002-00000.parquet"]


def test_a_stopped_run_resumes_after_its_finished_shards(tmp_path, model, translator):
    path = tmp_path / "src.parquet"
    image_set(10, size=16).to_parquet(path)
    straight = tmp_path / "straight"
    translate_dataset(translator, model, path, straight, size=16, rows_per_shard=3, batch_size=2)
    out, asked = tmp_path / "out", []

    def stop_after_three_batches() -> bool:
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(errors.Cancelled, match="stopped after 6 rows"):  # 2 shards done
        translate_dataset(translator, model, path, out, size=16, rows_per_shard=3, batch_size=2,
                          should_stop=stop_after_three_batches)  # fmt: skip
    (out / "data" / ".train-00000-of-00001-00001.parquet.x.img2img-999999.tmp").write_bytes(b"half")
    assert len(read_out(out)) == 6  # what is under a final name is complete
    done = translate_dataset(translator, model, path, out, size=16, rows_per_shard=3, batch_size=2)
    assert (done.resumed, done.rows, len(done.files)) == (6, 10, 4)
    assert not list((out / "data").glob(".*"))  # the killed writer's temporary is gone
    a, b = read_out(straight), read_out(out)
    assert a["n"] == b["n"] and [r.tobytes() for r in a["image_translated"]] == [
        r.tobytes() for r in b["image_translated"]
    ]
    again = translate_dataset(translator, model, path, out, size=16, rows_per_shard=3, batch_size=2)
    assert (again.resumed, again.rows) == (10, 10)  # a finished run has nothing left to do
    with pytest.raises(errors.DatasetError, match="other settings.*size"):
        translate_dataset(translator, model, path, out, size=32, rows_per_shard=3)


def test_without_the_datasets_package_the_error_says_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(errors.MissingDependencyError, match="pip install datasets"):
        hf.require_datasets()
    assert issubclass(errors.MissingDependencyError, ImportError)


def test_hf_columns_flag_is_checked():
    with pytest.raises(errors.DatasetError, match="two different column names"):
        hf_train.parse_columns("imageA")
    assert hf_train.parse_columns(" a , b ") == ("a", "b")
    from img2img.training.config import resolve

    with pytest.raises(errors.ConfigError, match="--hf-columns applies"):
        resolve("pix2pix", {"data": "d", "out": "r", "hf_columns": "a,b"}, None)


# --- the Hub (fake, on loopback) and train.py: fresh processes, as a user runs them ---------

HUB_SCRIPT = """
import json, sys, torch
import datasets
from img2img import Translator
from img2img.data import push_dataset, translate_dataset
from img2img.models import build_generator
torch.manual_seed(0)
model = build_generator({"architecture": "resnet", "ngf": 8, "n_blocks": 2}).eval()
done = translate_dataset(Translator(device="cpu", plan="eager"), model, "me/photos", sys.argv[1],
                         size=16, streaming=sys.argv[2] == "stream")
url = push_dataset(sys.argv[1], "me/photos-translated")
back = datasets.load_dataset("me/photos-translated", split="train", streaming=True)
rows = list(back)
print(json.dumps({"rows": done.rows, "n": [r["n"] for r in rows], "url": url,
                  "size": list(rows[0]["image_translated"].size)}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["download", "stream"])
def test_a_hub_dataset_in_and_pushed_out_through_the_fake_hub(tmp_path, mode):
    path = tmp_path / "src.parquet"
    image_set(6, size=16).to_parquet(path)
    files = {("datasets/me/photos", "data/train-00000-of-00001.parquet"): path.read_bytes()}
    with serving(FakeHub(files)) as hub:
        env = clean_env(
            HF_ENDPOINT=hub.url, HF_TOKEN="hf_x", HF_HOME=str(tmp_path / "hf"), **ONE_THREAD
        )
        args = [sys.executable, "-c", HUB_SCRIPT, str(tmp_path / "out"), mode]
        proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        pushed = {f for repo, f in hub.files if repo == "datasets/me/photos-translated"}
    assert result["rows"] == 6 and result["n"] == list(range(6)) and result["size"] == [16, 16]
    assert pushed == {"README.md", "data/train-00000-of-00001-00000.parquet"}


@pytest.mark.parametrize("main_size", [True, False], ids=["hub", "mirror-without-mainSize"])
def test_a_hub_datasets_size_takes_one_request_where_the_hub_reports_it(monkeypatch, main_size):
    """The streaming threshold's size: the repo info's mainSize (one request, however many
    files), else the whole tree listed and summed."""
    from huggingface_hub import constants

    files = {("datasets/me/photos", f"data/{k}.parquet"): b"x" * (100 + k) for k in range(3)}
    with serving(FakeHub(files, main_size=main_size)) as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        source = hf.find_source("me/photos")
        with pytest.raises(errors.DatasetError, match="no dataset 'me/absent'"):
            hf.find_source("me/absent")
        paths = [entry[1] for entry in hub.gets()]
    assert (source.kind, source.size) == ("hub", 303)
    assert any("/tree/" in p for p in paths) == (not main_size), paths


def paired_set(n: int, seed: int = 0) -> datasets.Dataset:
    """HugGAN's layout: imageA, imageB (B is A upside down, learnable), 36x36."""
    a = [random_image(36, 36, seed=seed + i) for i in range(n)]
    rows = {
        "imageA": [cell(x) for x in a],
        "imageB": [cell(x.transpose(1)) for x in a],  # FLIP_TOP_BOTTOM
    }
    ds = datasets.Dataset.from_dict(rows)
    return ds.cast_column("imageA", datasets.Image()).cast_column("imageB", datasets.Image())


def train(args: list[str], tmp_path: Path) -> None:
    env = clean_env(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", **ONE_THREAD)
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]


TINY = ["--seed", "0", "--ngf", "8", "--ndf", "8", "--load-size", "36", "--crop-size", "32"]


@pytest.mark.slow
def test_pix2pix_on_hf_paired_columns_resumes_exactly(tmp_path):
    folder = tmp_path / "facades" / "data"
    write_parquet(paired_set(4), folder, "train", files=1)
    write_parquet(paired_set(2, seed=100), folder, "test", files=1)
    common = ["pix2pix", "--dataset", f"hf:{folder.parent}", *TINY, "--num-downs", "5"]
    common += ["--workers", "0", "--val-images", "2"]
    train([*common, "--out", str(tmp_path / "straight"), "--steps", "4"], tmp_path)
    train([*common, "--out", str(tmp_path / "split"), "--steps", "2"], tmp_path)
    train(["pix2pix", "--out", str(tmp_path / "split"), "--resume", "--steps", "4"], tmp_path)
    weights = "weights/G/model.safetensors"
    assert (tmp_path / "straight" / weights).read_bytes() == (
        tmp_path / "split" / weights
    ).read_bytes()
    same_training_state(tmp_path / "straight", tmp_path / "split")
    records = [
        json.loads(x) for x in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    ]
    assert any(r["kind"] == "val" and "PSNR" in r for r in records)  # held-out real pairs


@pytest.mark.slow
def test_cyclegan_on_hf_unpaired_splits_and_swapped_columns(tmp_path):
    saved = tmp_path / "h2z"
    splits = {"trainA": image_set(3), "trainB": image_set(2, seed=20)}
    splits |= {"testA": image_set(1, seed=40), "testB": image_set(1, seed=60)}
    datasets.DatasetDict(splits).save_to_disk(saved)
    common = ["cyclegan", *TINY, "--n-blocks", "1", "--workers", "0", "--steps", "1"]
    train([*common, "--dataset", f"hf:{saved}", "--out", str(tmp_path / "a")], tmp_path)
    assert sorted(os.listdir(tmp_path / "a" / "weights")) == ["A2B", "B2A"]
    pairs = tmp_path / "pairs.parquet"
    paired_set(3).to_parquet(pairs)  # a file holds one split: train
    train([*common, "--dataset", f"hf:{pairs}", "--hf-columns", "imageB,imageA",
           "--out", str(tmp_path / "b")], tmp_path)  # fmt: skip
    assert (tmp_path / "b" / "weights" / "A2B" / "model.safetensors").is_file()
    folder = labelled_folder(tmp_path / "labelled", {"train": {"horse": 2, "zebra": 2, "cat": 1}})
    train([*common, "--dataset", f"hf:{folder}", "--hf-labels", "zebra,horse",
           "--out", str(tmp_path / "c")], tmp_path)  # fmt: skip
    assert (tmp_path / "c" / "weights" / "B2A" / "model.safetensors").is_file()


def test_hf_training_sets_are_pure_functions_of_their_keys_and_pickle(tmp_path):
    """What exact resume and loader workers rely on: same key, same tensors, after pickling."""
    import pickle

    from img2img.data import Augment

    path = tmp_path / "pairs.parquet"
    paired_set(3).to_parquet(path)
    train_set, val_set, real = hf_train.open_hf_datasets(
        f"hf:{path}", "pix2pix", "BtoA", Augment(36, 32, True), 0, 2
    )
    assert (len(train_set), val_set, real) == (3, None, True)  # no held-out split in one file
    copy = pickle.loads(pickle.dumps(train_set))
    a, b = train_set[(1, 2)], copy[(1, 2)]
    assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"])
    # BtoA: A is imageB, the upside-down imageA (no crop / flip here, which would not commute)
    plain, _, _ = hf_train.open_hf_datasets(
        f"hf:{path}", "pix2pix", "BtoA", Augment(32, 32, False), 0, 0
    )
    x = plain[0]
    assert torch.allclose(x["A"], x["B"].flip(1), atol=1e-5) and x["A"].shape == (3, 32, 32)
    with pytest.raises(errors.DatasetError, match="no image column .x.*--hf-columns"):
        hf_train.open_hf_datasets(f"hf:{path}", "pix2pix", "AtoB", Augment(36, 32, True), 0, 0,
                                  "x,y")  # fmt: skip


# --- the labels layout: an image folder as `datasets` reads it (one Image + one ClassLabel) ---

COLOURS = {"horse": (200, 30, 30), "zebra": (30, 30, 200), "cat": (30, 200, 30)}


def labelled_folder(root: Path, counts: dict[str, dict[str, int]]) -> Path:
    """root/<split or Berkeley folder>/<label>/k.png, each label a solid colour of its own."""
    for split, labels in counts.items():
        for label, n in labels.items():
            folder = root / split / label if label in COLOURS else root / label
            folder.mkdir(parents=True, exist_ok=True)
            colour = COLOURS.get(label) or COLOURS[("horse", "zebra")[label.endswith("B")]]
            for k in range(n):  # no split word ("test", "train") in the file names
                Image.new("RGB", (40, 40), colour).save(folder / f"img{k}.png")
    return root


def side(sample: torch.Tensor) -> str:
    """Which label's colour a [-1, 1] sample tensor has."""
    r, g, b = sample.mean((1, 2)).tolist()
    return "horse" if r > b and r > g else "zebra" if b > g else "cat"


def test_an_image_folder_with_labels_trains_unpaired_on_two_labels(tmp_path):
    from img2img.data import Augment

    root = labelled_folder(tmp_path / "h2z", {
        "train": {"horse": 3, "zebra": 2}, "test": {"horse": 1, "zebra": 1},
    })  # fmt: skip
    args = ("cyclegan", "AtoB", Augment(36, 32, True), 0, 2)
    train_set, val_set, real = hf_train.open_hf_datasets(f"hf:{root}", *args)
    assert (len(train_set.a), len(train_set.b), real) == (3, 2, False)
    for i in range(len(train_set)):
        x = train_set[(0, i)]
        assert (side(x["A"]), side(x["B"])) == ("horse", "zebra")
    assert (len(val_set.a), len(val_set.b)) == (1, 1)  # the test split's two labels
    v = val_set[0]
    assert (side(v["A"]), side(v["B"])) == ("horse", "zebra")
    swapped, _, _ = hf_train.open_hf_datasets(f"hf:{root}", "cyclegan", "BtoA", *args[2:])
    assert side(swapped[(0, 0)]["A"]) == "zebra" and len(swapped.a) == 2
    import pickle  # exact resume and loader workers: pure functions of the key, picklable

    copy = pickle.loads(pickle.dumps(train_set))
    assert torch.equal(copy[(1, 2)]["B"], train_set[(1, 2)]["B"])
    with pytest.raises(errors.DatasetError, match="labelled images.*no pairs"):
        hf_train.open_hf_datasets(f"hf:{root}", "pix2pix", *args[1:])


def test_a_berkeley_folder_read_as_an_image_folder_and_labels_chosen(tmp_path):
    from img2img.data import Augment

    aug = Augment(36, 32, False)
    berkeley = labelled_folder(tmp_path / "b", {
        "train": {"trainA": 2, "trainB": 3}, "test": {"testA": 1, "testB": 2},
    })  # fmt: skip
    labels = hf.features_of(hf.load_split(hf.find_source(str(berkeley)), "train", False))
    assert labels["label"].names == ["testA", "testB", "trainA", "trainB"]  # one train split
    train_set, val_set, _ = hf_train.open_hf_datasets(f"hf:{berkeley}", "cyclegan", "AtoB",
                                                      aug, 0, 5)  # fmt: skip
    assert (len(train_set.a), len(train_set.b)) == (2, 3)  # trainA / trainB, never the tests
    assert (len(val_set.a), len(val_set.b)) == (1, 2)  # testA / testB of the same split
    three = labelled_folder(tmp_path / "three", {"train": {"horse": 1, "zebra": 2, "cat": 2}})
    with pytest.raises(errors.DatasetError, match=r"3 labels \['cat', 'horse', 'zebra'\].*--hf"):
        hf_train.open_hf_datasets(f"hf:{three}", "cyclegan", "AtoB", aug, 0, 0)
    picked, none, _ = hf_train.open_hf_datasets(f"hf:{three}", "cyclegan", "AtoB", aug, 0, 0,
                                                labels="cat,zebra")  # fmt: skip
    assert none is None and (side(picked[0]["A"]), side(picked[0]["B"])) == ("cat", "zebra")
    with pytest.raises(errors.DatasetError, match="no label 'dog'.*'cat'"):
        hf_train.open_hf_datasets(f"hf:{three}", "cyclegan", "AtoB", aug, 0, 0, labels="dog,cat")
    with pytest.raises(errors.DatasetError, match="--hf-labels takes two different label"):
        hf_train.open_hf_datasets(f"hf:{three}", "cyclegan", "AtoB", aug, 0, 0, labels="cat")
    from img2img.training.config import resolve

    with pytest.raises(errors.ConfigError, match="--hf-labels applies"):
        resolve("cyclegan", {"data": "d", "out": "r", "hf_labels": "a,b"}, None)
