"""A stand-in for Hugging Face's `spaces` package (ZeroGPU) for tests, put on PYTHONPATH.

`spaces.GPU(duration=...)` decorates a function as the real one does; each call appends one
JSON line to $FAKE_SPACES_LOG (the function, the duration asked for, computed by calling a
callable `duration` with the call's arguments as ZeroGPU does, and the plain arguments), then
runs the function on whatever device there is. No GPU is reserved: what is tested is what the
app asks of ZeroGPU, and how often.
"""

from __future__ import annotations

import functools
import json
import os


def GPU(fn=None, *, duration=60):  # noqa: N802 - the real package's name
    def decorate(f):
        @functools.wraps(f)
        def run(*args, **kwargs):
            seconds = duration(*args, **kwargs) if callable(duration) else duration
            plain = [a if isinstance(a, (str, int, float, type(None))) else None for a in args]
            with open(os.environ["FAKE_SPACES_LOG"], "a") as log:
                log.write(json.dumps({"fn": f.__name__, "duration": seconds, "args": plain}))
                log.write("\n")
            return f(*args, **kwargs)

        return run

    return decorate(fn) if fn is not None else decorate
