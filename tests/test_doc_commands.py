"""Every command block of README.md and docs/*.md runs as written, offline.

A fenced block labelled bash / sh / console / python is a command block. Its info string
says how the test runs it (GitHub shows only the language; the rest is for this test):

    ```bash                     runs to the end: `bash -e`, exit 0
    ```bash doc-test=starts     each command runs until it shows it works (the app answers,
                                pytest has collected, a training bar is drawn), then it is
                                stopped (SIGTERM; train.py finishes its step, saves and
                                exits 0; torchrun is killed), or runs to its end
    ```python doc-test=app      runs to the end while the app of a `starts` block serves
    ```bash doc-test=skip (why) not run; the reason is required and shown

Shell blocks run in a copy of the checkout (its tracked and unignored files) whose `.venv`
is what `make run` builds: a virtualenv seeing the suite's packages with the copy installed
editable and `--no-deps` (the Makefile's own line). Python blocks run in another folder:
the package works from anywhere once installed. What a block needs from the network comes
from loopback fakes (Hub: HF_ENDPOINT; Berkeley weights and datasets: IMG2IMG_URL_MIRROR,
IMG2IMG_DATASET_MIRROR) serving the small reference checkpoints and generated datasets; the
files a block names (photo.jpg, latest_net_G.pth, ~/Downloads/...) are small generated ones.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers.catalog import mirror_path
from helpers.datasets import aligned_files, jpeg, tar_gz, unaligned_files, zip_bytes
from helpers.env import clean_env
from helpers.images import random_image
from helpers.lerobot import make_dataset
from helpers.paths import FIXTURES, ROOT
from helpers.servers import FakeHub, FileServer, serving
from helpers.venvs import pip_install, suite_venv
from helpers.videos import make_clip

from img2img import save_pretrained
from img2img.checkpoints.catalog import load_catalog
from img2img.models import ResnetGenerator

pytestmark = pytest.mark.slow

LANGUAGES = ("bash", "sh", "console", "python")
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```", re.M | re.S)
MODE = re.compile(r"doc-test=(\w+)(?:\s*\((.*)\))?")
# What "it works" looks like for a command that would run for hours or serve forever.
# A training bar drawn (`train:   0%| | 0/400000 [`): data fetched, nets built, steps begin.
READY = re.compile(r"Running on local URL|collected \d+ items|train:.*\| *\d+/\d+ \[")
APP_PORT = 7860  # what the README's API example connects to
TIMEOUT = 600  # seconds, for one command to end or show it works


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    mode: str  # run / starts / app / skip
    reason: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def command_blocks() -> list[Block]:
    blocks = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if m.group(1) not in LANGUAGES:
                continue
            mode = MODE.search(m.group(2))
            line = text[: m.start()].count("\n") + 1
            name = str(page.relative_to(ROOT))
            mode, reason = (mode.group(1), mode.group(2) or "") if mode else ("run", "")
            blocks.append(Block(name, line, m.group(1), mode, reason, m.group(3)))
    return blocks


BLOCKS = command_blocks()
RAN: dict[str, str] = {}  # block id -> how it ended ("ran", or why not)


def test_every_command_block_says_how_it_runs():
    assert len(BLOCKS) >= 8, "the README and docs have command blocks"
    wrong = [b.id for b in BLOCKS if b.mode not in ("run", "starts", "app", "skip")]
    assert not wrong, f"unknown doc-test= mode in {wrong}"
    bare = [b.id for b in BLOCKS if b.mode == "skip" and not b.reason.strip()]
    assert not bare, f"doc-test=skip needs a reason in parentheses: {bare}"
    assert all(b.language != "python" or b.mode != "starts" for b in BLOCKS)


def test_no_command_hides_in_an_unlabelled_block():
    """A block without a language is a file tree or output: a command there would not run."""
    starts = (".venv/", "make ", "python", "img2img ", "pip ", "torchrun ", "HF_", "IMG2IMG_")
    hidden = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for m in FENCE.finditer(page.read_text(encoding="utf-8")):
            if m.group(1) in ("", "text") and any(
                line.startswith(starts) for line in m.group(3).splitlines()
            ):
                hidden.append(f"{page.relative_to(ROOT)}: {m.group(3).splitlines()[0]}")
    assert not hidden, f"label these blocks bash or python: {hidden}"


# ------------------------------------------------------------------------------ sandbox


def _copy_checkout(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)


def _make_venv(checkout: Path) -> None:
    """What `make run` leaves: .venv with the requirements (here: the suite's packages, seen
    through a .pth) and the checkout installed editable without dependencies."""
    venv = checkout / ".venv"
    python, _ = suite_venv(venv)
    pip_install(python, "--no-deps", "--no-build-isolation", "-e", str(checkout))
    # The requirements' own commands (torchrun, pytest), as pip writes them into a venv.
    for script in Path(sys.executable).parent.iterdir():
        head = script.read_bytes()[:200] if script.is_file() else b""
        if (
            head.startswith(f"#!{sys.executable}\n".encode())
            and not (venv / "bin" / script.name).exists()
        ):
            body = script.read_text().split("\n", 1)[1]
            (venv / "bin" / script.name).write_text(f"#!{python}\n{body}")
            (venv / "bin" / script.name).chmod(0o755)
    for stamp in (".runtime", ".installed"):  # make: the install is done
        (venv / stamp).touch()


def _weights_server_files() -> dict[str, bytes]:
    """Every catalog URL checkpoint, as the reference checkpoint of its architecture."""
    by_arch = {
        "unet": (FIXTURES / "junyanz_unet256_batch_ngf8.pth").read_bytes(),
        "resnet": (FIXTURES / "junyanz_resnet9_instance_ngf8.pth").read_bytes(),
    }
    files = {}
    for entry in load_catalog().values():
        arch = entry.architecture.get("architecture")
        if entry.sources and entry.sources[0].type == "url" and arch in by_arch:
            files[mirror_path(entry)] = by_arch[arch]
    return files


def _dataset_files() -> dict[str, bytes]:
    facades = aligned_files("facades") | {
        f"facades/test/{i}.jpg": jpeg(random_image(64, 32, seed=200 + i)) for i in range(2)
    }
    return {
        "pix2pix/datasets/facades.tar.gz": tar_gz(facades),
        "cyclegan/datasets/horse2zebra.zip": zip_bytes(unaligned_files("horse2zebra")),
        "cyclegan/datasets/maps.zip": zip_bytes(unaligned_files("maps")),
    }


def _inputs(folder: Path) -> None:
    """The files the blocks name, small."""
    for name in ("photo.jpg", "horse.jpg", "big.jpg"):
        random_image(72, 48, seed=len(name)).save(folder / name)
    (folder / "more").mkdir(exist_ok=True)
    random_image(40, 40).save(folder / "more" / "one.png")
    shutil.copy(FIXTURES / "junyanz_unet256_batch_ngf8.pth", folder / "latest_net_G.pth")
    make_clip(folder / "clip.mp4", frames=4, size=(32, 32), audio=False)
    make_dataset(folder / "my_dataset", "v2.1")  # a LeRobot dataset (docs/media.md)
    _image_rows({"trainA": ["image"], "trainB": ["image"]}).save_to_disk(folder / "h2z_saved")


def _image_rows(splits: dict[str, list[str]], rows: int = 4):
    """A datasets.DatasetDict: per split, `rows` rows of small images in the named columns."""
    import datasets

    features = None
    out = {}
    for split, columns in splits.items():
        table = {c: [random_image(40, 40, seed=k + 10 * j) for k in range(rows)]
                 for j, c in enumerate(columns)}  # fmt: skip
        features = datasets.Features({c: datasets.Image() for c in columns})
        out[split] = datasets.Dataset.from_dict(table, features=features)
    return datasets.DatasetDict(out)


def _hub_datasets(tmp: Path) -> dict[tuple[str, str], bytes]:
    """Dataset repos on the fake Hub, as parquet: HugGAN's paired columns, and named ones."""
    files = {}
    for repo, columns in (
        ("huggan/facades", ["imageA", "imageB"]),
        ("me/pairs", ["sketch", "photo"]),
    ):
        path = tmp / (repo.replace("/", "-") + ".parquet")
        _image_rows({"train": columns})["train"].to_parquet(path)
        files[(f"datasets/{repo}", "data/train-00000-of-00001.parquet")] = path.read_bytes()
    return files


