"""Start `python app.py` as a user would, on a free loopback port, for the app tests; call
its events over raw HTTP as any client (a browser, or an attacker) can.

A server takes 5-17 s to start on 2 cores, and its first request (torch imported, models
loaded and converted) as long again, so the modules that need the same one share it:
`AppServers` (the session fixture `app_servers` in conftest.py) starts one per key, the
folder layout and the environment asked for, on first use and stops them all at the end of
the session. Modules with an environment of their own (a fake Hub, low caps, ZeroGPU) ask
for a key nobody else does, or keep their own `running_app`."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers.catalog import HUGGAN, RESNET, UNET, first
from helpers.env import clean_env
from helpers.paths import ROOT

# The reference fixture each kind of catalog entry gets: IMG2IMG_WEIGHTS_DIR/<id>/<file>.
FIXTURE_WEIGHTS = {
    HUGGAN.id: "huggan_unet_div8.pytorch_model.bin",
    UNET.id: "junyanz_unet256_batch_ngf8.pth",
    RESNET.id: "junyanz_resnet9_instance_ngf8.pth",
    RESNET.reverse: "junyanz_resnet9_instance_ngf8.legacy.pth",  # the pair's other half
}


# Catalog models the standard layout gives a corrupt file, or nothing, under IMG2IMG_WEIGHTS_DIR.
CORRUPT = first(lambda e: e.sources and e.id not in FIXTURE_WEIGHTS)
MISSING = first(lambda e: e.sources and e.id not in FIXTURE_WEIGHTS and e.id != CORRUPT.id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_fixture_weights(weights: Path, fixtures: Path) -> None:
    """Reference checkpoints placed under IMG2IMG_WEIGHTS_DIR/<id>/ (what a deployer does)."""
    for model_id, name in FIXTURE_WEIGHTS.items():
        (weights / model_id).mkdir(parents=True, exist_ok=True)
        (weights / model_id / name).write_bytes((fixtures / name).read_bytes())


def standard_layout(tmp: Path, fixtures: Path) -> None:
    """What the offline app tests share: the fixture weights, a corrupt checkpoint for
    CORRUPT (none for MISSING) and one example photo."""
    from helpers.images import random_image

    install_fixture_weights(tmp / "weights", fixtures)
    (tmp / "weights" / CORRUPT.id).mkdir(parents=True)
    (tmp / "weights" / CORRUPT.id / "latest_net_G.pth").write_bytes(b"PK\x03\x04 cut short")
    (tmp / "examples").mkdir()
    random_image(48, 32).save(tmp / "examples" / "one.png")


def app_env(tmp: Path, port: int, **extra: str) -> dict[str, str]:
    env = clean_env()
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
        _keep_log(log, env["GRADIO_SERVER_PORT"])


def _keep_log(log: Path, port: str) -> None:
    """Each server's log, kept in test-artifacts/app-logs/ (pytest's tmp folders go): what
    an app-side traceback behind a client's generic error was."""
    kept = ROOT / "test-artifacts" / "app-logs"
    try:
        kept.mkdir(parents=True, exist_ok=True)
        (kept / f"{time.strftime('%H%M%S')}-{port}.log").write_bytes(log.read_bytes())
    except OSError:
        pass


@dataclass
class SharedApp:
    url: str
    startup_s: float
    pid: int
    tmp: Path  # its HF_HOME, IMG2IMG_WEIGHTS_DIR, ... and app.log live here


class AppServers:
    """Running `python app.py` servers, one per (layout, environment) key, shared by every
    module that asks for the same key; all stopped by close(). Tests on a shared server
    must not depend on what other modules did to it: each uses inputs of its own (fresh
    files under tmp_path, its own session) and asserts nothing about the server's history."""

    def __init__(self, fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._fixtures, self._tmp_factory = fixtures, tmp_path_factory
        self._apps: dict[tuple, SharedApp] = {}
        self._stack = ExitStack()

    def get(
        self, layout: Callable[[Path, Path], None] = standard_layout, **extra: str
    ) -> SharedApp:
        """The server for `layout(tmp, fixtures)` and app_env(tmp, port, **extra)."""
        key = (layout.__module__, layout.__qualname__, tuple(sorted(extra.items())))
        if key not in self._apps:
            tmp = self._tmp_factory.mktemp(f"app-{len(self._apps)}")
            layout(tmp, self._fixtures)
            proc = self._stack.enter_context(running_app(app_env(tmp, free_port(), **extra)))
            self._apps[key] = SharedApp(proc.url, proc.startup_s, proc.pid, tmp)
        return self._apps[key]

    def close(self) -> None:
        self._apps.clear()
        self._stack.close()


def data_url_value(content: bytes, mime: str = "image/png") -> dict[str, Any]:
    """An image value as Gradio's queue accepts it inline: a FileData whose url is a
    base64 data URL (no upload, so no max_file_size)."""
    encoded = base64.b64encode(content).decode()
    return {
        "url": f"data:{mime};base64,{encoded}",
        "path": None,
        "meta": {"_type": "gradio.FileData"},
    }


def dependencies(url: str) -> list[dict[str, Any]]:
    """The page's events, as the browser reads them from /config."""
    return httpx.get(f"{url}/config", timeout=30).json()["dependencies"]


def fn_index(url: str, api_name: str) -> int:
    return next(d["id"] for d in dependencies(url) if d.get("api_name") == api_name)


@dataclass
class QueueResult:
    join_status: int  # of POST /gradio_api/queue/join
    detail: str  # the join's refusal, if any
    success: bool | None = None  # of process_completed (None: never joined)
    output: dict[str, Any] | None = None

    @property
    def error(self) -> str:
        return self.detail if self.success is None else str((self.output or {}).get("error"))


def queue_call(url: str, fn: int, data: list[Any], streaming: bool = False) -> QueueResult:
    """What the page does for an event: POST /gradio_api/queue/join {data, fn_index,
    session_hash}, then read the result from the /gradio_api/queue/data event stream. A
    streaming event (`.stream()`, the Live tab's) waits for more frames until its time limit:
    with `streaming`, its first output (process_streaming) is the result, and closing the
    event stream ends the job."""
    session = secrets.token_hex(8)
    payload = {"data": data, "fn_index": fn, "session_hash": session, "event_data": None}
    content = json.dumps(payload).encode()
    join = httpx.post(
        f"{url}/gradio_api/queue/join",
        content=content,
        headers={"content-type": "application/json"},
        timeout=120,
    )
    if join.status_code != 200:
        return QueueResult(join.status_code, join.text)
    params = {"session_hash": session}
    with httpx.stream("GET", f"{url}/gradio_api/queue/data", params=params, timeout=120) as s:
        for line in s.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed":
                return QueueResult(200, "", message.get("success"), message.get("output"))
            if streaming and message.get("msg") == "process_streaming":
                output = message.get("output") or {}
                return QueueResult(200, "", "error" not in output and "data" in output, output)
    raise AssertionError(f"no process_completed for fn_index {fn}")


def vm_rss_mb(pid: int) -> int:
    """The process's resident memory (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def run_predict(url: str, fn: int, data: list[Any]) -> tuple[int, dict[str, Any]]:
    """The page's route for events outside the queue (queue=False): POST /run/predict."""
    session = secrets.token_hex(8)
    payload = {"data": data, "fn_index": fn, "session_hash": session, "event_data": None}
    response = httpx.post(f"{url}/gradio_api/run/predict", json=payload, timeout=120)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, {"error": response.text}
