"""Faults survived: downloads cut mid-file, a training run SIGKILLed while it saves, a full
disk, dataset archives cut short and corrupt training images.

Each fault is injected for real: the loopback fake Hub / file server drop connections
(`drops`), `IMG2IMG_TEST_KILL_IN_SAVE=N` makes train.py SIGKILL itself halfway through its
N-th checkpoint write, and RLIMIT_FSIZE (with SIGXFSZ ignored) makes writes beyond a size fail
with EFBIG, as a full disk fails them with ENOSPC. Commands run in subprocesses, as a user's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest
import torch
from helpers.catalog import HUGGAN, RESNET, hub_file, hub_source_text, mirror_path
from helpers.datasets import aligned_files, tar_gz, unaligned_files, write_files, zip_bytes
from helpers.servers import FakeHub, FileServer, serving
from helpers.train_proc import finish, one_line_error, run, start, train_cmd, user_env

from img2img import data, load_generator
from img2img.checkpoints.download import download
from img2img.errors import DatasetError
from img2img.models import UNetGenerator
from img2img.training import checkpoint as ckpt

TINY = ["--seed", "0", "--ngf", "8", "--ndf", "8", "--workers", "0", "--log-every", "1"]

RESOLVE = """
import json, sys
from img2img.checkpoints import hub
from img2img.errors import Img2ImgError
try:
    print(json.dumps({"path": str(hub.resolve(sys.argv[1], progress=False))}))
except Img2ImgError as e:
    print(json.dumps({"error": str(e), "type": type(e).__name__}))
"""


def resolve_cmd(model_id: str) -> list[str]:
    return [sys.executable, "-c", RESOLVE, model_id]


def answer(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_steps(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines if json.loads(line)["kind"] == "train"]


# --- downloads cut mid-file, through hub.resolve -----------------------------------------


@pytest.mark.slow
def test_downloads_cut_mid_file_are_retried_and_resumable(fixtures, tmp_path):
    """Hub (hf_hub_download) and Berkeley URL sources whose server drops the connection
    mid-file: one drop is survived (huggingface_hub retries; download() resumes with a Range
    request); a connection that keeps dropping gives a clear error naming the source; the
    user's next run then succeeds (the URL one continuing from the bytes kept). The two
    scenarios run side by side: they mostly wait out retry back-offs."""
    hub_data = (fixtures / "huggan_unet_div8.pytorch_model.bin").read_bytes()
    url_data = (fixtures / "junyanz_resnet9_instance_ngf8.legacy.pth").read_bytes()
    url_path = mirror_path(RESNET)
    cut = 100_000
    with (
        serving(FakeHub({hub_file(HUGGAN): hub_data})) as hub,
        serving(FileServer({url_path: url_data})) as berkeley,
    ):
        env = user_env(
            HF_HOME=str(tmp_path / "hf"),
            IMG2IMG_WEIGHTS_DIR=str(tmp_path / "weights"),
            HF_ENDPOINT=hub.url,
            IMG2IMG_URL_MIRROR=berkeley.url,
        )
        # 1. Every attempt is cut: huggingface_hub retries 5 times, download() 3 times.
        hub.drops, berkeley.drops = [cut] * 6, [cut] * 4
        procs = [start(resolve_cmd(m), env) for m in (HUGGAN.id, RESNET.id)]
        (hub_rc, hub_out, hub_err), (url_rc, url_out, url_err) = map(finish, procs)
        assert hub_rc == 0 and url_rc == 0, hub_err + url_err
        hub_fail, url_fail = answer(hub_out), answer(url_out)
        assert hub_fail["type"] == url_fail["type"] == "WeightsUnavailableError"
        assert f"{hub_source_text(HUGGAN)}: RemoteProtocolError" in hub_fail["error"]
        assert "Trying to resume download" in hub_err  # huggingface_hub's own retries
        assert f"{berkeley.url}/{url_path}: failed after 4 attempts" in url_fail["error"]
        assert f"({4 * cut} bytes kept to resume)" in url_fail["error"]
        assert not list((tmp_path / "hf").rglob("snapshots/*/pytorch_model.bin"))
        gets = len(hub.gets()), len(berkeley.gets())
        assert gets == (6, 4)
        # 2. The next run, over a connection that drops once more: both complete.
        hub.drops, berkeley.drops = [cut], [cut]
        procs = [start(resolve_cmd(m), env) for m in (HUGGAN.id, RESNET.id)]
        (hub_rc, hub_out, hub_err), (url_rc, url_out, url_err) = map(finish, procs)
        assert hub_rc == 0 and url_rc == 0, hub_err + url_err
        assert Path(answer(hub_out)["path"]).read_bytes() == hub_data
        url_file = Path(answer(url_out)["path"])
        assert url_file.read_bytes() == url_data
        assert (url_file.parent / (url_file.name + ".sha256")).read_text().split()[0] == (
            hashlib.sha256(url_data).hexdigest()
        )
        ranges = [h.get("Range") for _, _, h in berkeley.gets()[gets[1] :]]
        assert ranges == [f"bytes={4 * cut}-", f"bytes={5 * cut}-"]  # continued, twice
        assert len(hub.gets()) == gets[0] + 2  # one cut, one complete transfer
    assert load_generator(url_file).config["architecture"] == "resnet"


# --- training: SIGKILL while saving, full disk ---------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two identical pix2pix runs of 4 steps, saving every 2, started side by side: one runs
    through; the other is SIGKILLed halfway through writing its second checkpoint."""
    tmp = tmp_path_factory.mktemp("runs")
    root = write_files(tmp, aligned_files("facades"))
    common = ["pix2pix", "--data", str(root / "facades"), *TINY, "--save-every", "2"]
    straight, killed = tmp / "straight", tmp / "killed"
    procs = [
        start(train_cmd(*common, "--out", str(straight), "--steps", "4"), user_env()),
        start(
            train_cmd(*common, "--out", str(killed), "--steps", "4"),
            user_env(**{ckpt.KILL_IN_SAVE: "2"}),
        ),
    ]
    (rc, _, err), (killed_rc, _, killed_err) = map(finish, procs)
    assert rc == 0, err[-3000:]
    assert killed_rc == -signal.SIGKILL, killed_err[-3000:]
    return straight, killed


