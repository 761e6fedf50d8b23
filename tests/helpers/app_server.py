"""Start `python app.py` as a user would, on a free loopback port, for the app tests."""

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

from helpers.catalog import HUGGAN, RESNET, UNET
from helpers.paths import ROOT

# The reference fixture each kind of catalog entry gets: IMG2IMG_WEIGHTS_DIR/<id>/<file>.
FIXTURE_WEIGHTS = {
    HUGGAN.id: "huggan_unet_div8.pytorch_model.bin",
    UNET.id: "junyanz_unet256_batch_ngf8.pth",
    RESNET.id: "junyanz_resnet9_instance_ngf8.pth",
    RESNET.reverse: "junyanz_resnet9_instance_ngf8.legacy.pth",  # the pair's other half
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_fixture_weights(weights: Path, fixtures: Path) -> None:
    """Reference checkpoints placed under IMG2IMG_WEIGHTS_DIR/<id>/ (what a deployer does)."""
    for model_id, name in FIXTURE_WEIGHTS.items():
        (weights / model_id).mkdir(parents=True, exist_ok=True)
        (weights / model_id / name).write_bytes((fixtures / name).read_bytes())


def app_env(tmp: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "IMG2IMG_"))}
    env.update(
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_OFFLINE="1",  # the tests never reach the network
        HF_HOME=str(tmp / "hf"),
        IMG2IMG_WEIGHTS_DIR=str(tmp / "weights"),
        IMG2IMG_EXAMPLES_DIR=str(tmp / "examples"),
        GRADIO_TEMP_DIR=str(tmp / "gradio"),
        TMPDIR=str(tmp / "tmp"),  # the app's own outputs (download files) land here
    )
    (tmp / "tmp").mkdir(parents=True, exist_ok=True)
    env.update(extra)
    return env


@dataclass
class AppProcess:
    url: str
    startup_s: float  # from process start until the page answered
    pid: int

    def __iter__(self):  # `url, startup_s = app` unpacking
        return iter((self.url, self.startup_s))


@contextmanager
def running_app(env: dict[str, str], timeout: float = 90) -> Iterator[AppProcess]:
    """Starts `python app.py`, yields once it answers, stops the server afterwards."""
    url = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}"
    log = Path(env["IMG2IMG_WEIGHTS_DIR"]).parent / "app.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"app.py did not answer in {timeout}s:\n{log.read_text()}")
            time.sleep(0.2)
        yield AppProcess(url, time.perf_counter() - start, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
