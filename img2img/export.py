"""A generator exported to ONNX or OpenVINO IR, to run without img2img (`img2img export`).

    export(REF or module, "onnx" | "openvino", PATH) -> the files written

REF is what `translate --checkpoint` takes (a catalog id, custom/<name>, a checkpoint file or
folder). The exported graph computes what the Translator computes on a tensor at the working
size, for every architecture of models.registry:

    image (B, C_in, H, W) float32 in [-1, 1], any batch, height and width
      -> pad right/bottom to the architecture's multiple (reflect; replicate where reflection
         cannot reach, a strip thinner than its pad: media.processing.pad_to_multiple)
      -> the generator, BatchNorm with each image's own statistics ("image", the pix2pix test
         semantics; "running": eval-mode running statistics), dropout off
      -> cropped back to H x W: output (B, C_out, H, W) in [-1, 1]

Each image of a batch is normalised with its own statistics (InstanceNormalization in the
graph), so a batch gives what each image gives alone. Resizing (the working long side), the
alpha channel and 8-bit conversion stay outside: they are the caller's.

Capture: torch.onnx's TorchScript exporter (dynamo=False), for both formats' trace (OpenVINO
traces the same way through its PyTorch frontend). The torch.export-based exporter, torch's
default since 2.9, guards the U-Nets' sizes: its symbolic shapes cannot prove that the skip
concatenations line up for a padded size it does not know, and it pins H and W (or refuses
them) instead of keeping them dynamic. The traced graph keeps every size dynamic: the pad
amounts and the crop are computed from the input's shape inside the graph.

What the files carry (ONNX metadata_props; OpenVINO rt_info under "img2img"): the
architecture and its config (config.json's contents), the size multiple, the norm mode, this
package's version, the input/output contract and `weights_sha256`, a digest of the weights
(`fingerprint`): `img2img push` uses it to refuse an export made from other weights.
Files are written whole or not at all (atomic.py): a temporary beside the target, renamed.
OpenVINO writes two files (.bin first, then .xml): each is whole, but a crash between the
two renames can pair a new .bin with the previous .xml (the fingerprint tells them apart).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from . import __version__, atomic
from .errors import ConfigError, ExportError, MissingDependencyError
from .media.processing import MIN_SIDE
from .models import registry
from .models.norm import set_image_stats

FORMATS = ("onnx", "openvino")
SUFFIX = {"onnx": ".onnx", "openvino": ".xml"}
# File names beside config.json + model.safetensors in a release folder (`img2img push`).
FILE_NAMES = {"onnx": "model.onnx", "openvino": "openvino_model.xml"}
OPSET = 17  # InstanceNormalization, Pad and Range as every runtime of the last years reads them
INPUT_NAME, OUTPUT_NAME = "image", "output"
DYNAMIC = {0: "batch", 2: "height", 3: "width"}
PIP = "pip install 'img2img-gan[export]'  (onnx, onnxruntime)"


def _import(name: str):
    try:
        return __import__(name)
    except ImportError as e:
        raise MissingDependencyError(f"exporting to ONNX needs {name}: {PIP}") from e


# ---------------------------------------------------------------------------- the graph


def _rows(n: torch.Tensor, padded: torch.Tensor, reflect: torch.Tensor) -> torch.Tensor:
    """Source index of each of `padded` rows: itself inside, then its reflection (or the last
    row when `reflect` is false). n, padded: 0-dim int64 (traced: shape-dependent)."""
    i = torch.arange(padded)
    return torch.where(i < n, i, torch.where(reflect, 2 * (n - 1) - i, n - 1))


class Padded(nn.Module):
    """`generator` on any H x W: padded to its multiple as the Translator pads, cropped back.

    Sizes are tensors (torch._shape_as_tensor), so a trace records the arithmetic instead of
    the example's numbers; the padding is a gather of rows and columns, exactly
    pad_to_multiple's reflect / replicate."""

    def __init__(self, generator: nn.Module, multiple: int) -> None:
        super().__init__()
        self.generator = generator
        self.multiple = multiple
        self.least = -(-MIN_SIDE // multiple)  # smallest padded side, in multiples

    def _padded(self, n: torch.Tensor) -> torch.Tensor:
        blocks = torch.div(n + self.multiple - 1, self.multiple, rounding_mode="floor")
        return torch.clamp(blocks, min=self.least) * self.multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C_out, H, W)."""
        shape = torch._shape_as_tensor(x)
        h, w = shape[2], shape[3]
        hp, wp = self._padded(h), self._padded(w)
        reflect = (hp - h < h) & (wp - w < w)  # pad_to_multiple: reflect only if both can
        x = x.index_select(2, _rows(h, hp, reflect)).index_select(3, _rows(w, wp, reflect))
        y = self.generator(x)  # (B, C_out, hp, wp)
        return y.index_select(2, torch.arange(h)).index_select(3, torch.arange(w))


def prepared(model: nn.Module, norm_stats: str = "image", pad: bool = True) -> nn.Module:
    """A copy of `model` as the export traces it: eval (dropout off), no grad, on the CPU,
    BatchNorm statistics per `norm_stats`, wrapped in `Padded` when `pad`."""
    if norm_stats not in ("image", "running"):
        raise ConfigError(f"norm_stats must be 'image' or 'running', got {norm_stats!r}")
    config = _config(model)
    model = copy.deepcopy(model).cpu().eval().requires_grad_(False)
    set_image_stats(model, norm_stats == "image")
    return Padded(model, registry.size_multiple(config)).eval() if pad else model


def _config(model: nn.Module) -> dict:
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise ConfigError(
            f"{type(model).__name__} has no .config: export modules built by img2img.models "
            "or loaded with img2img.load_generator"
        )
    registry.get_architecture(config.get("architecture"))
    return config


def example(model: nn.Module) -> torch.Tensor:
    """The trace's input: one image of the smallest side the architecture takes (>= 64), on
    the module's device (the graph is the same at every size: the input is dynamic)."""
    inner = model.generator if isinstance(model, Padded) else model
    side = max(registry.size_multiple(_config(inner)), 64)
    channels = int(_config(inner).get("in_channels", 3))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return torch.zeros(1, channels, side, side, device=device)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The tracer's notes (sizes taken as constants, the TorchScript exporter's deprecation)
    are about generality that the dynamic-shape tests cover; they would only alarm users."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=UserWarning)  # constant-folding notes
        yield