@dataclass
class Sandbox:
    checkout: Path
    elsewhere: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("doc-commands")
    checkout, elsewhere, home = tmp / "img2img", tmp / "elsewhere", tmp / "home"
    for folder in (checkout, elsewhere, home / "Downloads"):
        folder.mkdir(parents=True)
    _copy_checkout(checkout)
    _make_venv(checkout)
    _inputs(checkout)
    _inputs(elsewhere)
    torch.manual_seed(0)
    save_pretrained(ResnetGenerator(ngf=8, n_blocks=2), checkout / "runs/n2d/weights/A2B")
    resnet = FIXTURES / "junyanz_resnet9_instance_ngf8.pth"
    shutil.copy(resnet, home / "Downloads" / "horse2zebra.pth")
    hub_files = _hub_datasets(tmp)
    with (
        serving(FakeHub(hub_files)) as hub,
        serving(FileServer(_weights_server_files())) as weights,
    ):
        with serving(FileServer(_dataset_files())) as datasets:
            env = clean_env(
                HOME=str(home),
                HF_HOME=str(tmp / "hf"),
                HF_ENDPOINT=hub.url,
                HF_TOKEN="hf_doc_test",
                HF_HUB_DISABLE_TELEMETRY="1",
                IMG2IMG_URL_MIRROR=weights.url,
                IMG2IMG_DATASET_MIRROR=datasets.url,
                IMG2IMG_FIXTURES=str(FIXTURES),
                IMG2IMG_PROBE_TIMEOUT="0.5",
                GRADIO_ANALYTICS_ENABLED="False",
                OMP_NUM_THREADS="1",
                MKL_NUM_THREADS="1",
            )
            env.pop("VIRTUAL_ENV", None)
            yield Sandbox(checkout, elsewhere, env)


