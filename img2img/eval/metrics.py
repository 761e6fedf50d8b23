"""The one table of quality metrics: name -> scope, direction, needs and function.

`img2img evaluate` (which metrics exist, which need targets, the defaults per kind of split),
its HTML report (higher or lower is better) and train.py's validation (the per-image scores
and the set metrics it logs) all read METRICS; no other module lists metric names. The
arithmetic lives in quality.py (pixels only) and perceptual.py (pretrained networks); a row
says how to call it.

A row, Metric(name, scope, higher_is_better, needs, fn, default_on):
    name              lower-case identifier: the --metrics word, the JSON key, the report's
                      column; train.py logs it upper-cased (PSNR, A2B_PSNR, A2B_FID)
    scope             "image": one score per output against its own target, averaged over
                      the images (quality.mean); "set": one score for the outputs as a set
                      against the real images
    higher_is_better  the direction the report states (tests check it: perfect vs noisy)
    needs             a frozenset of NEEDS keys: "target" (paired splits only), "features"
                      (Inception features of both sides, >= 2 images each), and the
                      networks (NETWORKS keys: "inception", "alexnet") it must have loaded
    fn                scope "image": fn(out, target, **nets) -> (N,) float64 scores, where
                      out and target are uint8 (N, 3, H, W) of one shape and nets holds the
                      loaded NETWORKS named in needs, as keyword arguments (lpips gets
                      alexnet=...); scope "set": fn(real, fake) -> float, or (value, std)
                      with the std written beside it as "<name>_std" (kid_std), where real
                      and fake are (N, D) / (M, D) float64 Inception features
    default_on        the kinds of split ("paired", "unpaired") evaluate scores it on when
                      --metrics is not given

register() checks the contract: a unique identifier name, a known scope, known needs, every
image metric needs "target" and no features, every set metric needs "features" (and so
"inception", the network that computes them) and no target, and no metric that needs a
target is a default on unpaired splits. The table's order is the order of the names in the
help text and error messages, of the defaults, and of the set metrics in the JSON (the image
metrics come first, in the order --metrics asked for them).

Who computes what: evaluate computes any row on request. train.py's validation never
downloads and must stay cheap: it logs every image metric that needs no network (today L1,
PSNR, SSIM) for real pairs, and, for CycleGAN runs where the Inception weights are cached and
a GPU is used, every set metric that needs no network but the Inception (FID, KID).

How to add a metric:
    1. write its function with the signature above: in quality.py if it is arithmetic on
       8-bit pixels, in perceptual.py if it needs a pretrained network;
    2. add one row to the tuple at the bottom of this module (or, from outside the package,
       call register(Metric(...)); unregister(name) takes it out again).
That is all: `img2img evaluate --metrics NAME` accepts it, the JSON and the report show it
with its direction, train.py logs it if it is cheap (see above), and tests/test_metrics.py
iterates over the table (finite scores, direction, declared needs). A metric on a new
pretrained network also adds that network: a NETWORKS entry (its weights file, which
perceptual.py downloads and checks, and its constructor) and a NEEDS line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..errors import ConfigError, EvaluationError
from . import perceptual, quality

Scope = Literal["image", "set"]
SCOPES = ("image", "set")
SPLIT_KINDS = ("paired", "unpaired")
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # torch-fidelity's and torchmetrics' defaults


@dataclass(frozen=True)
class Network:
    """A pretrained network metrics share: loaded once per run, handed to the rows needing it."""

    weights: perceptual.MetricWeights  # the file (downloaded on first use by evaluate)
    build: Callable[[torch.device, Path | None], nn.Module]  # path None: fetch the weights


NETWORKS: dict[str, Network] = {
    "alexnet": Network(perceptual.ALEXNET, perceptual.lpips_net),
    "inception": Network(perceptual.INCEPTION, perceptual.inception),
}

NEEDS: dict[str, str] = {
    "target": "each output's own target image (paired splits only)",
    "features": "Inception-v3 features of the outputs and of the real images (>= 2 each)",
    "inception": "the Inception-v3 network (FID weights), which computes the features",
    "alexnet": "the LPIPS network (AlexNet weights), passed to fn as alexnet=",
}


@dataclass(frozen=True)
class Metric:
    """One row of the table (see the module docstring for the contract)."""

    name: str
    scope: Scope
    higher_is_better: bool
    needs: frozenset[str]
    fn: Callable[..., Any]
    default_on: frozenset[str] = field(default_factory=frozenset)

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    @property
    def networks(self) -> tuple[str, ...]:
        """The NETWORKS this row needs loaded, in the table's order."""
        return tuple(n for n in NETWORKS if n in self.needs)


METRICS: dict[str, Metric] = {}


