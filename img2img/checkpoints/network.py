"""Is a download host reachable? One short TCP probe per host, remembered for a while.

Offline, every request for a model that is not on disk used to wait out the HTTP client's
timeouts and retries (tens of seconds) before failing, and the next request paid the same
again. A probe costs at most IMG2IMG_PROBE_TIMEOUT seconds (default 1.5) once per host; its
answer is kept for IMG2IMG_PROBE_TTL seconds (default 60), so a machine without network
fails in a second or two with advice, and notices within a minute when the network is back.
HF_HUB_OFFLINE needs no probe: it means "no network" by itself.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from urllib.parse import urlsplit

_lock = threading.Lock()
_answers: dict[tuple[str, int], tuple[float, bool]] = {}  # (host, port) -> (when, reachable)


def _setting(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def host_of(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def reachable(url: str) -> bool:
    """Whether a TCP connection to `url`'s host opens (answer cached per host)."""
    key = host_of(url)
    now = time.monotonic()
    with _lock:
        when, answer = _answers.get(key, (-1e9, False))
        if now - when < _setting("IMG2IMG_PROBE_TTL", 60):
            return answer
    try:
        with socket.create_connection(key, timeout=_setting("IMG2IMG_PROBE_TIMEOUT", 1.5)):
            answer = True
    except OSError:  # no route, refused, timed out, name does not resolve
        answer = False
    with _lock:
        _answers[key] = (time.monotonic(), answer)
    return answer


def forget() -> None:
    """Drop every remembered answer (the next request probes again)."""
    with _lock:
        _answers.clear()


def known(url: str) -> bool | None:
    """The last probe's answer for `url`'s host, however old (None: never probed). Never
    probes: for marks that say what the probe found without waiting for one."""
    with _lock:
        answer = _answers.get(host_of(url))
    return None if answer is None else answer[1]