@pytest.mark.slow
def test_killed_while_saving_keeps_the_previous_checkpoint_and_resumes_exactly(runs):
    straight, killed = runs
    path = ckpt.checkpoint_path(killed)
    assert ckpt.load_checkpoint(path)["progress"]["step"] == 2  # the previous one, intact
    [half] = path.parent.glob(f".{ckpt.LAST}.*.tmp")  # what the kill left behind
    assert 0 < half.stat().st_size < path.stat().st_size
    with pytest.raises(Exception, match="cannot read the training checkpoint"):
        ckpt.load_checkpoint(half)
    assert train_steps(killed) == [1, 2, 3, 4]  # logged before the kill
    rc, out, err = run(train_cmd("pix2pix", "--out", str(killed), "--resume"), user_env())
    assert rc == 0, err[-3000:]
    assert "step 2 -> 4" in out
    assert list(path.parent.iterdir()) == [path]  # the half-written file is gone
    assert ckpt.load_checkpoint(path)["progress"]["step"] == 4
    weights = "weights/G/model.safetensors"
    assert (killed / weights).read_bytes() == (straight / weights).read_bytes()  # nothing lost
    assert train_steps(killed) == [1, 2, 3, 4]  # steps 3-4 logged once, not twice
    steps = [json.loads(x)["step"] for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps.count(4) == 2  # the train and the val record of step 4, once each


@pytest.mark.slow
def test_full_disk_while_saving_is_one_clear_line_and_resume_works(runs, tmp_path):
    straight, _ = runs
    run_dir = tmp_path / "run"
    shutil.copytree(straight, run_dir)  # a run at step 4, checkpoint and exports saved
    path = ckpt.checkpoint_path(run_dir)
    before = sha(path), sha(run_dir / "weights/G/model.safetensors")
    limit = path.stat().st_size // 2  # the checkpoint no longer fits; the logs still do
    more = train_cmd("pix2pix", "--out", str(run_dir), "--resume", "--steps", "6")
    rc, _, err = run(more, user_env(), max_file_bytes=limit)
    assert rc == 2
    assert one_line_error(rc, err) == (
        f"error: cannot write the training checkpoint {path}: File too large; "
        "the previous checkpoint is unchanged"
    )
    assert list(path.parent.iterdir()) == [path]  # no half-written file, nothing replaced
    assert (sha(path), sha(run_dir / "weights/G/model.safetensors")) == before
    assert ckpt.load_checkpoint(path)["progress"]["step"] == 4
    assert load_generator(run_dir / "weights/G").config["architecture"] == "unet"
    rc, out, err = run(more, user_env())  # space again: the same command continues
    assert rc == 0, err[-3000:]
    assert "step 4 -> 6" in out
    assert ckpt.load_checkpoint(path)["progress"]["step"] == 6
    assert train_steps(run_dir) == [1, 2, 3, 4, 5, 6]


FULL_DISK = """
import json, resource, signal, sys, torch
from pathlib import Path
from img2img import save_pretrained
from img2img.data import fetch_dataset
from img2img.checkpoints.download import download
from img2img.errors import Img2ImgError
from img2img.models import UNetGenerator
out, url, dest, data_root = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
save_pretrained(UNetGenerator(ngf=8), out)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))  # disk full
errors = []
for write in (
    lambda: save_pretrained(UNetGenerator(ngf=8), out),
    lambda: download(f"{url}/g.pth", dest, progress=False),
    lambda: fetch_dataset("facades", "pix2pix", data_root, url, progress=False),
):
    try:
        write()
        errors.append(None)
    except Img2ImgError as e:
        errors.append(str(e))
print(json.dumps(errors))
"""


@pytest.mark.slow
def test_full_disk_in_save_pretrained_downloads_and_unpacking(tmp_path):
    """save_pretrained keeps the previous export; a download stops at once (no retries)
    naming its partial file, and continues from it once there is space; a dataset that does
    not fit while unpacking keeps its (good) archive for the next run."""
    payload = os.urandom(300_000)
    big_member = {"facades/notes.bin": bytes(1_000_000)}  # compresses to ~1 kB
    archive = tar_gz({**aligned_files("facades"), **big_member})
    files = {"g.pth": payload, "pix2pix/datasets/facades.tar.gz": archive}
    out, dest, data_root = tmp_path / "G", tmp_path / "cache" / "g.pth", tmp_path / "data"
    with serving(FileServer(files)) as server:
        args = [sys.executable, "-c", FULL_DISK, str(out), server.url, str(dest), str(data_root)]
        rc, stdout, err = run(args, user_env())
        assert rc == 0, err
        saved, downloaded, unpacked = json.loads(stdout)
        assert saved.startswith(f"cannot write {out / 'model.safetensors'}: ")
        assert "File too large" in saved and "any previous version is unchanged" in saved
        assert (
            downloaded == f"cannot write {dest}.part: File too large (100000 bytes kept to resume)"
        )
        assert [path for _, path, _ in server.gets()].count("/g.pth") == 1  # not retried
        assert download(f"{server.url}/g.pth", dest, progress=False).read_bytes() == payload
        assert server.gets()[-1][2].get("Range") == "bytes=100000-"
        cached = data_root / "archives" / "pix2pix" / "facades.tar.gz"
        assert unpacked.startswith(f"cannot unpack {cached} into ") and "corrupt" not in unpacked
        assert unpacked.endswith(": File too large") and cached.is_file()
        n = len(server.gets())
        root = data.fetch_dataset("facades", "pix2pix", str(data_root), server.url)
        assert len(server.gets()) == n and (root / "notes.bin").stat().st_size == 1_000_000
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in out.iterdir())  # ordinary files
    torch.manual_seed(0)
    first = UNetGenerator(ngf=8).state_dict()
    loaded = load_generator(out).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in first.items())  # the first save, whole