def _check(m: Metric) -> None:
    if not isinstance(m.name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", m.name):
        raise ConfigError(f"metric name {m.name!r}: a lower-case identifier, e.g. 'psnr'")
    if m.name in METRICS:
        raise ConfigError(f"metric {m.name!r} is registered already")
    if m.scope not in SCOPES:
        raise ConfigError(f"metric {m.name!r}: scope {m.scope!r} is not one of {SCOPES}")
    if not isinstance(m.needs, frozenset) or not m.needs <= NEEDS.keys():
        unknown = sorted(set(m.needs) - NEEDS.keys())
        raise ConfigError(f"metric {m.name!r}: needs must be a frozenset of {list(NEEDS)}; "
                          f"unknown: {unknown}")  # fmt: skip
    if m.scope == "image" and ("target" not in m.needs or "features" in m.needs):
        raise ConfigError(f"image metric {m.name!r} must need 'target' and not 'features'")
    if m.scope == "set" and ("features" not in m.needs or "target" in m.needs):
        raise ConfigError(f"set metric {m.name!r} must need 'features' and not 'target'")
    if "features" in m.needs and "inception" not in m.needs:
        raise ConfigError(f"metric {m.name!r} needs features, so it needs 'inception' too")
    if not m.default_on <= set(SPLIT_KINDS) or ("target" in m.needs and "unpaired" in m.default_on):
        raise ConfigError(f"metric {m.name!r}: default_on {set(m.default_on)} is not a set of "
                          f"{SPLIT_KINDS} its needs allow")  # fmt: skip
    if not callable(m.fn):
        raise ConfigError(f"metric {m.name!r}: fn is not callable")


def register(metric: Metric) -> Metric:
    """The one door into the table: checks the contract, appends the row, returns it."""
    _check(metric)
    METRICS[metric.name] = metric
    return metric


def unregister(name: str) -> Metric:
    """Takes a row out again (tests, plugins); returns it."""
    if name not in METRICS:
        raise ConfigError(f"no metric {name!r} is registered")
    return METRICS.pop(name)


def get(name: str) -> Metric:
    if name not in METRICS:
        raise EvaluationError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return METRICS[name]


def of_scope(scope: Scope, networks: Iterable[str] | None = None) -> list[Metric]:
    """The rows of `scope`, in table order; with `networks`, only those needing no other
    network than these (train.py: image metrics with none, set metrics with the Inception)."""
    allowed = None if networks is None else set(networks)
    return [
        m
        for m in METRICS.values()
        if m.scope == scope and (allowed is None or set(m.networks) <= allowed)
    ]


def defaults(kind: str) -> list[str]:
    """What evaluate scores on a split of `kind` ("paired", "unpaired") without --metrics."""
    return [m.name for m in METRICS.values() if kind in m.default_on]


def load_networks(metrics: Iterable[Metric], device: torch.device) -> dict[str, nn.Module]:
    """Every network the rows need, each loaded once (weights downloaded on first use)."""
    wanted = {n for m in metrics for n in m.networks}
    return {n: net.build(device, None) for n, net in NETWORKS.items() if n in wanted}


def image_scores(
    metrics: Iterable[Metric],
    out: torch.Tensor,
    target: torch.Tensor,
    nets: dict[str, nn.Module] | None = None,
) -> dict[str, torch.Tensor]:
    """{name: (N,) float64 scores} of uint8 (N, 3, H, W) outputs against their targets."""
    nets = nets or {}
    return {m.name: m.fn(out, target, **{n: nets[n] for n in m.networks}) for m in metrics}


def set_score(metric: Metric, real: torch.Tensor, fake: torch.Tensor) -> tuple[float, float | None]:
    """(value, std or None) of a set metric on (N, D) real and (M, D) fake features."""
    value = metric.fn(real, fake)
    if isinstance(value, tuple):
        return float(value[0]), float(value[1])
    return float(value), None


# ----------------------------------------------------------------------------- the rows


def _lpips(out: torch.Tensor, target: torch.Tensor, alexnet: nn.Module) -> torch.Tensor:
    return perceptual.lpips(alexnet, out, target)


def _kid(real: torch.Tensor, fake: torch.Tensor) -> tuple[float, float]:
    return perceptual.kid(real, fake, KID_SUBSETS, KID_SUBSET_SIZE)


PAIRED, UNPAIRED = frozenset({"paired"}), frozenset({"unpaired"})
PIXELS, FEATURES = frozenset({"target"}), frozenset({"features", "inception"})

for _row in (
    Metric("l1", "image", False, PIXELS, quality.l1, PAIRED),
    Metric("psnr", "image", True, PIXELS, quality.psnr, PAIRED),
    Metric("ssim", "image", True, PIXELS, quality.ssim, PAIRED),
    Metric("lpips", "image", False, PIXELS | {"alexnet"}, _lpips),
    Metric("fid", "set", False, FEATURES, perceptual.fid, UNPAIRED),
    Metric("kid", "set", False, FEATURES, _kid, UNPAIRED),
):
    register(_row)
del _row
