"""pytest fixtures only; the shared helpers are the `helpers` package next to this file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.app_server import AppServers
from helpers.paths import FIXTURES


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """The shared reference fixtures (made with the classic implementations)."""
    if not (FIXTURES / "README.json").is_file():
        pytest.fail(f"reference fixtures not found at {FIXTURES}; set IMG2IMG_FIXTURES")
    return FIXTURES


@pytest.fixture(scope="session", autouse=True)
def openvino_cache(tmp_path_factory):
    """One OpenVINO conversion cache for the whole run (the environment passes it to every
    subprocess: helpers.env): the same weights convert once, as on a user's machine, instead
    of once per app server and CLI run. Tests of the cache itself use their own folder."""
    mp = pytest.MonkeyPatch()
    mp.setenv("IMG2IMG_OPENVINO_CACHE", str(tmp_path_factory.mktemp("openvino-cache")))
    yield
    mp.undo()


@pytest.fixture
def one_thread():
    """Torch on one thread: tiny networks gain nothing from threads, and on a shared 2-core
    machine OpenMP threads that spin while another process holds a core slow a run tenfold.
    Modules opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def app_servers(fixtures, tmp_path_factory):
    """`python app.py` servers shared across modules, one per (layout, environment) key
    (helpers.app_server.AppServers): `app_servers.get()` is the standard offline app."""
    servers = AppServers(fixtures, tmp_path_factory)
    yield servers
    servers.close()
