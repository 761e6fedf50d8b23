"""Debian's chromium for Playwright (never a downloaded browser), and the marks that skip
browser tests where it is missing, except in CI (IMG2IMG_REQUIRE_BROWSER=1: a failure)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("IMG2IMG_REQUIRE_BROWSER") == "1"
MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not REQUIRED,
        reason="chromium is not installed (apt-get install chromium)",
    ),
]
