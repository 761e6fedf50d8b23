"""pytest fixtures only; the shared helpers are the `helpers` package next to this file."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.paths import FIXTURES


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """The shared reference fixtures (made with the classic implementations)."""
    if not (FIXTURES / "README.json").is_file():
        pytest.fail(f"reference fixtures not found at {FIXTURES}; set IMG2IMG_FIXTURES")
    return FIXTURES
