"""Debian's chromium for Playwright (never a downloaded browser), and the marks that skip
browser tests where it is missing, except in CI (IMG2IMG_REQUIRE_BROWSER=1: a failure)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Launch flags: headless in a container (no sandbox, no GPU, /dev/shm small), no first run.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
# ... quiet (no background traffic), and a fake camera that needs no permission prompt (a
# moving test pattern, or a clip given with --use-file-for-fake-video-capture=FILE).
CAMERA_ARGS = [
    *ARGS,
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
REQUIRED = os.environ.get("IMG2IMG_REQUIRE_BROWSER") == "1"
MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not REQUIRED,
        reason="chromium is not installed (apt-get install chromium)",
    ),
]
