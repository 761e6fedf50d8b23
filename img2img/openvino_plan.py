"""The OpenVINO execution path: a prepared generator converted once, run by OpenVINO's CPU plugin.

`convert(model)` turns a prepared generator (eval, dropout off, BatchNorm per-image or running
statistics exactly as the torch module computes them: the trace records what the module does)
into an `OpenVINORunner`, or returns None when `openvino` is not importable or the conversion
fails (one log line says why; the caller keeps the torch module).

Conversion: torch.jit.trace through `openvino.convert_model`, cached on disk per weights and
versions (openvino_cache.py): a load after the first reads the saved IR (~0.05 s) instead of
tracing again (5-20 s for a published-width generator on 2 cores).

Shapes: the model is converted with a dynamic batch, height and width and compiled once. On
this project's AVX2 CPU the dynamic model ran as fast as one compiled per static shape (paired
figures in bench/RESULTS.md), a compile takes ~0.2 s and a static cache would recompile for every
new aspect ratio, so there is one compiled model per generator. `warm_up` runs the default
256x256 shape once at load so the first request does not pay the plugin's one-time kernel setup.

Precision: the bf16 inference-precision hint only where oneDNN runs bf16 natively (AVX-512 BF16
/ AMX: `execution.native_cpu_bf16()`); f32 elsewhere, where bf16 would be emulated and slower.

Threads: OpenVINO uses as many inference threads as torch (`torch.get_num_threads()`), so the
OMP_NUM_THREADS / torch.set_num_threads setting keeps governing the process. One infer request
per runner, used under the runner's own lock: an infer request is not thread-safe, and the
Translator's per-model lock already serialises forwards of one model anyway.
"""

from __future__ import annotations

import functools
import logging
import threading
import warnings
from types import ModuleType

import numpy as np
import torch
from torch import nn

from . import openvino_cache
from .models import registry

log = logging.getLogger(__name__)

WARM_UP_SIZE = 256  # the app's and CLI's default working size (a multiple of every family's)


@functools.cache
def load_openvino() -> ModuleType | None:
    """The `openvino` module, or None (logged once per process) when it cannot be imported."""
    try:
        import openvino
    except Exception as e:  # ImportError, or a broken install raising anything at import
        log.info("openvino is not usable (%s: %s): using the torch path", type(e).__name__, e)
        return None
    return openvino


def available() -> bool:
    """Whether the OpenVINO path can run here (the package imports)."""
    return load_openvino() is not None


def precision_hint(native_bf16: bool) -> str:
    """OpenVINO's INFERENCE_PRECISION_HINT: bf16 only on CPUs with native bf16."""
    return "bf16" if native_bf16 else "f32"


class OpenVINORunner:
    """Callable like a generator: (B, 3, H, W) float32 in [-1, 1] -> float32 output tensor."""

    def __init__(self, compiled, precision: str, source: nn.Module) -> None:
        self.compiled = compiled
        self.precision = precision
        self.source = source  # the torch module it was converted from (hooked/seeded forwards)
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().float().cpu().numpy())
        with self._lock:
            result = self._request.infer([array])
            y = np.array(result[self.compiled.outputs[0]], copy=True)  # outlives the request
        return torch.from_numpy(y)

    def warm_up(self, size: int = WARM_UP_SIZE) -> None:
        """One forward at `size`² so the first real request finds the kernels set up."""
        self(torch.zeros(1, 3, size, size))


def example_side(model: nn.Module) -> int:
    """The trace's input side: the smallest the architecture takes, at least 64 (a small trace
    is fast; the graph is the same at every size, the input being dynamic)."""
    config = getattr(model, "config", None)
    multiple = registry.size_multiple(config) if isinstance(config, dict) else WARM_UP_SIZE
    return max(multiple, 64)


def _converted(ov, model: nn.Module):
    """The ov.Model of `model`: from the disk cache, or traced and converted (then cached)."""
    side = example_side(model)
    entry = openvino_cache.key(model, ov.__version__, side)
    cached = openvino_cache.load(ov, entry)
    if cached is not None:
        return cached
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer's notes (size checks taken as constants, jit.trace deprecation) are
        # about generality the dynamic-shape tests cover; they would only alarm users.
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        converted = ov.convert_model(
            model,
            example_input=torch.zeros(1, 3, side, side),
            input=[ov.PartialShape([-1, 3, -1, -1])],
        )
    openvino_cache.save(ov, entry, converted)
    return converted


def convert(model: nn.Module, native_bf16: bool, threads: int | None = None):
    """`model` (prepared: eval, on the CPU) as an OpenVINORunner, or None if that fails.

    Traced once at 1x3xSxS (S: `example_side`), the input declared dynamic in batch, height
    and width, the result cached on disk (openvino_cache.py). Returns None (and logs one line)
    when openvino is missing or the model does not convert or compile.
    """
    ov = load_openvino()
    if ov is None:
        return None
    precision = precision_hint(native_bf16)
    config = {
        "INFERENCE_PRECISION_HINT": precision,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
    }
    try:
        compiled = ov.Core().compile_model(_converted(ov, model), "CPU", config)
    except Exception as e:  # a conversion failure must never break translation
        why = (str(e).strip().splitlines() or [""])[0][:200]
        kind, name = type(e).__name__, type(model).__name__
        log.warning("OpenVINO could not convert %s (%s: %s): using torch", name, kind, why)
        return None
    return OpenVINORunner(compiled, precision, model)
