"""What a web front end needs besides the translation: a request-body cap, a count of the
frames each camera stream sends, and error text without server paths. Gradio-free (app.py
is the Gradio glue), so tests can use it alone."""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path


class BodyCap:
    """ASGI middleware: a request body over `limit` bytes gets 413 before the app reads it.

    Gradio reads an event's JSON whole, parses it and keeps its values in the session before
    any event code runs: six refused 119 MB inline images still took the server from 0.8 to
    3.3 GB. Its multipart upload route (max_file_size, checked as it streams) is exempt.
    """

    def __init__(self, app, limit: int, message: str = "Request too large.") -> None:
        self.app, self.limit, self.message = app, limit, message

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].rstrip("/").endswith("/gradio_api/upload"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:  # the HTTP server passes on no more than is declared
            if declared.isdigit() and int(declared) <= self.limit:
                return await self.app(scope, receive, send)
            return await self._refuse(receive, send)
        if b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            return await self.app(scope, receive, send)  # no body
        messages, seen = [{"more_body": True}], 0  # chunked: read it here, up to the cap
        while messages[-1].get("more_body"):
            messages.append(await receive())
            seen += len(messages[-1].get("body", b""))
            if seen > self.limit:
                return await self._refuse(receive, send)
        replay = iter(messages[1:])

        async def replayed():
            return next(replay, None) or await receive()

        return await self.app(scope, replayed, send)

    async def _refuse(self, receive, send) -> None:
        # Read the rest (bounded, nothing kept) so that the client gets the answer rather
        # than a broken pipe while it is still sending.
        drained, message = 0, {"more_body": True}
        while message.get("more_body") and drained < 16 * self.limit:
            message = await receive()
            drained += len(message.get("body", b""))
        body = json.dumps({"detail": self.message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class StreamFrames:
    """Frames sent per stream event: Gradio's stream route (POST .../stream/{event_id}) keeps
    only the newest frame of an event, overwriting one that is still waiting, and tells the
    event's function nothing of the others. This count is how a live tab knows how many its
    camera sent, hence how many were dropped. Bounded: the `keep` most recent events."""

    ROUTE = re.compile(r"/stream/([0-9a-f]{8,64})/?$")

    def __init__(self, keep: int = 256) -> None:
        self.keep = keep
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def count(self, event_id: str) -> None:
        with self._lock:
            self._counts[event_id] = self._counts.get(event_id, 0) + 1
            self._counts.move_to_end(event_id)
            while len(self._counts) > self.keep:
                self._counts.popitem(last=False)

    def sent(self, event_id: str | None) -> int:
        """Frames sent so far to the stream event `event_id` (0: none, or unknown)."""
        with self._lock:
            return self._counts.get(event_id, 0) if event_id else 0


class CountFrames:
    """ASGI middleware: every POST to a stream event's route counted in `frames`."""

    def __init__(self, app, frames: StreamFrames) -> None:
        self.app, self.frames = app, frames

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "POST":
            found = StreamFrames.ROUTE.search(scope["path"])
            if found:
                self.frames.count(found.group(1))
        return await self.app(scope, receive, send)


def path_roots(roots: Mapping[str, Path]) -> list[tuple[str, str]]:
    """(spelling, placeholder) for each server folder, both as given and resolved, longest
    first (the HF cache lies in HF_HOME, which may lie in the home folder)."""
    pairs: dict[str, str] = {}
    for name, path in roots.items():
        for spelling in (str(path.absolute()), str(path.resolve())):
            pairs.setdefault(spelling.rstrip("/"), name)
    return sorted(pairs.items(), key=lambda p: -len(p[0]))


# Whatever absolute path is left: keep its last part (not inside URLs or placeholders).
_ABSOLUTE = re.compile(r"(?<![\w:/.<>~-])/(?:[^\s/'\"`]+/)+")


def public_message(text: str, roots: list[tuple[str, str]]) -> str:
    """`text` without absolute server paths (`roots` from path_roots): it goes to visitors
    and API clients; the server's log keeps the full text."""
    for path, name in roots:
        if path:
            text = text.replace(path, name)
    return _ABSOLUTE.sub("…/", text)
