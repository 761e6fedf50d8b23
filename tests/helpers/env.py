"""The environment the tests' subprocesses (`python app.py`, train.py, `python -c ...`) start
from: the caller's, minus a developer's own HF_* / IMG2IMG_* settings (a token, a weights
folder, a Hub endpoint must not leak into a test), except the switches a whole test run is
meant to pass down (`IMG2IMG_BF16=0 pytest` forces the f32 path in every subprocess too)."""

from __future__ import annotations

import os

# Set by the caller for the whole run, honoured by every subprocess; a test's own value wins.
# IMG2IMG_OPENVINO_CACHE: the session's one conversion cache (conftest.py), so identical
# weights are converted once per test run, not once per app server or CLI subprocess.
PASSED_THROUGH = ("IMG2IMG_BF16", "IMG2IMG_PLAN", "IMG2IMG_OPENVINO_CACHE")


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without HF_* / IMG2IMG_* (but with PASSED_THROUGH), plus extra."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "IMG2IMG_")) or k in PASSED_THROUGH
    }
    env.update(extra)
    return env
