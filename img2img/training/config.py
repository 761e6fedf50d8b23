"""Training configuration: one typed dataclass, named presets, and the flags made from it.

Every field is a flag (`lambda_l1` -> `--lambda-l1`; booleans get `--no-...`) whose help text
is the comment on the field's line. A run resolves its values as: dataclass defaults, then
the preset (`pix2pix`, `cyclegan` or `huggan`), then the flags given on the command line.
The resolved config is written to RUN_DIR/config.json and into every checkpoint.

Learning-rate schedule (classic `linear` policy): epoch e (0-based) uses
lr * (1 - max(0, e + 1 - n_epochs) / (n_epochs_decay + 1)). `--steps N` only stops the run
after N optimizer steps (at most n_epochs + n_epochs_decay epochs); the schedule is still
measured in epochs, so a run extended with `--resume --steps M` continues exactly the
schedule an uninterrupted run would follow. An epoch is one pass over the training set
(over this process's shard under torchrun); `--batch-size` is per process.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..checkpoints.catalog import custom_folder, load_catalog
from ..data.samples import PREPROCESS
from ..errors import ConfigError  # noqa: F401 - raised here, imported from here by callers
from ..models import registry
from ..models.configurable import defaults_of
from .metrics import BEST_METRICS


@dataclass
class TrainConfig:
    # --- what to train
    family: str = "pix2pix"  # pix2pix, pix2pixhd (paired A|B), cyclegan, cut (unpaired), distill
    preset: str = "pix2pix"  # pix2pix, cyclegan, huggan, distill, pix2pixhd, cut, fastcut
    teacher: str = ""  # distill: the generator to imitate (catalog id, custom/NAME, file, folder)
    # --- data
    dataset: str = ""  # public dataset by name (facades, maps, horse2zebra, ...) or hf:NAME (HF)
    hf_columns: str = ""  # hf: datasets: the A and B image columns, A,B (default imageA,imageB)
    hf_labels: str = ""  # hf: image folders (one Image + one ClassLabel column): labels A,B
    data: str = ""  # or a local folder: train/ of A|B images, or trainA/ + trainB/
    data_root: str = ""  # download cache (default: $IMG2IMG_DATA or ~/.cache/img2img/datasets)
    dataset_url_base: str = ""  # mirror of the Berkeley host (default: $IMG2IMG_DATASET_MIRROR)
    direction: str = "AtoB"  # AtoB learns A -> B; BtoA swaps the two sides
    input_nc: int = 3  # channels the generator reads: 1 grey (16-bit kept), 3 RGB, 4 RGBA
    output_nc: int = 3  # channels the generator makes: 1 grey, 3 RGB, 4 RGBA
    preprocess: str = "resize_and_crop"  # resize_and_crop, crop, scale_width(_and_crop), none
    load_size: int = 286  # images are resized to this square size (bicubic) ...
    crop_size: int = 256  # ... then randomly cropped to this size
    flip: bool = True  # random horizontal flip (one flip shared by both images of a pair)
    workers: int = 4  # data-loader worker processes (0: load in the training process)
    # --- networks
    generator: str = "unet"  # unet, resnet, huggan_unet, ... (distill: the student, --student)
    ngf: int = 64  # generator width (filters in the first layer)
    norm: str = "batch"  # batch or instance (generator and PatchGAN)
    dropout: bool = True  # dropout 0.5 in the generator (pix2pix's only noise)
    num_downs: int = 8  # U-Net depth: 8 is unet_256 (crop a multiple of 256)
    n_blocks: int = 9  # ResNet blocks: 9 is resnet_9blocks
    discriminator: str = "patchgan"  # patchgan (70x70 PatchGAN) or huggan (HugGAN's, pix2pix)
    ndf: int = 64  # discriminator width
    n_layers_d: int = 3  # PatchGAN depth: 3 gives the 70x70 receptive field
    n_downsample: int = 4  # pix2pixhd: stride-2 convs of the global generator
    n_local_enhancers: int = 0  # pix2pixhd: local enhancers around it (0: global, 1: local)
    n_blocks_local: int = 3  # pix2pixhd: residual blocks of each local enhancer
    num_d: int = 2  # pix2pixhd: discriminators, at full, 1/2, 1/4 ... resolution
    # --- objective
    gan_mode: str = "vanilla"  # vanilla (BCE with logits) or lsgan (least squares)
    lambda_l1: float = 100.0  # pix2pix: weight of L1(G(A), B); distill: of L1(S(x), T(x))
    lambda_a: float = 10.0  # cyclegan: weight of the A -> B -> A cycle loss
    lambda_b: float = 10.0  # cyclegan: weight of the B -> A -> B cycle loss
    lambda_identity: float = 0.5  # cyclegan: identity loss weight, times lambda_a / lambda_b
    pool_size: int = 50  # cyclegan: generated images the discriminators replay (0: none)
    g_first: bool = False  # pix2pix: G step before the D step (HugGAN's order)
    lambda_perc: float = 1.0  # distill: weight of L1 between teacher-encoder features of S and T
    lambda_feat: float = 1.0  # distill: block-feature MSE weight; pix2pixhd: feature match + VGG
    feat_match: bool = True  # pix2pixhd: discriminator feature-matching loss (x lambda_feat)
    vgg_loss: bool = True  # pix2pixhd: VGG19 perceptual loss (x lambda_feat; needs VGG19 weights)
    lambda_gan: float = 0.0  # distill, cut: weight of the adversarial term (distill 0: off)
    teacher_amp: bool = True  # distill: teacher forwards in bf16 where the device has it natively
    lambda_nce: float = 1.0  # cut: weight of the PatchNCE loss (fastcut 10)
    nce_idt: bool = True  # cut: identity PatchNCE on B, NCE(B, G(B)) (fastcut: off)
    nce_layers: str = "0,4,8,12,16"  # cut: generator layers (model.N) whose features are contrasted
    num_patches: int = 256  # cut: patches sampled per layer and image
    nce_t: float = 0.07  # cut: PatchNCE temperature
    nce_dim: int = 256  # cut: width of the projection heads F
    flip_equivariance: bool = False  # cut: G sees a flipped batch half of the time (fastcut: on)
    # --- optimisation
    lr: float = 2e-4  # Adam learning rate
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    batch_size: int = 1  # images per step (per process under torchrun)
    n_epochs: int = 100  # epochs at the initial learning rate
    n_epochs_decay: int = 100  # then epochs of linear decay to zero
    steps: int = 0  # stop after N optimizer steps (0: every epoch); lr still decays per epoch
    seed: int = 0  # seeds init, dropout, data order and augmentation, image pools
    # --- run
    out: str = ""  # run directory (checkpoints/, weights/, tb/, metrics.jsonl, config.json)
    save_every: int = 5000  # checkpoint, validate and export every N steps and at the end
    log_every: int = 50  # scalars to TensorBoard and metrics.jsonl every N steps
    val_images: int = 50  # held-out images evaluated at each checkpoint (0: none)
    keep_best: str = ""  # also export the generators of the best validation: l1, psnr, ssim
    keep_last: int = 0  # keep the last N checkpoints as checkpoints/step-N.pt (0: last.pt only)
    device: str = ""  # cpu, cuda, cuda:1, mps (default: cuda when available)
    amp: bool = False  # mixed precision: bf16 where supported, else fp16 with a grad scaler
    channels_last: bool = False  # NHWC memory format for networks and batches
    compile: bool = False  # torch.compile the networks
    export: str = "both"  # cyclegan: generators written to weights/: A2B, B2A or both
    push_to_hub: str = ""  # Hub repo to publish weights/ to at the end (cyclegan both: -A2B/-B2A)


_CUT: dict[str, Any] = dict(
    family="cut",
    generator="cut_resnet",
    norm="instance",
    dropout=False,
    gan_mode="lsgan",
    lambda_gan=1.0,
    n_epochs=200,
    n_epochs_decay=200,
)
# Only the values that differ from the dataclass defaults (which are pix2pix's).
PRESETS: dict[str, dict[str, Any]] = {
    # Isola et al. 2017 / junyanz defaults: U-Net-256, batch norm, dropout, vanilla GAN, L1 100.
    "pix2pix": {},
    # Zhu et al. 2017 / junyanz defaults: ResNet-9, instance norm, LSGAN, cycle 10, identity 0.5.
    "cyclegan": dict(
        family="cyclegan",
        generator="resnet",
        norm="instance",
        dropout=False,
        gan_mode="lsgan",
    ),
    # huggingface/community-events pix2pix (the huggan/pix2pix-* models): HugGAN U-Net and
    # discriminator, LSGAN, G step first, 256x256 squash (no crop), 200 epochs at constant lr.
    "huggan": dict(
        generator="huggan_unet",
        discriminator="huggan",
        gan_mode="lsgan",
        g_first=True,
        load_size=256,
        crop_size=256,
        n_epochs=200,
        n_epochs_decay=0,
    ),
    # train.py distill (training/distill.py): a mobile_resnet student (ngf 16) of a frozen
    # teacher on photo crops of 128..256 px (128 square), batch 4, after GAN Compression.
    "distill": dict(
        family="distill",
        generator="mobile_resnet",
        ngf=16,
        norm="instance",
        dropout=False,
        gan_mode="lsgan",
        lambda_l1=10.0,
        load_size=256,
        crop_size=128,
        batch_size=4,
        n_epochs=50,
        n_epochs_decay=50,
    ),
    # Park et al. 2020 / taesungp defaults: anti-aliased ResNet-9, instance norm, LSGAN, PatchNCE
    # on 5 layers with the identity term, 200 + 200 epochs. FastCUT: NCE x10, no identity term,
    # flip equivariance, 150 + 50 epochs.
    "cut": _CUT,
    "fastcut": {
        **_CUT,
        "lambda_nce": 10.0,
        "nce_idt": False,
        "flip_equivariance": True,
        "n_epochs": 150,
        "n_epochs_decay": 50,
    },
    # NVIDIA pix2pixHD (train.py pix2pixhd, training/pix2pixhd.py): GlobalGenerator (4
    # downsamplings, 9 blocks), 2 multi-scale discriminators, LSGAN, feature matching and
    # VGG x 10, instance norm, no pool; NVIDIA's data defaults are --preprocess scale_width
    # --load-size 1024 (docs/training.md): ours stay pix2pix's 286 -> 256 crops.
    "pix2pixhd": dict(
        family="pix2pixhd",
        generator="pix2pixhd",
        norm="instance",
        dropout=False,
        gan_mode="lsgan",
        lambda_feat=10.0,
    ),
}
# The presets of each family; its recipe (training/recipes.py, tested to agree) says how it trains.
FAMILY_PRESETS = {
    "pix2pix": ("pix2pix", "huggan"),
    "cyclegan": ("cyclegan",),
    "distill": ("distill",),
    "cut": ("cut", "fastcut"),
    "pix2pixhd": ("pix2pixhd",),
}
# Fields a resumed run may change; everything else must match the checkpoint's config.
RESUMABLE = {
    "steps", "n_epochs", "n_epochs_decay", "save_every", "log_every", "val_images", "device",
    "amp", "channels_last", "compile", "workers", "export", "push_to_hub", "data",
    "data_root", "dataset_url_base", "out", "keep_last", "teacher_amp",
}  # fmt: skip
CHOICES = {
    "family": tuple(FAMILY_PRESETS),
    "preset": tuple(PRESETS),
    "direction": ("AtoB", "BtoA"),
    "input_nc": (1, 3, 4),
    "output_nc": (1, 3, 4),
    "preprocess": PREPROCESS,
    "generator": tuple(registry.ARCHITECTURES),
    "norm": ("batch", "instance"),
    "discriminator": ("patchgan", "huggan"),
    "gan_mode": ("vanilla", "lsgan"),
    "export": ("A2B", "B2A", "both"),
}
_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


# Help that does not fit on a field's line: appended to its comment.
MORE_HELP = {
    "amp": "Use it on CUDA GPUs and on CPUs with native bf16 (AVX-512 BF16 / AMX, e.g. Xeon "
    "Sapphire Rapids); not on AVX2-only CPUs (e.g. AMD EPYC before Zen 4), where bf16 is "
    "emulated (inference measured 8-12x slower than fp32). On AMX the speed-up is not "
    "measured by this project's own benchmarks (reported: pix2pix 1.3x, CycleGAN 2.9x).",
    "preprocess": "The classic --preprocess modes (docs/training.md); results are padded to "
    "the generator's multiple, so `none` keeps every image's own size and aspect.",
    "load_size": "scale_width modes: the width.",
    "keep_best": "(fid, kid: CycleGAN on a GPU with the Inception weights cached). Exported "
    "to weights/<folder>-best/; CycleGAN judges A2B_<METRIC> and keeps both generators.",
}


def field_help() -> dict[str, str]:
    """The comment on each field's line of TrainConfig (the flags' help), plus MORE_HELP."""
    source = inspect.getsource(TrainConfig)
    found = dict(re.findall(r"^\s+(\w+): \w+ = .*?  # (.*)$", source, flags=re.M))
    return {k: f"{v}. {MORE_HELP[k]}" if k in MORE_HELP else v for k, v in found.items()}


def _defaults(name: str, default: Any) -> str:
    """`v`, or `preset v, ...` where the presets disagree."""
    if name == "preset":
        return "the family's"
    values = {preset: overrides.get(name, default) for preset, overrides in PRESETS.items()}
    if len(set(map(repr, values.values()))) == 1:
        return str(default) if default != "" else "none"
    return ", ".join(f"{preset} {value}" for preset, value in values.items())


def add_config_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One flag per field; defaults are SUPPRESS so the namespace holds only what was given."""
    helps = field_help()
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = _TYPES[f.type]
        text = f"{helps.get(f.name, '')} [default: {_defaults(f.name, f.default)}]"
        if kind is bool:
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, action=action, default=argparse.SUPPRESS, help=text)
        else:
            parser.add_argument(
                flag, type=kind, default=argparse.SUPPRESS, choices=CHOICES.get(f.name), help=text
            )


