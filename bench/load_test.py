"""Load test: N concurrent gradio_client users x M requests of mixed sizes against one app.

Starts `python app.py` on loopback with small random-init generators installed (ngf 8, the
catalog's architectures; bench/serve.py), warms each model up with one request, then fires
the load and reports: requests answered (results / clear errors / other failures), latency
p50/p95/max, the server's RSS at baseline, peak and 15 s after the load, and the number of
temp files before/after the cleanup TTL. Prints one JSON object and appends a row to
bench/RESULTS.md.

    .venv/bin/python bench/load_test.py [--clients 20] [--requests 5] [--ttl 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client, handle_file  # noqa: E402

from bench.common import append_results, machine, photo  # noqa: E402
from bench.serve import random_weights, serve  # noqa: E402

SIZES = [(64, 48), (320, 240), (640, 480), (1200, 800), (37, 500)]
MODELS = ["cyclegan/horse2zebra", "pix2pix/facades_label2photo", "pix2pix/night2day"]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def count_files(*folders: Path) -> int:
    return sum(1 for f in folders for p in f.rglob("*") if p.is_file())


def one_user(url: str, images: list[Path], requests: int, user: int) -> list[dict]:
    client = Client(url, analytics_enabled=False, verbose=False)
    results = []
    for i in range(requests):
        img = images[(user + i) % len(images)]
        model = MODELS[(user + i) % len(MODELS)]
        start = time.perf_counter()
        try:
            client.predict(handle_file(img), model, api_name="/translate")
            outcome = "ok"
        except Exception as e:  # noqa: BLE001 - classified below, never hidden
            outcome = (
                "busy"
                if "queue" in str(e).lower() or "busy" in str(e).lower()
                else (f"error: {str(e)[:120]}")
            )
        results.append({"seconds": time.perf_counter() - start, "outcome": outcome})
    return results


def run(clients: int, requests: int, ttl: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="img2img-load-"))
    random_weights(tmp / "weights", MODELS, ngf=8)
    images = []
    for k, (w, h) in enumerate(SIZES):
        images.append(tmp / f"in{k}.jpg")
        photo(w, h, seed=k).save(images[-1], quality=90)
    temp_dirs = [tmp / "gradio", tmp / "tmp"]
    queue = str(max(16, clients))
    with serve(tmp, IMG2IMG_TMP_TTL=str(ttl), IMG2IMG_QUEUE_SIZE=queue) as app:
        for model in MODELS:  # warm-up: models loaded once, then the baseline
            one_user(app.url, images[:1], 1, MODELS.index(model))
        baseline = rss_mb(app.pid)
        files_before = count_files(*temp_dirs)
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            futures = [pool.submit(one_user, app.url, images, requests, u) for u in range(clients)]
            results = [r for f in futures for r in f.result()]
        wall = time.perf_counter() - start
        peak = rss_mb(app.pid, "VmHWM")
        files_after_load = count_files(*temp_dirs)
        time.sleep(max(15, ttl * 1.5))
        after = rss_mb(app.pid)
        one_user(app.url, images[:1], 1, 0)  # a request after the TTL triggers our pruning too
        time.sleep(2)
        files_after_ttl = count_files(*temp_dirs)
    latencies = sorted(r["seconds"] for r in results)
    outcomes = [r["outcome"] for r in results]
    q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    return {
        "bench": "load",
        "clients": clients,
        "requests_per_client": requests,
        "requests": len(results),
        "ok": outcomes.count("ok"),
        "busy": outcomes.count("busy"),
        "errors": sorted({o for o in outcomes if o.startswith("error")}),
        "wall_s": round(wall, 1),
        "p50_s": round(statistics.median(latencies), 2),
        "p95_s": round(q[18], 2),
        "max_s": round(latencies[-1], 2),
        "rss_baseline_mb": round(baseline),
        "rss_peak_mb": round(peak),
        "rss_after_mb": round(after),
        "temp_files_before": files_before,
        "temp_files_after_load": files_after_load,
        "temp_files_after_ttl": files_after_ttl,
        "ttl_s": ttl,
        "machine": machine(),
    }


def record(result: dict) -> None:
    """Append the run to bench/RESULTS.md (machine, date and command come from common)."""
    append_results(
        "load",
        [
            "| requests | ok | busy | error kinds | p50 s | p95 s | RSS MB base → peak → after "
            "| temp files after load → after TTL |",
            "|---|---|---|---|---|---|---|---|",
            f"| {result['requests']} | {result['ok']} | {result['busy']} | "
            f"{len(result['errors'])} | {result['p50_s']} | {result['p95_s']} | "
            f"{result['rss_baseline_mb']} → {result['rss_peak_mb']} → {result['rss_after_mb']} | "
            f"{result['temp_files_after_load']} → {result['temp_files_after_ttl']} |",
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--ttl", type=int, default=10, help="IMG2IMG_TMP_TTL for the app")
    parser.add_argument("--no-record", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    result = run(args.clients, args.requests, args.ttl)
    print(json.dumps(result))
    if not args.no_record:
        record(result)


if __name__ == "__main__":
    main()
