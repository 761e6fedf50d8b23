"""int8 for the trained ResNet-9 on a CPU: post-training quantization (NNCF) variants and QAT,
PSNR against eager fp32 on held-out photos and ms/frame against eager fp32 and the default plan.

Network: vintagify's trained CycleGAN ResNet-9 (`pip install vintagify`, MIT:
resources/G_A2B_epoch33.pth). Photos: scikit-image's data images. Held out for measuring (never
seen by calibration or fine-tuning): astronaut, coffee, chelsea, rocket, centre-cropped and
resized to 256² and 256x192 (W x H). Calibration / fine-tuning: random crops of the other
photographs (hubble_deep_field, motorcycle left/right, retina, ihc, and the grey ones as RGB).

Variants (each an OpenVINO model; int8 parts by NNCF's FakeQuantize, the rest in the precision
hint of the row, bf16 or f32): `ptq-*` nncf.quantize on the fp32 IR with presets, bias
correction and ignored scopes (`ptq-mixed-int8-res-down`: int8 only in the residual blocks'
and downsampling convolutions, the recipe that clears 45 dB); `fq-*` the sensitivity study:
one MIXED quantization without bias correction whose activation FakeQuantize nodes are
removed outside the named layer groups (`fq-only-norm`: only the InstanceNorm inputs stay
quantized; weights stay int8 in all), so each group's share of the error is read without
re-calibrating (their times are not int8 speed: f32 hint, dequantized weights); `qat` NNCF's
torch quantization fine-tuned (--qat-minutes) on L1 against the fp32 outputs, exported to
OpenVINO; `plan` the openvino-int8 plan (img2img/plans/int8.py: quantize on the calibration
crops, then run through the Translator; it writes the int8 entry to the OpenVINO cache).
`--variants` takes names and `prefix*` patterns, or `all` (each PTQ calibration takes 1-7 min
on 2 loaded cores).

Fidelity: 8-bit PSNR of the variant's output against eager fp32 (bench_inference.fidelity8),
pooled over the held-out photos at 256² (and the worst photo). Speed: best and median of
`--reps` interleaved rounds (the machine may be shared: ratios are paired within a round).
Prints JSON lines; appends a table to bench/RESULTS.md.

    pip install nncf   # or the package's int8 extra (3.4.0 measured)
    python bench/bench_int8.py [--variants ptq-mixed-int8-res-down 'fq-*' qat ...]
                               [--calib 32] [--reps 5] [--qat-minutes 14] [--no-record]

The first QAT run builds NNCF's CPU extension (minutes on a loaded machine): set
NNCF_EXTENSION_LOAD_TIMEOUT=0 so its 60 s limit does not abort the build.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_inference import fidelity8  # noqa: E402
from bench.common import append_results, cpu_kind, emit, machine  # noqa: E402
from img2img import load_generator  # noqa: E402
from img2img.plans import execution  # noqa: E402

HELD_OUT = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg")
TRAIN = (
    "hubble_deep_field.jpg", "motorcycle_left.png", "motorcycle_right.png", "retina.jpg",
    "ihc.png", "camera.png", "brick.png", "grass.png", "gravel.png", "moon.png", "coins.png",
    "clock_motion.png",
)  # fmt: skip
SIZES = ((256, 256), (256, 192))  # (W, H)

# Layer groups of the ResNet-9, by the friendly names of the converted graph's ops (the
# consumers of each FakeQuantize): `group(name)`.
GROUPS = ("norm", "resadd", "first7x7", "down", "res", "up", "last7x7")
COMBOS = {  # sensitivity variants: FakeQuantize kept only for these groups
    "all": GROUPS,
    **{f"only-{g}": (g,) for g in GROUPS},
    "drop-norm": tuple(g for g in GROUPS if g != "norm"),
    "drop-norm-resadd": ("first7x7", "down", "res", "up", "last7x7"),
    "drop-norm-resadd-last": ("first7x7", "down", "res", "up"),
    "drop-norm-resadd-first-last": ("down", "res", "up"),
    "drop-norm-resadd-first-last-up": ("down", "res"),
    "only-res-convs-down": ("down", "res"),
}


DEFAULT_VARIANTS = ["ptq-performance", "ptq-mixed-float-norm", "ptq-mixed-int8-res-down",
                    "plan"]  # fmt: skip
FLOAT_BUT_RES_DOWN = ("norm", "resadd", "first7x7", "last7x7", "up")


def group(name: str) -> str:
    """The layer group of an op of the converted ResNet-9 (its friendly name)."""
    if "instance_norm" in name:
        return "norm"
    if "aten::add" in name:
        return "resadd"
    try:
        index = int(name.removeprefix("__module.model.").split("/")[0].split(".")[0])
    except ValueError:
        return "other"
    if index <= 1:
        return "first7x7"
    if index <= 9:
        return "down"
    if index <= 18:
        return "res"
    if index <= 24:
        return "up"
    return "last7x7"


def skimage_data() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.origin:
        raise SystemExit("scikit-image is needed for the photos (pip install scikit-image)")
    return Path(spec.origin).parent / "data"


def to_tensor(img: Image.Image) -> torch.Tensor:
    a = np.asarray(img.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(a).permute(2, 0, 1)[None] / 127.5 - 1


def centre(img: Image.Image, w: int, h: int) -> Image.Image:
    s = min(img.width / w, img.height / h)
    cw, ch = round(w * s), round(h * s)
    left, top = (img.width - cw) // 2, (img.height - ch) // 2
    return img.crop((left, top, left + cw, top + ch)).resize((w, h), Image.BICUBIC)


def held_out(w: int, h: int) -> list[torch.Tensor]:
    data = skimage_data()
    return [to_tensor(centre(Image.open(data / name).convert("RGB"), w, h)) for name in HELD_OUT]


def train_crops(n: int, seed: int = 0, side: int = 256) -> list[torch.Tensor]:
    """`n` random crops (scale 0.35-1 of the short side) of the training photos, resized to
    side² or side x 3/4 side, alternating."""
    data = skimage_data()
    photos = [Image.open(data / name).convert("RGB") for name in TRAIN]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = photos[i % len(photos)]
        w, h = (side, side) if i % 2 == 0 else (side, side * 3 // 4)
        s = rng.uniform(0.35, 1.0) * min(img.width / w, img.height / h)
        cw, ch = int(w * s), int(h * s)
        left = int(rng.integers(0, img.width - cw + 1))
        top = int(rng.integers(0, img.height - ch + 1))
        crop = img.crop((left, top, left + cw, top + ch)).resize((w, h), Image.BICUBIC)
        out.append(to_tensor(crop))
    return out


def vintagify() -> torch.nn.Module:
    spec = importlib.util.find_spec("vintagify")
    if spec is None or not spec.origin:
        raise SystemExit("vintagify is needed for the trained ResNet-9 (pip install vintagify)")
    weights = Path(spec.origin).parent / "resources" / "G_A2B_epoch33.pth"
    return load_generator(weights).eval()


def convert(ov, model: torch.nn.Module):
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ov.convert_model(
            model,
            example_input=torch.zeros(1, 3, 64, 64),
            input=[ov.PartialShape([-1, 3, -1, -1])],
        )


def compile_ov(ov, model, precision: str):
    config = {
        "INFERENCE_PRECISION_HINT": precision,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
    }
    compiled = ov.Core().compile_model(model, "CPU", config)
    request = compiled.create_infer_request()

    def run(x: torch.Tensor) -> torch.Tensor:
        result = request.infer([np.ascontiguousarray(x.numpy())])
        return torch.from_numpy(np.array(result[compiled.outputs[0]], copy=True))

    return run


def fq_consumers(model) -> list[tuple[object, list[str]]]:
    """Each FakeQuantize node with the friendly names of the ops it feeds."""
    out = []
    for op in model.get_ordered_ops():
        if op.get_type_name() == "FakeQuantize":
            users = [t.get_node().get_friendly_name() for t in op.output(0).get_target_inputs()]
            out.append((op, users))
    return out


def strip_fq(model, keep) -> int:
    """Remove (bypass) every FakeQuantize whose consumers are not all kept by `keep(name)`;
    returns how many remain. Works on a copy the caller made."""
    remaining = 0
    for op, users in fq_consumers(model):
        if all(keep(u) for u in users):
            remaining += 1
            continue
        op.output(0).replace(op.input_value(0))
    model.validate_nodes_and_infer_types()
    return remaining


def fq_report(model) -> dict:
    """Where the FakeQuantize nodes feed: counts per consumer type, and whether any feeds MVN."""
    types: dict[str, int] = {}
    ops = {op.get_friendly_name(): op.get_type_name() for op in model.get_ordered_ops()}
    for _, users in fq_consumers(model):
        for u in users:
            types[ops.get(u, "?")] = types.get(ops.get(u, "?"), 0) + 1
    return types


def quantize(nncf, ov_model, calib, **kw):
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    adv = kw.pop("advanced", {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nncf.quantize(
            ov_model,
            nncf.Dataset(calib, lambda t: t.numpy()),
            subset_size=len(calib),
            advanced_parameters=AdvancedQuantizationParameters(**adv),
            **kw,
        )


def ignored(nncf, ov_model, groups: list[str]):
    """An IgnoredScope naming the Convolution / Add ops of `groups` (and the adds' inputs)."""
    names = []
    for op in ov_model.get_ordered_ops():
        n = op.get_friendly_name()
        kind = op.get_type_name()
        if kind in ("Convolution", "ConvolutionBackpropData", "Add", "MVN") and group(n) in groups:
            names.append(n)
    return nncf.IgnoredScope(names=names, validate=False)


def psnr_row(outs: list[torch.Tensor], refs: list[torch.Tensor]) -> dict:
    pooled = fidelity8(
        torch.cat([o.flatten() for o in outs]), torch.cat([r.flatten() for r in refs])
    )
    worst = min(
        (fidelity8(o, r)["psnr8_db"] for o, r in zip(outs, refs, strict=True)),
        key=lambda v: float(v),
    )
    return {"psnr8_db": pooled["psnr8_db"], "psnr8_worst_db": worst,
            "max_levels": pooled["max_levels"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, help="or: all")
    parser.add_argument("--calib", type=int, default=32, help="calibration crops")
    parser.add_argument("--reps", type=int, default=5, help="timing rounds (best and median)")
    parser.add_argument("--qat-minutes", type=float, default=0, help="QAT budget (0: none)")
    parser.add_argument("--qat-lr", type=float, default=1e-5)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    import nncf
    import openvino as ov

    torch.manual_seed(0)
    model = vintagify()
    t0 = time.perf_counter()
    fp32_ir = convert(ov, model)
    emit({"bench": "int8", "note": f"fp32 IR converted in {time.perf_counter() - t0:.1f} s"})
    calib = train_crops(args.calib)
    inputs = {(w, h): held_out(w, h) for w, h in SIZES}
    with torch.no_grad():
        refs = {k: [model(x) for x in xs] for k, xs in inputs.items()}

    runners: dict[str, object] = {}
    rows: dict[str, dict] = {}

    def add(name: str, ov_model, precision: str, **extra) -> None:
        fn = compile_ov(ov, ov_model, precision)
        row = {"bench": "int8", "variant": name, "precision_hint": precision, **extra}
        for (w, h), xs in inputs.items():
            outs = [fn(x) for x in xs]
            fid = psnr_row(outs, refs[(w, h)])
            row |= {f"{k}_{w}x{h}": v for k, v in fid.items()}
        emit(row)
        rows[name] = row
        runners[name] = fn

    plan = execution.make_plan("openvino")
    default = execution.compiled(execution.prepare(model, plan, torch.device("cpu")), plan)
    emit({"bench": "int8", "note": f"default plan {plan.describe()} precision "
          f"{getattr(default, 'precision', '?')}, CPU kind {cpu_kind()}"})  # fmt: skip
    runners["eager fp32"] = lambda x: model(x)
    runners["default plan"] = lambda x: execution.forward(default, x, plan, torch.device("cpu"))
    rows["eager fp32"] = {"bench": "int8", "variant": "eager fp32 (reference)"}
    rows["default plan"] = {"bench": "int8", "variant": f"default plan ({plan.describe()}, "
                            f"{getattr(default, 'precision', '?')})"}  # fmt: skip
    for (w, h), xs in inputs.items():
        outs = [runners["default plan"](x) for x in xs]
        rows["default plan"] |= {f"{k}_{w}x{h}": v for k, v in psnr_row(outs, refs[(w, h)]).items()}
    emit(rows["default plan"])

    wanted = None if args.variants == ["all"] else args.variants
    P = nncf.QuantizationPreset

    def want(name: str) -> bool:
        return (
            wanted is None
            or name in wanted
            or any(name.startswith(w.rstrip("*")) for w in wanted if w.endswith("*"))
        )

    ptq = {
        "ptq-performance": dict(preset=P.PERFORMANCE),
        "ptq-mixed": dict(preset=P.MIXED),
        "ptq-mixed-fullbc": dict(preset=P.MIXED, fast_bias_correction=False),
        "ptq-mixed-nobc": dict(preset=P.MIXED, advanced={"disable_bias_correction": True}),
        "ptq-mixed-sq": dict(preset=P.MIXED, advanced={"smooth_quant_alphas": _sq(0.5)}),
        "ptq-mixed-float-norm": dict(preset=P.MIXED, ignored_scope=("norm",)),
        "ptq-performance-float-norm": dict(preset=P.PERFORMANCE, ignored_scope=("norm",)),
        "ptq-mixed-float-norm-resadd": dict(preset=P.MIXED, ignored_scope=("norm", "resadd")),
        # int8 only where the FLOPs are and the error is not: the residual blocks' and the
        # downsampling convolutions (~92 % of the multiply-adds at 256²)
        "ptq-mixed-int8-res-down": dict(preset=P.MIXED, ignored_scope=FLOAT_BUT_RES_DOWN),
        "ptq-performance-int8-res-down": dict(
            preset=P.PERFORMANCE, ignored_scope=FLOAT_BUT_RES_DOWN
        ),
        "ptq-mixed-int8-res-down-fullbc": dict(
            preset=P.MIXED, ignored_scope=FLOAT_BUT_RES_DOWN, fast_bias_correction=False
        ),
        "ptq-mixed-int8-res": dict(preset=P.MIXED, ignored_scope=(*FLOAT_BUT_RES_DOWN, "down")),
    }
    for name, kw in ptq.items():
        if not want(name):
            continue
        kw = dict(kw)
        if "ignored_scope" in kw:
            kw["ignored_scope"] = ignored(nncf, fp32_ir, list(kw["ignored_scope"]))
        t0 = time.perf_counter()
        q = quantize(nncf, fp32_ir, calib, **kw)
        took = round(time.perf_counter() - t0, 1)
        for precision in ("bf16", "f32"):
            add(f"{name} [{precision}]", q, precision, quantize_s=took, fq_feed=fq_report(q))

    if any(want(f"fq-{c}") for c in COMBOS):
        t0 = time.perf_counter()
        base = quantize(nncf, fp32_ir, calib, preset=P.MIXED,
                        advanced={"disable_bias_correction": True})  # fmt: skip
        took = round(time.perf_counter() - t0, 1)
        for combo, keep in COMBOS.items():
            if not want(f"fq-{combo}"):
                continue
            m = base.clone()
            left = strip_fq(m, lambda u, k=keep: group(u) in k)
            add(f"fq-{combo} [f32]", m, "f32", fq_left=left, quantize_s=took)

    if want("plan"):  # the openvino-int8 plan itself: int8.quantize, then the Translator
        from img2img import Translator
        from img2img.plans import int8

        t0 = time.perf_counter()
        int8.quantize(model, calib)
        took = round(time.perf_counter() - t0, 1)
        translator = Translator(device="cpu", plan="openvino-int8")
        translator.prepare(model)
        fn = lambda x: translator.forward(model, x)  # noqa: E731
        row = {"bench": "int8", "variant": "plan openvino-int8 (Translator)", "quantize_s": took}
        for (w, h), xs in inputs.items():
            fid = psnr_row([fn(x) for x in xs], refs[(w, h)])
            row |= {f"{k}_{w}x{h}": v for k, v in fid.items()}
        emit(row)
        rows["plan"], runners["plan"] = row, fn

    if args.qat_minutes > 0 and want("qat"):
        q, info = qat(nncf, model, calib, args.qat_minutes, args.qat_lr)
        qat_ir = convert(ov, q)
        for precision in ("bf16", "f32"):
            add(f"qat [{precision}]", qat_ir, precision, **info)

    lines = table(runners, rows, inputs, args.reps)
    if not args.no_record:
        append_results("int8 (trained ResNet-9, held-out photos)", lines)


def qat(nncf, model, calib, minutes: float, lr: float, side: int = 128):
    """nncf's torch quantization (MIXED) of a copy of `model`, calibrated on `calib`, then
    fine-tuned for `minutes` (Adam, L1 against the fp32 model's outputs) on random side² crops
    of the training photos (never the held-out ones). Returns the quantized module (eval) and
    what the run did."""
    student = copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = nncf.quantize(student, nncf.Dataset(calib), subset_size=len(calib),
                          preset=nncf.QuantizationPreset.MIXED)  # fmt: skip
    pool = train_crops(96, seed=1, side=side)
    with torch.no_grad():
        targets = [model(x) for x in pool]
        pairs = zip(pool[:8], targets[:8], strict=True)
        before = float(np.mean([(q(x) - t).abs().mean().item() for x, t in pairs]))
    q.train()
    opt = torch.optim.Adam([p for p in q.parameters() if p.requires_grad], lr=lr)
    start, step, losses = time.perf_counter(), 0, []
    while time.perf_counter() - start < minutes * 60:
        i = step % len(pool)
        loss = (q(pool[i]) - targets[i]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 20 == 0:
            last = round(float(np.mean(losses[-20:])), 5)
            emit({"bench": "int8", "qat_step": step, "l1_last20": last,
                  "s": round(time.perf_counter() - start)})  # fmt: skip
    q.eval()
    last = round(float(np.mean(losses[-20:])), 5) if losses else None
    info = {"qat_steps": step, "qat_crop": side, "qat_lr": lr, "l1_before": round(before, 5),
            "l1_after_last20": last}  # fmt: skip
    return q, info


def _sq(alpha: float):
    from nncf.quantization.advanced_parameters import AdvancedSmoothQuantParameters

    return AdvancedSmoothQuantParameters(convolution=alpha)


def table(runners, rows, inputs, reps: int) -> list[str]:
    """Interleaved timing rounds of every runner at each size; the table lines."""
    times = {(name, k): [] for name in runners for k in inputs}
    with torch.no_grad():
        for name in runners:  # warm-up
            for xs in inputs.values():
                runners[name](xs[0])
        for _ in range(reps):
            for k, xs in inputs.items():
                for name, fn in runners.items():
                    t0 = time.perf_counter()
                    fn(xs[0])
                    times[(name, k)].append(time.perf_counter() - t0)
    lines = [
        "| variant | PSNR 8-bit 256² dB (worst photo) | 256x192 dB | ms/frame 256² best (median) "
        "| 256x192 | × eager fp32 (256², best) | × default plan (256², best) |",
        "|---|---|---|---|---|---|---|",
    ]
    k256, k192 = list(inputs)
    best = {key: min(v) for key, v in times.items()}
    for name, row in rows.items():
        row = dict(row)
        for k in inputs:
            row[f"ms_best_{k[0]}x{k[1]}"] = round(best[(name, k)] * 1000, 1)
            row[f"ms_median_{k[0]}x{k[1]}"] = round(float(np.median(times[(name, k)])) * 1000, 1)
        row["x_eager"] = round(best[("eager fp32", k256)] / best[(name, k256)], 2)
        row["x_default"] = round(best[("default plan", k256)] / best[(name, k256)], 2)
        row["machine"] = machine()
        emit(row)
        lines.append(
            f"| {row['variant']} | {row.get('psnr8_db_256x256', 'ref')} "
            f"({row.get('psnr8_worst_db_256x256', 'ref')}) | {row.get('psnr8_db_256x192', 'ref')} "
            f"| {row['ms_best_256x256']} ({row['ms_median_256x256']}) | {row['ms_best_256x192']} "
            f"({row['ms_median_256x192']}) | {row['x_eager']} | {row['x_default']} |"
        )
    return lines


if __name__ == "__main__":
    main()
