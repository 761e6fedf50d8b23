"""A CI-sized load test (the full 20 x 5 run is `make load`): every request answered,
memory bounded, temp files pruned after their TTL. Timings are recorded, never asserted."""

from __future__ import annotations

import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from load_test import run  # noqa: E402


def test_concurrent_clients(fixtures):
    result = run(clients=6, requests=2, ttl=3)
    print(result)
    assert result["requests"] == 12
    assert result["ok"] + result["busy"] == 12, result["errors"]  # busy is a clear answer
    assert result["ok"] >= 1
    assert result["rss_peak_mb"] >= result["rss_baseline_mb"]
    assert result["rss_after_mb"] < result["rss_baseline_mb"] + 500  # no runaway growth
    assert result["temp_files_after_ttl"] <= result["temp_files_before"] + 2
