"""Loopback HTTP servers for the tests: a fake Hugging Face Hub and a plain file server.

Both run in a daemon thread on 127.0.0.1 with an ephemeral port, serve bytes from a dict,
honour Range requests, log what they were asked, and can inject faults (drop the connection
after N bytes, answer 500, send no Content-Length) so that resume, retry and error paths run
for real.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.log.append(("POST", self.path, dict(self.headers)))
        status, payload = self.server.api(self.path, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, head: bool) -> None:
        self.server.log.append(("HEAD" if head else "GET", self.path, dict(self.headers)))
        found = self.server.lookup(self.path)
        if found is None:
            code = self.server.missing_code(self.path)
            self.send_response(404)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", f"{code.removesuffix('NotFound')} not found")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data, extra_headers = found
        if not head and self.server.fail_status:
            self.server.fail_status_count -= 1
            if self.server.fail_status_count >= 0:
                self.send_response(self.server.fail_status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        start = 0
        match = re.match(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match and int(match.group(1)) < len(data):
            start = int(match.group(1))
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Accept-Ranges", "bytes")
        if self.server.take_unsized():  # no length: the body ends where the connection does
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        for key, value in extra_headers.items():
            self.send_header(key, value)
        self.end_headers()
        if head:
            return
        cut = self.server.take_drop()
        if cut is not None and cut < len(body):
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True  # the client sees a short read
            return
        self.wfile.write(body)


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.log: list[tuple[str, str, dict]] = []
        self.drops: list[int] = []  # bytes to send before dropping, one per GET
        self.unsized = 0  # the next N GETs send no Content-Length (a cut is then invisible)
        self.fail_status = 0
        self.fail_status_count = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def take_drop(self) -> int | None:
        with self.lock:
            return self.drops.pop(0) if self.drops else None

    def take_unsized(self) -> bool:
        with self.lock:
            self.unsized, unsized = max(0, self.unsized - 1), self.unsized > 0
            return unsized

    def lookup(self, path: str) -> tuple[bytes, dict[str, str]] | None:
        raise NotImplementedError

    def api(self, path: str, body: bytes) -> tuple[int, object]:
        return 404, {"error": "not found"}

    def missing_code(self, path: str) -> str:
        """The X-Error-Code of a 404 for `path` (the Hub's names)."""
        return "EntryNotFound"

    def gets(self) -> list[tuple[str, str, dict]]:
        return [entry for entry in self.log if entry[0] == "GET"]


class FileServer(LoopbackServer):
    """Serves files[path] at http://127.0.0.1:PORT/path."""

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__()
        self.files = files

    def lookup(self, path: str):
        data = self.files.get(path.split("?")[0].lstrip("/"))
        return None if data is None else (data, {})


class FakeHub(LoopbackServer):
    """The Hub endpoints huggingface_hub uses to download and to upload small files.

    files[(repo_id, filename)] = bytes; a dataset repo's id is prefixed "datasets/"
    (files[("datasets/me/set", "data/train-00000-of-00001.parquet")]). Downloads: HEAD/GET
    `/{repo}/resolve/{rev}/{file}` at any revision, with a stable commit hash, an ETag and the
    Content-Length. What `datasets.load_dataset` and HfFileSystem read: the repo info
    (`/api/{models,datasets}/{repo}[/revision/{rev}]`), its `tree` and `paths-info`. Uploads:
    `create_repo` (/api/repos/create, models or datasets), `/api/validate-yaml`, `preupload`
    (every file "regular", so no LFS/Xet) and the NDJSON `commit`, which stores the files.
    """

    COMMIT = "0123456789abcdef0123456789abcdef01234567"

    def __init__(
        self, files: dict[tuple[str, str], bytes] | None = None, main_size: bool = True
    ) -> None:
        """`main_size`: repo info reports `mainSize` (the main branch's bytes) as the Hub
        does; False: a mirror without it."""
        super().__init__()
        self.files = {} if files is None else files
        self.repos = {repo for repo, _ in self.files}
        self.main_size = main_size

    def api(self, path: str, body: bytes) -> tuple[int, object]:
        path = path.split("?")[0]
        if path == "/api/validate-yaml":
            return 200, {}
        if path == "/api/repos/create":
            req = json.loads(body)
            repo = f"{req.get('organization') or 'user'}/{req['name']}"
            repo = "datasets/" + repo if req.get("type") == "dataset" else repo
            status = 409 if repo in self.repos else 200  # exist_ok clients read "url" on 409
            self.repos.add(repo)
            return status, {"url": f"{self.url}/{repo}", "name": repo}
        m = re.match(r"^/api/(models|datasets)/([^/]+/[^/]+)/(preupload|commit|paths-info)/", path)
        repo = m and (m.group(2) if m.group(1) == "models" else f"datasets/{m.group(2)}")
        if not m or repo not in self.repos:
            return 404, {"error": "Repository not found"}
        op = m.group(3)
        if op == "paths-info":  # form-encoded: paths=a&paths=b&expand=...
            wanted = urllib.parse.parse_qs(body.decode()).get("paths", [])
            return 200, [e for e in self._entries(repo) if e["path"] in wanted]
        if op == "preupload":
            wanted = json.loads(body)["files"]
            return 200, {
                "files": [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                    for f in wanted
                ]
            }
        for line in body.splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                value = item["value"]
                self.files[(repo, value["path"])] = base64.b64decode(value["content"])
        return 200, {
            "commitUrl": f"{self.url}/{repo}/commit/{self.COMMIT}",
            "commitOid": self.COMMIT,
        }

    def _entries(self, repo: str) -> list[dict]:
        """Every file and folder of `repo`, as the tree and paths-info endpoints list them."""
        found: dict[str, dict] = {}
        for (r, name), data in sorted(self.files.items()):
            if r != repo:
                continue
            parts = name.split("/")
            for k in range(1, len(parts)):
                folder = "/".join(parts[:k])
                found.setdefault(folder, {"type": "directory", "path": folder, "oid": "0" * 40})
            oid = hashlib.sha1(data).hexdigest()
            found[name] = {"type": "file", "path": name, "size": len(data), "oid": oid}
        return list(found.values())

    @staticmethod
    def _api_repo(path: str) -> tuple[str, str, str] | None:
        """(repo as self.repos names it, repo id, the rest of the path) of
        /api/models|datasets/..., None for any other path."""
        m = re.match(r"^/api/(models|datasets)/([^/]+/[^/?]+)(/.*)?$", path.split("?")[0])
        if not m:
            return None
        kind, name, rest = m.group(1), m.group(2), m.group(3) or ""
        return (name if kind == "models" else f"datasets/{name}"), name, rest

    def _info(self, path: str) -> object | None:
        """The JSON answer to a GET on /api/... (repo info, tree), None if not one of those."""
        found = self._api_repo(path)
        if found is None or found[0] not in self.repos:
            return None
        repo, name, rest = found
        entries = self._entries(repo)
        if rest == "" or rest.startswith("/revision/"):
            siblings = [{"rfilename": e["path"]} for e in entries if e["type"] == "file"]
            when = "2024-01-01T00:00:00.000Z"
            info = {"id": name, "sha": self.COMMIT, "siblings": siblings, "private": False,
                    "disabled": False, "gated": False, "lastModified": when}  # fmt: skip
            if self.main_size:
                info["mainSize"] = sum(e.get("size", 0) for e in entries)
            return info
        tree = re.match(r"^/tree/[^/]+/?(.*)$", rest)
        if not tree:
            return None
        under = urllib.parse.unquote(tree.group(1)).strip("/")
        recursive = "recursive=true" in path.lower()
        prefix = under + "/" if under else ""
        return [
            e for e in entries
            if e["path"].startswith(prefix) and (recursive or "/" not in e["path"][len(prefix):])
        ]  # fmt: skip

    def missing_code(self, path: str) -> str:
        """RepoNotFound for the info of a repo it does not hold, as the Hub answers."""
        found = self._api_repo(path)
        return "RepoNotFound" if found and found[0] not in self.repos else "EntryNotFound"

    def lookup(self, path: str):
        if path.startswith("/api/"):
            info = self._info(path)
            if info is None:
                return None
            return json.dumps(info).encode(), {"Content-Type": "application/json"}
        match = re.match(r"^/(?:models/)?(.+?)/resolve/([^/]+)/(.+?)(?:\?.*)?$", path)
        if not match:
            return None
        repo_id, _revision, filename = match.groups()
        data = self.files.get((repo_id, filename))
        if data is None:
            return None
        etag = hashlib.sha256(data).hexdigest()
        return data, {"X-Repo-Commit": self.COMMIT, "ETag": f'"{etag}"'}


@contextmanager
def serving(server: LoopbackServer) -> Iterator[LoopbackServer]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
