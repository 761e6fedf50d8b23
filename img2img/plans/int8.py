"""The `openvino-int8` plan: int8 convolutions where they are cheap in fidelity, calibrated once
on the user's own photos, never on the request images; never chosen by `auto_plan`.

`quantize(model, images)` converts the prepared generator to OpenVINO, quantizes it with NNCF
(`pip install nncf`; MIXED preset: symmetric weights per channel, asymmetric activations) and
stores the int8 model in the OpenVINO disk cache under the weights' key (tag "int8"). The
plan's backend loads that entry; a model without one runs the plain `openvino` plan (one log
line says so), so the plan never calibrates by itself.

Which ops are int8 (`int8_scope`): the Convolution ops except the first (it reads the image)
and the last (it writes the output); every MVN (InstanceNorm), Add (residual stream, biases)
and ConvolutionBackpropData (upsampling) stays in the float precision of the hint (bf16 on a
native-bf16 CPU, f32 elsewhere). On vintagify's trained ResNet-9 that is the residual blocks'
and downsampling convolutions (~93 % of the multiply-adds): 49.7 dB 8-bit PSNR against eager
fp32 on held-out photos at 1.54x the default plan on an AVX-512 BF16 CPU, where quantizing
everything gave 15-24 dB (bench/bench_int8.py, docs/speed.md "int8": the norms' inputs, the
image and the ConvTranspose inputs carry the error). Other architectures were not measured;
bench/bench_int8.py measures a model before its int8 entry is trusted.

Shared-statistics forwards (tiles, video: normstats' graphs) and the hooked / seeded ones run
as under the `openvino` plan (float graphs, torch side), the int8 model only the plain forward.
The cache keeps at most 8 entries (openvino/cache.py): a pruned int8 entry means the plan
runs the `openvino` plan again until `quantize` is run again.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, MissingDependencyError
from .backend import Backend
from .openvino import cache as openvino_cache
from .openvino import runner as openvino_runner
from .openvino.backend import OpenVINOBackend

log = logging.getLogger(__name__)

TAG = "int8"
FLOAT_TYPES = ("MVN", "Add", "ConvolutionBackpropData")


def _nncf():
    try:
        import nncf
    except ImportError as e:
        raise MissingDependencyError("int8 quantization needs nncf: pip install nncf") from e
    return nncf


def _entry(ov, model: nn.Module) -> str:
    graph = openvino_runner.generator_graph(model)
    return openvino_cache.key(model, ov.__version__, graph.examples[0].shape[-1], TAG)


def int8_scope(nncf, ov_model):
    """The IgnoredScope that keeps everything float but the inner Convolution ops."""
    ops = list(ov_model.get_ordered_ops())
    convs = [op.get_friendly_name() for op in ops if op.get_type_name() == "Convolution"]
    names = [op.get_friendly_name() for op in ops if op.get_type_name() in FLOAT_TYPES]
    names += convs[:1] + convs[-1:]
    return nncf.IgnoredScope(names=names, validate=False)


def quantize(model: nn.Module, images: Sequence[torch.Tensor]) -> str:
    """Calibrate `model` (prepared: eval, CPU) on `images` ((1, 3, H, W) in [-1, 1], the
    user's photos, not the ones it will translate) and cache the int8 model the
    `openvino-int8` plan runs; returns the cache entry. MissingDependencyError without
    openvino or nncf, ConfigError without images."""
    ov = openvino_runner.load_openvino()
    if ov is None:
        raise MissingDependencyError("int8 quantization needs openvino: pip install openvino")
    nncf = _nncf()
    if not images:
        raise ConfigError("int8 quantization needs calibration images")
    converted = openvino_runner._trace(ov, openvino_runner.generator_graph(model))
    data = [np.ascontiguousarray(x.detach().float().cpu().numpy()) for x in images]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = nncf.quantize(
            converted,
            nncf.Dataset(data),
            subset_size=len(data),
            preset=nncf.QuantizationPreset.MIXED,
            ignored_scope=int8_scope(nncf, converted),
        )
    entry = _entry(ov, model)
    openvino_cache.save(ov, entry, quantized)
    return entry


class OpenVINOInt8Backend(OpenVINOBackend):
    """The int8 entry `quantize` cached for these weights, else the `openvino` plan's model."""

    name = "openvino-int8"  # its runner is an OpenVINORunner: normstats, throughput alike

    def convert(self, model: nn.Module, plan, device: torch.device):
        ov = openvino_runner.load_openvino()
        if ov is None:
            return None
        bf16 = plan.dtype == torch.bfloat16
        cached = openvino_cache.load(ov, _entry(ov, model))
        if cached is None:
            log.warning("no int8 model for these weights (img2img.plans.int8.quantize): openvino")
            return openvino_runner.convert(model, native_bf16=bf16, throughput=plan.throughput)
        precision = openvino_runner.precision_hint(bf16)
        threads = int(torch.get_num_threads())
        config = openvino_runner._config(precision, threads)
        try:
            compiled = ov.Core().compile_model(cached, "CPU", config)
        except Exception as e:  # an entry this plugin does not compile: the float plan
            log.warning("the int8 model does not compile (%s): openvino", openvino_cache.reason(e))
            return openvino_runner.convert(model, native_bf16=bf16, throughput=plan.throughput)
        model_for_batches = cached if plan.throughput else None
        return openvino_runner.OpenVINORunner(
            compiled, precision, model, threads, model_for_batches
        )


OPENVINO_INT8: Backend = OpenVINOInt8Backend()