# --- datasets: archives cut short, corrupt images --------------------------------------------


@pytest.mark.parametrize(
    "name, archive",
    [
        ("pix2pix/datasets/facades.tar.gz", tar_gz(aligned_files("facades"))),
        ("cyclegan/datasets/horse2zebra.zip", zip_bytes(unaligned_files("horse2zebra"))),
    ],
)
def test_archive_cut_short_is_named_deleted_and_fetched_again(tmp_path, name, archive):
    """The server sends a truncated archive as if it were whole (a broken mirror, or a
    connection closed without Content-Length): the error names the archive, the archive is
    deleted, and the next run downloads it again."""
    family = "pix2pix" if name.endswith(".tar.gz") else "cyclegan"
    dataset = Path(name).name.split(".")[0]
    files = {name: archive[: len(archive) * 2 // 3]}
    with serving(FileServer(files)) as server:
        with pytest.raises(DatasetError) as e:
            data.fetch_dataset(dataset, family, str(tmp_path), server.url, progress=False)
        cached = tmp_path / "archives" / family / Path(name).name
        message = str(e.value)
        assert message.startswith(f"cannot unpack {cached} (corrupt archive?): ")
        assert message.endswith("(the archive was deleted: run again to download it)")
        assert "\n" not in message and "method gz" not in message  # one line, about a zip
        assert not cached.exists() and not (tmp_path / family / dataset).exists()
        assert not list((tmp_path / family).glob(".*"))  # no temporary extraction left
        files[name] = archive  # the mirror is fixed
        root = data.fetch_dataset(dataset, family, str(tmp_path), server.url, progress=False)
        assert len(server.gets()) == 2 and data.detect_layout(root).train


@pytest.mark.slow
def test_archive_holding_a_corrupt_image_stops_train_py_with_its_name(tmp_path):
    """Chosen behaviour: the archive unpacks (it is a valid archive); the corrupt image is an
    error naming the unpacked file when training reaches it (a silent skip would change the
    data), with loader workers too: one line, not the worker's traceback. Exit status 2."""
    files = aligned_files("facades")
    files["facades/train/1.jpg"] = files["facades/train/1.jpg"][:600]  # a JPEG cut short
    with serving(FileServer({"pix2pix/datasets/facades.tar.gz": tar_gz(files)})) as server:
        args = ["pix2pix", "--dataset", "facades", "--dataset-url-base", server.url, *TINY]
        args += ["--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "r")]
        args[args.index("--workers") + 1] = "1"
        rc, _, err = run(train_cmd(*args, "--steps", "4"), user_env())
    bad = tmp_path / "data" / "pix2pix" / "facades" / "train" / "1.jpg"
    assert rc == 2
    assert one_line_error(rc, err).startswith(f"error: cannot read training image {bad}: ")