def resolve(family: str, given: dict[str, Any], saved: dict[str, Any] | None) -> TrainConfig:
    """The run's config: preset + flags for a new run; the checkpoint's + flags on resume."""
    if saved is None:
        preset = given.get("preset", family)
        if preset not in FAMILY_PRESETS[family]:
            raise ConfigError(
                f"preset {preset!r} is not a {family} recipe; choose from {FAMILY_PRESETS[family]}"
            )
        values = {**asdict(TrainConfig()), **PRESETS[preset], **given, "preset": preset}
    else:
        changed = sorted(k for k, v in given.items() if k not in RESUMABLE and saved.get(k) != v)
        if saved.get("family") != family:
            changed.insert(0, "family")
        if changed:
            raise ConfigError(
                f"--resume continues the saved run; these differ from its config: "
                f"{', '.join(changed)} (saved: {[saved.get(k) for k in changed]}). "
                f"Only {', '.join(sorted(RESUMABLE))} may change."
            )
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        values = {**{k: v for k, v in saved.items() if k in known}, **given}
    values["family"] = family
    config = TrainConfig(**values)
    validate(config)
    return config


def generator_config(c: TrainConfig) -> dict[str, Any]:
    """The generator's constructor arguments (its exported config.json): every argument of
    the registry architecture's constructor that the run config has a field for, the
    constructor's defaults for the rest (in/out channels: RGB)."""
    params = defaults_of(registry.get_architecture(c.generator).cls)
    given = {k: getattr(c, k) for k in params if hasattr(c, k)}
    given |= {k: v for k, v in _channels(c).items() if k in params}
    return registry.complete_config({"architecture": c.generator, **given})


