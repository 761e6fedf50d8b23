"""End to end: the app's /translate through gradio_client versus the bare forward.

Measures, with a full-size ResNet-9 (ngf 64, random init, classic .pth; bench/serve.py)
placed under IMG2IMG_WEIGHTS_DIR: the cold start of `python app.py` until it answers; the
first request (the weights file is on disk, the model not yet in memory); then steady
/translate calls at 512x512 ("full" resolution) versus the bare forward of the same plan at
the same size, in the same run. Server overhead = client latency - bare forward (decode,
pre/post-processing, PNG encode, HTTP, queue). Prints JSON; appends to bench/RESULTS.md.

    .venv/bin/python bench/bench_app.py [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import torch  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from PIL import Image  # noqa: E402

from bench.common import append_results, emit, photo  # noqa: E402
from bench.serve import random_weights, serve  # noqa: E402
from img2img import Translator  # noqa: E402
from img2img.media.processing import prepare  # noqa: E402

MODEL = "cyclegan/horse2zebra"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="img2img-bench-app-"))
    random_weights(tmp / "weights", [MODEL])
    image = tmp / "photo.png"
    photo(args.size, args.size).save(image)
    translator = Translator(device="cpu" if not torch.cuda.is_available() else None)
    model = translator.load(str(tmp / "weights" / MODEL))
    x = prepare(Image.open(image).convert("RGB"), None, translator.multiple(model)).tensor
    translator.forward(model, x)  # warm-up, as the app's first request is
    with serve(tmp) as app:
        client = Client(app.url, analytics_enabled=False, verbose=False)
        start = time.perf_counter()
        client.predict(handle_file(image), MODEL, "full", -1, api_name="/translate")
        first = time.perf_counter() - start
        calls, bare = [], []
        for _ in range(args.reps):  # interleaved, so both see the same machine load
            start = time.perf_counter()
            client.predict(handle_file(image), MODEL, "full", -1, api_name="/translate")
            calls.append(time.perf_counter() - start)
            start = time.perf_counter()
            translator.forward(model, x)
            bare.append(time.perf_counter() - start)
    api, fwd = statistics.median(calls), statistics.median(bare)
    row = {
        "bench": "app",
        "size": args.size,
        "plan": translator.plan.describe(),
        "cold_start_s": round(app.startup_s, 2),
        "first_request_s": round(first, 2),
        "translate_median_s": round(api, 3),
        "bare_forward_median_s": round(fwd, 3),
        "server_overhead_s": round(api - fwd, 3),
        "server_overhead_pct": round(100 * (api - fwd) / fwd, 1),
    }
    emit(row)
    if not args.no_record:
        append_results(
            "app",
            [
                "| cold start s | first request s | /translate s | bare forward s | overhead |",
                "|---|---|---|---|---|",
                f"| {row['cold_start_s']} | {row['first_request_s']} | {row['translate_median_s']} "
                f"| {row['bare_forward_median_s']} | {row['server_overhead_s']} s "
                f"({row['server_overhead_pct']} %) |",
            ],
        )


if __name__ == "__main__":
    main()
