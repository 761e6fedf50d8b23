"""A loopback port that never answers: what a machine without network sees.

A listening socket whose accept queue is full drops every further SYN, so a client's
connect hangs until its own timeout, exactly as towards a firewalled or unplugged host
(and unlike a closed port, which refuses at once). Only 127.0.0.1 is involved.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator


@contextlib.contextmanager
def blackhole() -> Iterator[str]:
    """Yield `http://127.0.0.1:PORT` whose connections never complete."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the backlog (its length is backlog + 1 on Linux)
            c = socket.socket()
            c.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                c.connect(("127.0.0.1", port))
            fillers.append(c)
        time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        for c in fillers:
            c.close()
        server.close()
