"""The OpenVINO execution path: a prepared generator converted once, run by OpenVINO's CPU plugin.

`convert(model)` turns a prepared generator (eval, dropout off, BatchNorm per-image or running
statistics exactly as the torch module computes them: the trace records what the module does)
into an `OpenVINORunner`, or returns None when `openvino` is not importable or the conversion
fails (one log line says why; the caller keeps the torch module).

Conversion: torch.jit.trace through `openvino.convert_model`, cached on disk per weights and
versions (cache.py): a load after the first reads the saved IR (~0.05 s, plus 0.3 s per 218 MB
of weights to check their SHA-256, once per process) instead of tracing again (5-20 s for a
published-width generator on 2 cores). A cached entry that is damaged or does not compile is
dropped and the module converted again; a cache that cannot be written leaves the conversion
in use for the process. Only a failure of the fresh conversion itself runs torch.

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

Batch jobs (`throughput=True`: the plan's `throughput`, set by translate for many photos):
the model is compiled a second time, on the first batch of two or more images, with the
THROUGHPUT hint (one stream per core pair or core, one thread each), and a batch runs as one
asynchronous request per image on an `AsyncInferQueue` of the plugin's optimal size. Single
images (one photo, tiles' windows, video frames) keep the LATENCY model, whose one request
uses every thread. Measured on 2 cores (bench/bench_pipeline.py --forward): +2 % for a trained
ResNet-9, +13 % for a ngf-8 one, whose small kernels lose most to the threads' joins.
"""

from __future__ import annotations

import functools
import logging
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch
from torch import nn

