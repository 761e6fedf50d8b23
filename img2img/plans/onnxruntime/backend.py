"""The ONNX Runtime backend the plan table points at (`execution.PLANS`: onnxruntime).

`convert` exports the prepared generator with img2img.export's tracer (the module as it is:
eval, dropout off, BatchNorm per-image or running statistics as the Translator set them;
no padding: the Translator pads to the multiple), batch, height and width dynamic, reads the
graph from the disk cache when it is there (cache.py), and opens one InferenceSession: CPU,
or CUDA where the installed onnxruntime has CUDAExecutionProvider (the `onnxruntime-gpu`
wheel; the plain wheel has none, and a CUDA device then runs torch, one log line). fp32 only.
Threads: as many as torch uses (torch.get_num_threads()). A session's `run` is thread-safe.

Any failure (onnx / onnxruntime missing, a model that does not export, a session that does not
open) returns None with one log line: the torch module runs instead, under the eager fp32 torch
side. Hooked and seeded forwards run that torch side too (hooks do not act on a graph), and so
do normstats' shared-statistics forwards (tiles, video): this backend has no statistics graphs.
"""

from __future__ import annotations

import functools
import logging
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ...errors import Img2ImgError
from ...export import INPUT_NAME, onnx_bytes
from ..backend import Backend
from . import cache

if TYPE_CHECKING:
    from ..execution import ExecPlan

log = logging.getLogger(__name__)


@functools.cache
def load_onnxruntime() -> ModuleType | None:
    """The `onnxruntime` module, or None (logged once per process) when it cannot be used."""
    try:
        import onnx  # noqa: F401 - the exporter needs it
        import onnxruntime
    except Exception as e:  # ImportError, or a broken install raising anything at import
        log.info("onnxruntime is not usable (%s: %s): using the torch path", type(e).__name__, e)
        return None
    return onnxruntime


class ONNXRuntimeRunner:
    """Callable like a generator: (B, C, H, W) float32 in [-1, 1] -> float32 CPU tensor."""

    def __init__(self, session, source: nn.Module) -> None:
        self.session = session
        self.source = source  # the torch module it was exported from
        self.providers = session.get_providers()
        self.precision = "f32"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().float().cpu().numpy())
        (y,) = self.session.run(None, {INPUT_NAME: array})
        return torch.from_numpy(y)


def _graph(ort: ModuleType, model: nn.Module) -> bytes:
    """The exported graph of `model`: from the disk cache, else traced (and cached)."""
    entry = cache.key(model, ort.__version__)
    data = cache.load(entry)
    if data is None:
        data = onnx_bytes(model)
        cache.save(entry, data)  # never raises: a failed write is logged
    return data


def convert(model: nn.Module, device: torch.device, threads: int | None = None):
    """`model` (prepared) as an ONNXRuntimeRunner, or None (one log line says why)."""
    ort = load_onnxruntime()
    if ort is None:
        return None
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            log.warning("this onnxruntime has no CUDAExecutionProvider: using torch on %s", device)
            return None
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    name = type(model).__name__
    try:
        session = ort.InferenceSession(_graph(ort, model), options, providers=providers)
    except Img2ImgError as e:  # ExportError: the trace or the exporter failed
        log.warning("ONNX Runtime could not run %s (%s): using torch", name, e)
        return None
    except Exception as e:  # onnxruntime's own errors (a graph it cannot load)
        why = f"{type(e).__name__}: {e}"
        log.warning("ONNX Runtime could not run %s (%s): using torch", name, why)
        return None
    return ONNXRuntimeRunner(session, model)


class ONNXRuntimeBackend(Backend):
    name = "onnxruntime"
    devices = ("cpu", "cuda")
    hooks_work = False

    def available(self) -> bool:
        return load_onnxruntime() is not None

    def convert(self, model: nn.Module, plan: ExecPlan, device: torch.device):
        return convert(model, device)


ONNXRUNTIME = ONNXRuntimeBackend()