def _channels(c: TrainConfig, reverse: bool = False) -> dict[str, int]:
    """The generator's in/out channels (`reverse`: CycleGAN's B -> A generator)."""
    io = (c.output_nc, c.input_nc) if reverse else (c.input_nc, c.output_nc)
    return {"in_channels": io[0], "out_channels": io[1]}


def reverse_generator_config(c: TrainConfig) -> dict[str, Any]:
    """generator_config of the B -> A generator: in and out channels swapped."""
    return {**generator_config(c), **_channels(c, reverse=True)}


def size_multiple(c: TrainConfig) -> int:
    """What crop_size must be a multiple of, for the chosen generator."""
    return registry.size_multiple(generator_config(c))


def validate(c: TrainConfig) -> None:
    """Raise ConfigError naming the first field that cannot work."""
    for name, allowed in CHOICES.items():
        if getattr(c, name) not in allowed:
            raise ConfigError(f"{name} must be one of {allowed}, got {getattr(c, name)!r}")
    if bool(c.dataset) == bool(c.data):
        raise ConfigError("give exactly one of --dataset NAME or --data DIR")
    for name in ("hf_columns", "hf_labels"):
        if getattr(c, name) and not c.dataset.startswith("hf:"):
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} applies to a Hugging Face dataset (--dataset hf:NAME)")
    if c.hf_columns and c.hf_labels:
        raise ConfigError(
            "give --hf-columns (two image columns) or --hf-labels (two labels), not both"
        )
    if not c.out:
        raise ConfigError("--out RUN_DIR is required")
    positive = ("load_size", "crop_size", "ngf", "ndf", "batch_size", "save_every", "log_every")
    for name in positive:
        if getattr(c, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(c, name)}")
    for name in ("steps", "n_epochs", "n_epochs_decay", "workers", "val_images", "pool_size"):
        if getattr(c, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(c, name)}")
    if c.n_epochs + c.n_epochs_decay < 1:
        raise ConfigError("--n-epochs plus --n-epochs-decay must be at least 1")
    resizes = c.preprocess in ("resize_and_crop", "scale_width_and_crop")
    if resizes and c.crop_size > c.load_size:
        raise ConfigError(f"--crop-size {c.crop_size} is larger than --load-size {c.load_size}")
    multiple = size_multiple(c)
    crops = c.preprocess in ("resize_and_crop", "crop", "scale_width_and_crop")
    if crops and c.crop_size % multiple:
        raise ConfigError(
            f"--crop-size {c.crop_size} must be a multiple of {multiple} for the "
            f"the generator {generator_config(c)}"
        )
    if c.num_d < 1:
        raise ConfigError(f"--num-d must be >= 1, got {c.num_d}")
    if c.family == "distill" and not c.teacher:
        raise ConfigError("distill needs --teacher: a catalog id or a generator checkpoint")
    if c.teacher and not (
        c.teacher in load_catalog() or custom_folder(c.teacher) or Path(c.teacher).exists()
    ):
        raise ConfigError(
            f"--teacher {c.teacher}: no such catalog id, custom/<name> model, file or folder"
        )
    if c.teacher and c.family != "distill":
        raise ConfigError("--teacher applies to train.py distill")
    if c.discriminator == "huggan" and c.family != "pix2pix":
        raise ConfigError("the huggan discriminator is pix2pix's (it judges A and B together)")
    _validate_options(c)


