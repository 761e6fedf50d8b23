"""A CI-sized load test (the full 20 x 5 run is `make load`): `bench/load_test.py` run as a
user runs it; every request answered, memory bounded, temp files pruned after their TTL.
Timings are recorded, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers.paths import ROOT

pytestmark = pytest.mark.slow


def test_concurrent_clients():
    args = [
        "--clients",
        "6",
        "--requests",
        "2",
        "--ttl",
        "10",
        "--no-record",
    ]  # TTL above the queue wait
    proc = subprocess.run(
        [sys.executable, "bench/load_test.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])  # its one JSON line
    print(result)
    assert result["requests"] == 12
    assert result["ok"] + result["busy"] == 12, result["errors"]  # busy is a clear answer
    assert result["ok"] >= 1
    assert result["rss_peak_mb"] >= result["rss_baseline_mb"]
    assert result["rss_after_mb"] < result["rss_baseline_mb"] + 500  # no runaway growth
    assert result["temp_files_after_ttl"] <= result["temp_files_before"] + 2