def onnx_bytes(module: nn.Module) -> bytes:
    """`module` (prepared: eval, its norm mode set) as an ONNX model, batch, height and width
    dynamic. Raises ExportError when the trace or the exporter fails."""
    _import("onnx")
    buffer = io.BytesIO()
    try:
        with _quiet():
            torch.onnx.export(
                module,
                (example(module),),
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: DYNAMIC, OUTPUT_NAME: DYNAMIC},
            )
    except Exception as e:  # the exporter raises many kinds; the caller gets one
        raise ExportError(f"{type(module).__name__} did not export to ONNX: {e}") from e
    return buffer.getvalue()


# ---------------------------------------------------------------------------- metadata


def fingerprint(model: nn.Module) -> str:
    """SHA-256 of the weights (every state-dict tensor: name, dtype, shape, bytes)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(repr((t.dtype, tuple(t.shape))).encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def metadata(model: nn.Module, norm_stats: str) -> dict[str, str]:
    """What an exported file says about itself (string keys and values)."""
    config = _config(model)
    return {
        "architecture": str(config["architecture"]),
        "config": json.dumps(config, sort_keys=True),
        "size_multiple": str(registry.size_multiple(config)),
        "norm_stats": norm_stats,
        "weights_sha256": fingerprint(model),
        "img2img_version": __version__,
        "input": f"{INPUT_NAME}: float32 (batch, channels, height, width) in [-1, 1], any size",
        "output": f"{OUTPUT_NAME}: float32 (batch, channels, height, width) in [-1, 1]",
        "padding": "inside the graph: reflect (replicate when reflection cannot) to the "
        "size multiple, cropped back",
    }


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata an export of ours carries ({} when it has none). ExportError if the file
    cannot be read as its format."""
    path = Path(path)
    try:
        if path.suffix == SUFFIX["openvino"]:
            ov = _openvino()
            model = ov.Core().read_model(str(path))
            if not model.has_rt_info(["img2img"]):
                return {}
            info = model.get_rt_info()["img2img"]
            return {key: str(info[key].astype(str)) for key in info}
        onnx = _import("onnx")
        proto = onnx.load(str(path), load_external_data=False)
        return {p.key.removeprefix("img2img."): p.value for p in proto.metadata_props}
    except (MissingDependencyError, ExportError):
        raise
    except Exception as e:  # protobuf's DecodeError, OpenVINO's RuntimeError, OSError
        raise ExportError(f"{path} cannot be read as an export: {e}") from e


