"""The CLI's malloc tuning (img2img/allocator.py): applied on glibc, harmless elsewhere."""

from __future__ import annotations

import platform
import subprocess
import sys

from helpers.paths import ROOT

from img2img import allocator


def test_thresholds_are_accepted_by_glibc_in_a_fresh_process():
    code = "from img2img import allocator; print(allocator.keep_freed_memory())"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert out == str(glibc)


def test_thresholds_are_within_glibc_limits():
    assert allocator.MMAP_THRESHOLD <= 32 * 2**20  # glibc refuses larger mmap thresholds
    assert allocator.TRIM_THRESHOLD > 0
