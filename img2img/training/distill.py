"""Distillation: a compact student learns to reproduce a frozen teacher generator.

Any generator we load is a teacher (`--teacher`: a catalog id, custom/NAME, a checkpoint file
or folder); the student is a registry architecture (`--student`, by default mobile_resnet)
trained on photos of the teacher's input domain, no targets needed (distill_data.py). Per
step, for a batch x of photo crops (after GAN Compression, Li et al. 2020):

    L = lambda_l1   * L1(S(x), T(x))                                  output
      + lambda_perc * L1(E(S(x)), E(T(x)))                            perceptual
      + lambda_feat * mean_k MSE(M_k(s_k(x)), t_k(x))                 intermediate features
      + lambda_gan  * GAN(D(S(x)) -> real)     (D: T(x) real, S(x) fake; off at 0)

E is the teacher's own encoder (its layers before its first residual block: features learnt
for this very translation, and available offline, unlike VGG / LPIPS weights); s_k and t_k
are residual-block outputs at K <= 3 evenly spaced depths of student and teacher, M_k learnt
1x1 convolutions (network "M", trained with the student, never exported). A teacher without
residual blocks (a U-Net) gives no perceptual or feature term. The teacher stays frozen in
eval mode (per-image BatchNorm statistics, no dropout), runs without gradients except through
E for the perceptual term, in bf16 where the device has it natively (`--teacher-amp`), and is
never saved: a resumed run loads it again from the same reference.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints.hub import load_model
from ..eval import metrics as table
from ..media.processing import to_uint8
from ..models.norm import set_image_stats
from ..plans.execution import native_cpu_bf16
from .config import TrainConfig
from .losses import gan_loss, l1
from .precision import Precision

MAX_TAPS = 3  # feature-distillation depths (GAN Compression taps 4 of 9 blocks)
Losses = dict[str, torch.Tensor]


def residual_blocks(net: nn.Module) -> list[nn.Module]:
    """The residual blocks of a generator, in forward order (ResNet families' *Block classes
    that map (B, C, H, W) to the same shape; a U-Net's skip blocks change C and are left out)."""
    found = [m for m in net.modules() if type(m).__name__.endswith("Block")]
    return [m for m in found if not type(m).__name__.lower().startswith("unet")]


def spread(blocks: list[nn.Module], k: int) -> list[nn.Module]:
    """`k` of `blocks`, evenly spaced and ending with the last (9 blocks, k 3: 3rd, 6th, 9th)."""
    n = len(blocks)
    return [blocks[round((i + 1) * n / k) - 1] for i in range(k)] if k else []


@contextlib.contextmanager
def tapped(modules: list[nn.Module]) -> Iterator[list[torch.Tensor]]:
    """Within the block, every forward of `modules` appends its output to the yielded list."""
    outputs: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda m, a, y: outputs.append(y)) for m in modules]
    try:
        yield outputs
    finally:
        for h in handles:
            h.remove()


class _Enough(Exception):
    """Raised by the encoder hook: the rest of the teacher's forward is not needed."""


@functools.lru_cache(maxsize=2)
def load_teacher_module(reference: str) -> nn.Module:
    """The teacher generator (catalog id or path), frozen, eval, per-image BN statistics."""
    net = load_model(reference, progress=False).eval().requires_grad_(False)
    set_image_stats(net, True)
    return net