from ...media.channels import model_channels
from ...models import registry
from . import cache as openvino_cache

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
    """Callable like a generator: (B, 3, H, W) float32 in [-1, 1] -> float32 output tensor.

    `variant(tag, build)` gives a companion runner for another graph of the same module (e.g.
    normstats' fixed-statistics graph), converted on first use and kept with this one."""

    def __init__(
        self, compiled, precision: str, source: nn.Module, threads: int, model=None
    ) -> None:
        self.compiled = compiled
        self.precision = precision
        self.source = source  # the torch module it was converted from (hooked/seeded forwards)
        self.threads = threads
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()
        self._model = model  # the ov.Model, kept for the THROUGHPUT compile (None: never)
        self._queue = None  # (compiled THROUGHPUT, AsyncInferQueue) once a batch needed it
        self._variants: dict[str, OpenVINORunner | None] = {}
        self._variants_lock = threading.Lock()  # a conversion must not block forwards

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.infer([x])[0]

    def infer(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """All outputs of one inference, as float32 CPU tensors (copies: they outlive it)."""
        arrays = [np.ascontiguousarray(t.detach().float().cpu().numpy()) for t in inputs]
        if self._model is not None and len(arrays) == 1 and len(arrays[0]) > 1:
            return [torch.from_numpy(self._infer_batch(arrays[0]))]
        with self._lock:
            result = self._request.infer(arrays)
            outs = [np.array(result[o], copy=True) for o in self.compiled.outputs]
        return [torch.from_numpy(y) for y in outs]

    @property
    def throughput(self) -> bool:
        """Whether batches run as parallel requests (the THROUGHPUT compile, batch jobs)."""
        return self._model is not None

    def _infer_batch(self, x: np.ndarray) -> np.ndarray:
        """Each image of batch `x` as its own asynchronous request on the THROUGHPUT model."""
        outputs: list[np.ndarray | None] = [None] * len(x)

        def done(request, i: int) -> None:
            outputs[i] = np.array(request.get_output_tensor(0).data, copy=True)

        with self._lock:
            queue = self._throughput_queue()
            queue.set_callback(done)
            for i in range(len(x)):
                queue.start_async([x[i : i + 1]], userdata=i)
            queue.wait_all()
        missing = [i for i, y in enumerate(outputs) if y is None]
        if missing:  # a callback that never ran: the request failed inside the plugin
            raise RuntimeError(f"OpenVINO returned no output for images {missing} of the batch")
        return np.concatenate(outputs)

    def _throughput_queue(self):
        if self._queue is None:
            ov = load_openvino()
            config = _config(self.precision, self.threads, "THROUGHPUT")
            compiled = ov.Core().compile_model(self._model, "CPU", config)
            jobs = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            self._queue = (compiled, ov.AsyncInferQueue(compiled, max(jobs, 1)))
        return self._queue[1]

    def warm_up(self, size: int = WARM_UP_SIZE) -> None:
        """One forward at `size`² so the first real request finds the kernels set up."""
        self(torch.zeros(1, model_channels(self.source)[0], size, size))

    def variant(self, tag: str, build: Callable[[], Graph]) -> OpenVINORunner | None:
        """The runner of graph `tag` (built by `build` on first use), None if it does not
        convert (logged once; callers then run the torch module)."""
        with self._variants_lock:
            if tag not in self._variants:
                graph = build()
                self._variants[tag] = convert_graph(graph, self.precision, self.threads)
            return self._variants[tag]


@dataclass
class Graph:
    """What to convert: a module, example inputs for the trace, their shapes (-1: dynamic), and
    a tag that tells its cache entry apart from the plain generator's (same weights)."""

    module: nn.Module
    examples: tuple[torch.Tensor, ...]
    shapes: list[list[int]]
    tag: str = ""
    source: nn.Module | None = None  # whose weights and config key the cache (default module)


def example_side(model: nn.Module) -> int:
    """The trace's input side: the smallest the architecture takes, at least 64 (a small trace
    is fast; the graph is the same at every size, the input being dynamic)."""
    config = getattr(model, "config", None)
    multiple = registry.size_multiple(config) if isinstance(config, dict) else WARM_UP_SIZE
    return max(multiple, 64)


def generator_graph(model: nn.Module) -> Graph:
    side, channels = example_side(model), model_channels(model)[0]  # 1, 3 or 4 in
    return Graph(model, (torch.zeros(1, channels, side, side),), [[-1, channels, -1, -1]])


def _trace(ov, graph: Graph):
    """`graph` traced and converted into an ov.Model (seconds, not cached)."""
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer's notes (size checks taken as constants, jit.trace deprecation) are
        # about generality the dynamic-shape tests cover; they would only alarm users.
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        example = graph.examples[0] if len(graph.examples) == 1 else graph.examples
        return ov.convert_model(
            graph.module,
            example_input=example,
            input=[ov.PartialShape(shape) for shape in graph.shapes],
        )


def _entry(ov, graph: Graph) -> str:
    source = graph.module if graph.source is None else graph.source
    side = graph.examples[0].shape[-1]
    wrapper = None if graph.source is None else graph.module
    return openvino_cache.key(source, ov.__version__, side, graph.tag, wrapper)


def _compiled(ov, graph: Graph, config: dict):
    """(the ov.Model, it compiled): from the disk cache when its entry is intact and compiles,
    else traced, converted, compiled and then cached (an entry that does not compile is dropped
    first; only a model that compiles is stored). Raises what tracing or compiling raises."""
    core = ov.Core()
    entry = _entry(ov, graph)
    cached = openvino_cache.load(ov, entry)
    if cached is not None:
        try:
            return cached, core.compile_model(cached, "CPU", config)
        except Exception as e:  # e.g. saved by a build whose plugin accepted what this one does not
            openvino_cache.discard(entry, f"does not compile ({openvino_cache.reason(e)})")
    converted = _trace(ov, graph)
    compiled = core.compile_model(converted, "CPU", config)
    openvino_cache.save(ov, entry, converted)  # never raises: a failed write is logged
    return converted, compiled


def _config(precision: str, threads: int, hint: str = "LATENCY") -> dict:
    return {
        "INFERENCE_PRECISION_HINT": precision,
        "PERFORMANCE_HINT": hint,
        "INFERENCE_NUM_THREADS": threads,
    }


def convert_graph(
    graph: Graph, precision: str, threads: int, throughput: bool = False
) -> OpenVINORunner | None:
    """`graph` converted and compiled, or None (one log line says why). `throughput`: batches
    of a one-input graph run as parallel requests (OpenVINORunner's docstring)."""
    ov = load_openvino()
    if ov is None:
        return None
    try:
        converted, compiled = _compiled(ov, graph, _config(precision, threads))
    except Exception as e:  # a conversion failure must never break translation
        why, name = openvino_cache.reason(e), type(graph.module).__name__
        log.warning("OpenVINO could not convert %s (%s): using torch", name, why)
        return None
    model = converted if throughput and len(graph.examples) == 1 else None
    return OpenVINORunner(compiled, precision, graph.source or graph.module, threads, model)


def convert(
    model: nn.Module, native_bf16: bool, threads: int | None = None, throughput: bool = False
):
    """`model` (prepared: eval, on the CPU) as an OpenVINORunner, or None if that fails.

    Traced once at 1x3xSxS (S: `example_side`), the input declared dynamic in batch, height
    and width, the result cached on disk (openvino_cache.py). Returns None (and logs one line)
    when openvino is missing or the model does not convert or compile.
    """
    if load_openvino() is None:
        return None
    threads = int(threads or torch.get_num_threads())
    graph = generator_graph(model)
    return convert_graph(graph, precision_hint(native_bf16), threads, throughput)