# ---------------------------------------------------------------------------- writing


def _openvino():
    try:
        import openvino
    except ImportError as e:
        raise MissingDependencyError(
            "exporting to OpenVINO needs openvino: pip install 'openvino==2026.4.1'"
        ) from e
    return openvino


def target(path: str | os.PathLike, fmt: str) -> Path:
    """The file to write: `path`, or the release name inside it when it is a folder."""
    path = Path(path)
    return path / FILE_NAMES[fmt] if path.is_dir() else path


def _write_onnx(module: nn.Module, info: dict[str, str], path: Path) -> list[Path]:
    onnx = _import("onnx")
    proto = onnx.load_from_string(onnx_bytes(module))
    for key, value in info.items():
        proto.metadata_props.add(key=f"img2img.{key}", value=value)
    with atomic.atomic_file(path) as f:
        f.write(proto.SerializeToString())
    return [path]


def _write_openvino(module: nn.Module, info: dict, path: Path, fp16: bool) -> list[Path]:
    ov = _openvino()
    x = example(module)
    shape = ov.PartialShape([-1, int(x.shape[1]), -1, -1])  # batch, height, width dynamic
    try:
        with _quiet():
            model = ov.convert_model(module, example_input=x, input=[shape])
    except Exception as e:  # OpenVINO's frontend raises RuntimeError / OpConversionFailure
        raise ExportError(f"{type(module).__name__} did not convert to OpenVINO: {e}") from e
    for key, value in info.items():
        model.set_rt_info(value, ["img2img", key])
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=fp16)
        written = [path.with_suffix(".bin"), path]
        for name, final in zip(("model.bin", "model.xml"), written, strict=True):
            with open(tmp / name, "rb") as f:  # durable before it takes the final name
                os.fsync(f.fileno())
            os.chmod(tmp / name, 0o644)
            os.replace(tmp / name, final)  # the .bin first: the .xml names a whole pair
        atomic.fsync_dir(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return written


def export(
    model: nn.Module | str | os.PathLike,
    fmt: str,
    path: str | os.PathLike,
    norm_stats: str = "image",
    fp16_weights: bool = False,
) -> list[Path]:
    """Export `model` (a generator, or a reference `translate --checkpoint` takes) to
    `fmt` at `path` (a file, or a folder: FILE_NAMES inside it); returns the files written.

    `fp16_weights` (openvino only) stores the weights in float16 (half the size; results
    differ slightly); by default they stay float32, as the torch module computes.
    Raises ConfigError (bad format or option), CheckpointError (REF does not load),
    ExportError (the model does not export, or a file cannot be written),
    MissingDependencyError (onnx / openvino not installed).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    if fp16_weights and fmt != "openvino":
        raise ConfigError("fp16 weights are an OpenVINO option (ONNX keeps float32)")
    if not isinstance(model, nn.Module):
        from .checkpoints.hub import load_model

        model = load_model(model)  # a download shows its bar on stderr
    module = prepared(model, norm_stats)
    info = metadata(model, norm_stats)
    path = target(path, fmt)
    try:
        if fmt == "onnx":
            return _write_onnx(module, info, path)
        return _write_openvino(module, info, path, fp16_weights)
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from e