class Teacher(nn.Module):
    """The frozen teacher as the recipe's fixed network "T". Its generator is kept outside the
    module tree (no parameters, no state dict, unaffected by .train() / .eval()), so nothing
    that handles the trained networks (optimizers, checkpoints, validation modes) touches it."""

    def __init__(self, net: nn.Module, device: torch.device, amp: bool) -> None:
        super().__init__()
        self.__dict__["net"] = net.to(device)
        self.device_type = device.type
        bf16 = amp and (device.type == "cpu" and native_cpu_bf16() or device.type == "cuda")
        self.dtype = torch.bfloat16 if bf16 else None
        blocks = residual_blocks(net)
        self.__dict__["first_block"] = blocks[0] if blocks else None  # not a submodule either

    def taps(self, k: int) -> list[nn.Module]:
        return spread(residual_blocks(self.net), k)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def forward(self, x: torch.Tensor, k: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(T(x) in fp32, the outputs of its `k` tapped blocks), without gradients."""
        with torch.no_grad(), self._autocast(), tapped(self.taps(k)) as features:
            y = self.net(x)
        return y.float(), [f.float() for f in features]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """E(x): the input of the teacher's first residual block (gradients flow to x)."""
        box: list[torch.Tensor] = []

        def stop(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            box.append(args[0])
            raise _Enough

        handle = self.first_block.register_forward_pre_hook(stop)
        try:
            self.net(x)
        except _Enough:
            pass
        finally:
            handle.remove()
        return box[0]


def teacher(c: TrainConfig, device: torch.device) -> dict[str, nn.Module]:
    """The recipe's fixed networks: {"T": the frozen teacher on `device`}."""
    return {"T": Teacher(load_teacher_module(c.teacher), device, c.teacher_amp)}


def n_taps(c: TrainConfig, student: nn.Module) -> int:
    """How many block depths feature distillation pairs (0: one side has no blocks)."""
    t_blocks = residual_blocks(load_teacher_module(c.teacher))
    return min(MAX_TAPS, len(t_blocks), len(residual_blocks(student)))


def mappings(c: TrainConfig, nets: dict[str, nn.Module]) -> dict[str, nn.Module]:
    """{"M": 1x1 convs from the student's tapped block widths to the teacher's}, read off
    one 32x32 forward of each (any ResNet-like pair of families)."""
    student, k = nets["G"], n_taps(c, nets["G"])
    x = torch.zeros(1, student.config["in_channels"], 32, 32)
    with torch.no_grad(), tapped(spread(residual_blocks(student), k)) as s:
        student.eval()(x)
    student.train()
    _, t = Teacher(load_teacher_module(c.teacher), torch.device("cpu"), amp=False)(x, k)
    convs = [nn.Conv2d(a.shape[1], b.shape[1], kernel_size=1) for a, b in zip(s, t, strict=True)]
    return {"M": nn.ModuleList(convs)}


def _plain(runner: nn.Module) -> nn.Module:
    """The module under a DDP and/or torch.compile wrapper (where the hooks go)."""
    if isinstance(runner, nn.parallel.DistributedDataParallel):
        runner = runner.module
    return getattr(runner, "_orig_mod", runner)


def distill_step(runners, optimizers, pools, real_A, real_B, c: TrainConfig, precision) -> Losses:
    """The student's step on photo crops real_A (N, 3, H, W) (real_B: the same crops, unused),
    then the discriminator's when lambda_gan > 0. Returns the weighted terms, detached."""
    G, M, D, T = (runners[k] for k in ("G", "M", "D", "T"))
    target, t_feats = T(real_A, len(_plain(M)))  # (N, 3, H, W); k x (N, C_t, H/4, W/4)
    optimizers["G"].zero_grad(set_to_none=True)
    losses, fake = _student_losses(G, M, D, T, real_A, target, t_feats, c, precision)
    precision.backward(sum(losses.values()))
    precision.step(optimizers["G"])
    if c.lambda_gan > 0:
        losses["D"] = _discriminator(D, optimizers["D"], target, fake, c, precision)
    else:  # no gradients: a no-op step, so its LR scheduler is never stepped before it
        optimizers["D"].step()
    precision.update()
    return {k: v.detach() for k, v in losses.items()}


def _student_losses(G, M, D, T, real_A, target, t_feats, c, precision: Precision):
    """(the student's weighted terms, S(x))."""
    mapped = _plain(M)
    blocks = spread(residual_blocks(_plain(G)), len(mapped))
    with precision.autocast():
        with tapped(blocks) as s_feats:
            fake = G(real_A)
        losses: Losses = {"L1": l1(fake.float(), target) * c.lambda_l1}
        if mapped and c.lambda_feat > 0:
            pairs = zip(mapped, s_feats, t_feats, strict=True)
            terms = [F.mse_loss(m(s).float(), t) for m, s, t in pairs]
            losses["feat"] = sum(terms) / len(terms) * c.lambda_feat
        if T.first_block is not None and c.lambda_perc > 0:
            with torch.no_grad():
                goal = T.encode(target).float()
            losses["perc"] = l1(T.encode(fake).float(), goal) * c.lambda_perc
        if c.lambda_gan > 0:
            frozen = _plain(D).requires_grad_(False)
            losses["G_GAN"] = gan_loss(frozen(fake), True, c.gan_mode) * c.lambda_gan
            frozen.requires_grad_(True)
    return losses, fake


def _discriminator(D, optimizer, target, fake, c, precision: Precision) -> torch.Tensor:
    """D learns the teacher's outputs as real and the student's as fake."""
    optimizer.zero_grad(set_to_none=True)
    with precision.autocast():
        loss_real = gan_loss(D(target), True, c.gan_mode)
        loss_fake = gan_loss(D(fake.detach()), False, c.gan_mode)
        loss = (loss_real + loss_fake) * 0.5
    precision.backward(loss)
    precision.step(optimizer)
    return loss.detach()


# ----------------------------------------------------------------------------- validation


def distill_batch(nets, A, B, paired: bool, out) -> tuple[torch.Tensor, torch.Tensor]:
    """S(x) against T(x) (L1, PSNR, SSIM on 8-bit images) and, beside it, the photo against
    T(x) (input_PSNR: what doing nothing scores); the grid shows x / S(x) / T(x)."""
    fake, (target, _) = nets["G"](A), nets["T"](A)
    rows = table.of_scope("image", networks=())
    goal = to_uint8(target, truncate=True)
    for name, values in table.image_scores(rows, to_uint8(fake, truncate=True), goal).items():
        out.add(name.upper(), values)
    out.add("input_PSNR", table.image_scores(rows, to_uint8(A), goal)["psnr"])
    return fake, target


def card_notes(c: TrainConfig, metrics: dict[str, float]) -> tuple[str, ...]:
    """The model card's lines on where the student comes from and how close it is."""
    notes = [f"distilled from the teacher `{c.teacher}` by `train.py distill`"]
    if "PSNR" in metrics:
        notes.append(
            f"student against teacher on the held-out photos (centre "
            f"{c.crop_size}x{c.crop_size}): PSNR {metrics['PSNR']:.2f} dB, SSIM "
            f"{metrics.get('SSIM', float('nan')):.3f} (the photos themselves: PSNR "
            f"{metrics.get('input_PSNR', float('nan')):.2f} dB)"
        )
    else:
        notes.append("student against teacher: not measured at this save (no held-out photos)")
    return tuple(notes)
