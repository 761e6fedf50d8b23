"""One recipe per model family: what pix2pix and CycleGAN build, step, validate and export.

pix2pix: nets G (A -> B) and D (judges cat(A, B), 6 channels); one Adam each; no pools;
exports weights/G/. CycleGAN: G_A (A -> B), G_B (B -> A), D_A (judges B), D_B (judges A);
one Adam for both generators and one for both discriminators, as in the classic code; an
image pool per side; exports weights/A2B/ (G_A) and weights/B2A/ (G_B). Networks are created
in the classic order (generators, then discriminators), so a seeded run initialises the same
way. Everything that differs between the families is read from here: `recipe(c)`.

Channels: `reads` says which sides each network sees; a side has --input-nc (A) or
--output-nc (B) channels, so pix2pix's D judges input_nc + output_nc channels and CycleGAN's
G_B maps output_nc -> input_nc channels (at the defaults, 3 and 3: the classic 6 and 3).

distill (training/distill.py): a student G, its feature mappings M and a discriminator D
(stepped only with --lambda-gan > 0) learn from a frozen teacher T, a fixed network that is
loaded, never trained nor saved; photos of one domain (distill_data.py); exports
weights/student/ with the measured student-against-teacher quality on its model card.

cut (training/cut.py): G (A -> B), D (judges B) and F, the PatchNCE projection heads (built
after D from G's layer widths, trained with G by the "G" Adam); CycleGAN's data; no pools;
exports weights/G/.
pix2pixhd (training/pix2pixhd.py): pix2pix's nets, data and export, with multi-scale
discriminators D of its own, its step (feature matching, VGG) and the frozen VGG19 as a
fixed network "VGG" (none with --no-vgg-loss).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..models import build_generator
from . import cut, distill, distill_data, pix2pixhd
from .config import ConfigError, TrainConfig, generator_config, reverse_generator_config
from .metrics import BatchMetrics, cyclegan_batch, pix2pix_batch
from .nets import adam, build_discriminator
from .pool import ImagePool
from .precision import Precision
from .steps import Losses, cyclegan_step, pix2pix_step

# (runners, optimizers, pools, real_A, real_B, config, precision) -> detached losses
Step = Callable[
    [
        dict[str, nn.Module],
        dict[str, torch.optim.Optimizer],
        dict[str, ImagePool],
        torch.Tensor,
        torch.Tensor,
        TrainConfig,
        Precision,
    ],
    Losses,
]


@dataclass(frozen=True)
class Recipe:
    name: str  # the family, as on the command line
    generators: tuple[str, ...]  # generator networks, created in this order ...
    discriminators: tuple[str, ...]  # ... then the discriminators
    judged_channels: int  # discriminator input: 6 judges cat(A, B), 3 one image
    optimized: dict[str, tuple[str, ...]]  # one Adam per key, over these networks' parameters
    pools: tuple[str, ...]  # sides with an image pool of generated images (none: no pools)
    exports: dict[str, str]  # RUN_DIR/weights/<folder> -> the generator written there
    layout: str  # the dataset layout preferred when a folder has both: aligned / unaligned
    step: Step  # one optimisation step (a pure function of steps.py)
    validate_batch: BatchMetrics  # the held-out metrics of one batch (metrics.py)
    # the sides each network reads: "A", "B" or "AB" (default: generators "A", discriminators
    # judged_channels); a generator that reads B makes A
    reads: dict[str, str] = field(default_factory=dict)

    def generator_config(self, c: TrainConfig, name: str) -> dict:
        """The constructor config of generator `name` (its channels from the sides it maps)."""
        return reverse_generator_config(c) if self.reads.get(name) == "B" else generator_config(c)

    def judged(self, c: TrainConfig, name: str) -> int:
        """Input channels of discriminator `name`."""
        if name not in self.reads:
            return self.judged_channels
        return sum(c.input_nc if side == "A" else c.output_nc for side in self.reads[name])

    # More trained networks, built after the discriminators from the nets so far (distill's M).
    extra: Callable[[TrainConfig, dict[str, nn.Module]], dict[str, nn.Module]] | None = None
    # Networks used but never trained or saved, on the device (distill's teacher "T").
    fixed: Callable[[TrainConfig, torch.device], dict[str, nn.Module]] | None = None
    # The recipe's own data instead of the dataset layouts: (c, world) -> loader.load_data's.
    data: Callable[[TrainConfig, Any], tuple[Any, Any, bool]] | None = None
    # Model-card lines of an export from the run config and the last validation metrics.
    card_notes: Callable[[TrainConfig, dict[str, float]], tuple[str, ...]] | None = None
    # The recipe's own discriminators: (c, input channels) -> module (default: nets.py's).
    discriminator: Callable[[TrainConfig, int], nn.Module] | None = None

    def networks(self, c: TrainConfig) -> dict[str, nn.Module]:
        """Freshly initialised networks (N(0, 0.02) weights), in train mode, on the CPU."""
        nets = {name: build_generator(self.generator_config(c, name)) for name in self.generators}
        build = self.discriminator or build_discriminator
        for name in self.discriminators:
            nets[name] = build(c, self.judged(c, name))
        if self.extra is not None:
            nets |= self.extra(c, nets)
        return {name: net.train() for name, net in nets.items()}

    def fixed_networks(self, c: TrainConfig, device: torch.device) -> dict[str, nn.Module]:
        return self.fixed(c, device) if self.fixed is not None else {}

    def optimizers(self, c: TrainConfig, nets: dict[str, nn.Module]) -> dict[str, torch.optim.Adam]:
        """{"G": Adam over every generator, "D": Adam over every discriminator}."""
        return {k: adam(c, [nets[n] for n in names]) for k, names in self.optimized.items()}


def _pix2pix(runners, optimizers, pools, real_A, real_B, c, precision) -> Losses:
    return pix2pix_step(runners, optimizers, real_A, real_B, c, precision)  # no pools


RECIPES: dict[str, Recipe] = {
    "pix2pix": Recipe(
        name="pix2pix",
        generators=("G",),
        discriminators=("D",),
        judged_channels=6,
        optimized={"G": ("G",), "D": ("D",)},
        pools=(),
        exports={"G": "G"},
        layout="aligned",
        step=_pix2pix,
        validate_batch=pix2pix_batch,
        reads={"G": "A", "D": "AB"},
    ),
    "cyclegan": Recipe(
        name="cyclegan",
        generators=("G_A", "G_B"),
        discriminators=("D_A", "D_B"),
        judged_channels=3,
        optimized={"G": ("G_A", "G_B"), "D": ("D_A", "D_B")},
        pools=("A", "B"),
        exports={"A2B": "G_A", "B2A": "G_B"},
        layout="unaligned",
        step=cyclegan_step,
        validate_batch=cyclegan_batch,
        reads={"G_A": "A", "G_B": "B", "D_A": "B", "D_B": "A"},
    ),
    "distill": Recipe(
        name="distill",
        generators=("G",),
        discriminators=("D",),
        judged_channels=3,
        optimized={"G": ("G", "M"), "D": ("D",)},
        pools=(),
        exports={"student": "G"},
        layout="unaligned",
        step=distill.distill_step,
        validate_batch=distill.distill_batch,
        extra=distill.mappings,
        fixed=distill.teacher,
        data=distill_data.load_photos,
        card_notes=distill.card_notes,
    ),
    "cut": Recipe(
        name="cut",
        generators=("G",),
        discriminators=("D",),
        judged_channels=3,
        optimized={"G": ("G", "F"), "D": ("D",)},
        pools=(),
        exports={"G": "G"},
        layout="unaligned",
        step=cut.cut_step,
        validate_batch=cut.cut_batch,
        reads={"G": "A", "D": "B"},
        extra=cut.heads,
        data=cut.load_data,
        card_notes=cut.card_notes,
    ),
    "pix2pixhd": Recipe(
        name="pix2pixhd",
        generators=("G",),
        discriminators=("D",),
        judged_channels=6,
        optimized={"G": ("G",), "D": ("D",)},
        pools=(),
        exports={"G": "G"},
        layout="aligned",
        step=pix2pixhd.pix2pixhd_step,
        validate_batch=pix2pix_batch,
        reads={"G": "A", "D": "AB"},
        fixed=pix2pixhd.fixed,
        discriminator=pix2pixhd.build_discriminator,
    ),
}


def recipe(c: TrainConfig) -> Recipe:
    """The recipe of `c.family` (validated by config.resolve against the same names)."""
    if c.family not in RECIPES:
        raise ConfigError(f"family must be one of {tuple(RECIPES)}, got {c.family!r}")
    return RECIPES[c.family]