def _validate_options(c: TrainConfig) -> None:
    """Channels with CycleGAN's identity loss, --keep-best's metric, --keep-last."""
    if c.family == "cyclegan" and c.lambda_identity > 0 and c.input_nc != c.output_nc:
        raise ConfigError(
            f"CycleGAN's identity loss feeds B to the A -> B generator: --input-nc {c.input_nc} "
            f"and --output-nc {c.output_nc} differ; pass --lambda-identity 0"
        )
    if c.keep_best and c.keep_best not in BEST_METRICS:
        raise ConfigError(f"--keep-best must be one of {BEST_METRICS}, got {c.keep_best!r}")
    if c.keep_best and not c.val_images:
        raise ConfigError("--keep-best needs validation: --val-images must be >= 1")
    if c.keep_last < 0:
        raise ConfigError(f"--keep-last must be >= 0, got {c.keep_last}")
    if c.family == "cut":
        _validate_cut(c)


def _validate_cut(c: TrainConfig) -> None:
    """train.py cut: a generator whose layers it can index, NCE layers, patches, temperature."""
    if c.generator not in ("cut_resnet", "resnet"):
        raise ConfigError(f"train.py cut trains cut_resnet or resnet, not {c.generator!r}")
    layers = c.nce_layers.split(",")
    numbers = [int(x) for x in layers if x.strip().isdigit()]
    if len(numbers) != len(layers) or numbers != sorted(set(numbers)):
        raise ConfigError(f"--nce-layers takes ascending indices (0,4,8), got {c.nce_layers!r}")
    if c.num_patches < 1 or c.nce_dim < 1 or c.nce_t <= 0:
        raise ConfigError("--num-patches and --nce-dim must be >= 1, --nce-t > 0")
    if c.lambda_gan <= 0 and c.lambda_nce <= 0:
        raise ConfigError("train.py cut needs --lambda-gan or --lambda-nce above 0")


def lr_factor(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """Classic linear policy for 0-based `epoch`: 1, ..., 1, then down towards 0.

    Never below 0: a run whose training set changed size on --resume may count one epoch
    more than planned, and a negative rate would climb the loss."""
    return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1))
