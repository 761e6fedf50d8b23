"""Where things are: the repository root and the shared reference fixtures."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Checkpoints made with the classic implementations (see their README.json).
FIXTURES = Path(
    os.environ.get("IMG2IMG_FIXTURES", ROOT.parent / "shared" / "fixtures" / "reference")
)