# ------------------------------------------------------------------------------ running


def _commands(block: Block) -> list[str]:
    """A shell block's commands, one per line (a trailing backslash continues it)."""
    lines = block.code.splitlines()
    if block.language == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    commands, current = [], ""
    for line in lines:
        current += line
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip():
            commands.append(current)
        current = ""
    return commands


def _run_python(block: Block, box: Sandbox) -> None:
    script = box.elsewhere / f"block_{block.line}.py"
    script.write_text(block.code)
    python = box.checkout / ".venv" / "bin" / "python"
    done = subprocess.run(
        [python, script.name], cwd=box.elsewhere, env=box.env,
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, f"{block.id} failed:\n{done.stderr[-3000:]}"
    RAN[block.id] = "ran"


def _start(command: str, box: Sandbox, log: Path) -> tuple[subprocess.Popen, bool]:
    """Run `command` until it ends (False) or shows it works (True, still running)."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["bash", "-e", "-c", command], cwd=box.checkout, env=box.env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + TIMEOUT
    while proc.poll() is None:
        if READY.search(log.read_text(errors="replace").replace("\r", "\n")):
            return proc, True
        if time.monotonic() > deadline:
            _kill(proc)
            pytest.fail(f"{command!r} neither ended nor showed it works in {TIMEOUT} s:\n"
                        f"{log.read_text()[-3000:]}")  # fmt: skip
        time.sleep(0.2)
    assert proc.returncode == 0, f"{command!r} failed:\n{log.read_text()[-3000:]}"
    return proc, False


def _stop(proc: subprocess.Popen, group: bool = True) -> int:
    """SIGTERM to the command's process group (make and the app it runs), or to the command
    alone (`kill PID`: torchrun forwards it to its ranks once; train.py tells its loader
    workers), then wait; whatever is left of the group is killed."""
    below = _descendants(proc.pid)  # killed at the end, wherever their process group is
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return proc.kill() or proc.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in below:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (torchrun's ranks leave its process group)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill(proc: subprocess.Popen) -> int:
    """SIGKILL to the command and everything below it (torchrun, its ranks, loader workers)."""
    for pid in [*_descendants(proc.pid), proc.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=60)


def _serves(code: str) -> bool:
    return "make run" in code or "app.py" in code


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _run_started(block: Block, box: Sandbox, tmp_path: Path) -> None:
    for i, command in enumerate(_commands(block)):
        if _serves(command) and not _port_free(APP_PORT):
            RAN[block.id] = f"port {APP_PORT} taken"
            pytest.skip(f"port {APP_PORT} is taken: {command!r} serves the app there")
        log = tmp_path / f"command{i}.log"
        proc, running = _start(command, box, log)
        if not running:
            continue
        # train.py is stopped as a user would (SIGTERM: it finishes the step, saves and exits
        # 0; a later --resume continues it). torchrun forwards SIGTERM to its ranks but kills
        # them 30 s later, less than a full-size step of 4 ranks on 2 CPU cores: it only has
        # to start, and is killed once its bar shows (tests/test_train_ddp.py stops and
        # resumes torchrun runs).
        torchrun = "torchrun" in command
        try:
            if "Running on local URL" in log.read_text(errors="replace"):
                for app_block in (b for b in BLOCKS if b.mode == "app"):
                    _run_python(app_block, box)
        finally:
            code = _kill(proc) if torchrun else _stop(proc, group="train.py" not in command)
        if "train.py" in command and not torchrun:
            text = log.read_text(errors="replace")
            clean = "stopped by SIGTERM at step" in text and code == 0
            assert clean, f"{command!r} did not stop cleanly (rc {code}):\n{text[-3000:]}"
    RAN[block.id] = "ran"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_command_block_runs_as_written(block: Block, sandbox: Sandbox, tmp_path: Path):
    if block.mode == "skip":
        RAN[block.id] = block.reason
        pytest.skip(f"{block.id}: {block.reason}")
    if block.mode == "app":
        starts = [b for b in BLOCKS if b.mode == "starts" and _serves(b.code)]
        assert starts, f"{block.id} needs a doc-test=starts block that serves the app"
        if RAN.get(starts[0].id) != "ran":
            pytest.skip(
                f"{block.id} runs inside {starts[0].id}: {RAN.get(starts[0].id, 'not run')}"
            )
        assert RAN.get(block.id) == "ran", f"{block.id} did not run inside {starts[0].id}"
        return
    if block.language == "python":
        _run_python(block, sandbox)
    elif block.mode == "starts":
        _run_started(block, sandbox, tmp_path)
    else:
        done = subprocess.run(
            ["bash", "-e", "-c", block.code], cwd=sandbox.checkout, env=sandbox.env,
            capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip
        assert done.returncode == 0, f"{block.id} failed:\n{done.stderr[-3000:]}"
        RAN[block.id] = "ran"


def test_every_block_ran_or_says_why():
    """Last: with the whole file run, every block ran, or carries its skip reason."""
    if len(RAN) < len(BLOCKS):
        pytest.skip("run the whole file to check every block")
    not_run = {b.id: RAN[b.id] for b in BLOCKS if RAN[b.id] != "ran" and b.mode != "skip"}
    assert not not_run, not_run
