"""`python app.py` on a loopback port with random-init weights, for the app benchmarks.

What they measure is the server (decode, queue, pre/post-processing, encode, HTTP), not the
weights: each model gets a random generator of its catalog architecture, saved as a classic
.pth under IMG2IMG_WEIGHTS_DIR/<id>/ as a deployer drops a checkpoint in. The app inherits
the caller's environment (so IMG2IMG_PLAN and friends can be tried), made offline, with
everything it writes kept under one folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from img2img.checkpoints.catalog import get_entry
from img2img.models import build_generator

ROOT = Path(__file__).resolve().parents[1]


def random_weights(weights: Path, model_ids: list[str], ngf: int | None = None) -> None:
    """weights/<id>/latest_net_G.pth per id: the catalog's architecture (with `ngf` if given,
    a smaller net where compute would drown what is measured), random init, seed 0."""
    for model_id in model_ids:
        config = dict(get_entry(model_id).architecture)
        if ngf is not None:
            config["ngf"] = ngf
        torch.manual_seed(0)
        (weights / model_id).mkdir(parents=True, exist_ok=True)
        torch.save(build_generator(config).state_dict(), weights / model_id / "latest_net_G.pth")


@dataclass
class App:
    url: str
    pid: int  # of the server process, for its RSS
    startup_s: float  # from `python app.py` until its page answered


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as page:
            return page.status == 200
    except OSError:
        return False


@contextmanager
def serve(folder: Path, timeout: float = 120, **env: str) -> Iterator[App]:
    """Runs the app on `folder`/weights until the block ends. It writes uploads to gradio/,
    its outputs to tmp/ and its log to app.log under `folder`; `env` adds variables."""
    with socket.socket() as s:  # a free port: bind to 0, read it back
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (folder / "tmp").mkdir(parents=True, exist_ok=True)
    paths = {"HF_HOME": "hf", "IMG2IMG_WEIGHTS_DIR": "weights", "IMG2IMG_EXAMPLES_DIR": "examples"}
    paths |= {"GRADIO_TEMP_DIR": "gradio", "TMPDIR": "tmp"}
    full = {**os.environ, **{k: str(folder / v) for k, v in paths.items()}}
    full |= {"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    full |= {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", **env}
    url, log = f"http://127.0.0.1:{port}", folder / "app.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=full, stdout=out, stderr=out
        )
    try:
        while not _answers(url):
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode}; see {log}")
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"app.py did not answer within {timeout} s; see {log}")
            time.sleep(0.2)
        yield App(url, proc.pid, time.perf_counter() - start)
    finally:
        proc.kill()  # the measurements are taken: nothing of the server's is worth a clean stop
        proc.wait()
