"""One optimisation step of pix2pix and of CycleGAN, as pure functions.

Each takes the networks, optimizers and a batch, updates the weights, and returns the
losses as detached scalars, named and scaled as the classic code logs them (G_L1 includes
lambda_l1; cycle_* include lambda_a/b; idt_* include lambda_identity * lambda_a/b). Every
forward runs in train mode, in the classic order, so BatchNorm running statistics move
exactly as they do there (pix2pix: G once, D three times).

Networks may be wrapped (torch.compile, DistributedDataParallel). A discriminator that is
frozen for the generator's update is called through its inner module: DDP must not wait
for gradients that a frozen network never produces.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import TrainConfig
from .losses import gan_loss, l1
from .pool import ImagePool
from .precision import Precision

Losses = dict[str, torch.Tensor]


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def frozen(net: nn.Module) -> nn.Module:
    """The module to call while `net` is frozen: without its DDP wrapper, if any."""
    return net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net


def pix2pix_step(
    nets: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    real_A: torch.Tensor,
    real_B: torch.Tensor,
    c: TrainConfig,
    precision: Precision,
) -> Losses:
    """G(A) once, then the D step and the G step (in `c.g_first` order). A, B: (N, 3, H, W)."""
    G, D = nets["G"], nets["D"]
    with precision.autocast():
        fake_B = G(real_A)  # (N, 3, H, W)
    if c.g_first:
        losses = _pix2pix_g(D, optimizers["G"], real_A, real_B, fake_B, c, precision)
        losses |= _pix2pix_d(D, optimizers["D"], real_A, real_B, fake_B, c, precision)
    else:
        losses = _pix2pix_d(D, optimizers["D"], real_A, real_B, fake_B, c, precision)
        losses |= _pix2pix_g(D, optimizers["G"], real_A, real_B, fake_B, c, precision)
    precision.update()
    return losses


def _pix2pix_d(D, optimizer, real_A, real_B, fake_B, c: TrainConfig, precision) -> Losses:
    set_requires_grad([D], True)
    optimizer.zero_grad(set_to_none=True)
    with precision.autocast():
        # (N, 6, H, W) pairs -> (N, 1, h, w) patch logits; the fake pair is detached from G.
        loss_fake = gan_loss(D(torch.cat((real_A, fake_B.detach()), 1)), False, c.gan_mode)
        loss_real = gan_loss(D(torch.cat((real_A, real_B), 1)), True, c.gan_mode)
        loss = (loss_fake + loss_real) * 0.5
    precision.backward(loss)
    precision.step(optimizer)
    return {"D_real": loss_real.detach(), "D_fake": loss_fake.detach()}


def _pix2pix_g(D, optimizer, real_A, real_B, fake_B, c: TrainConfig, precision) -> Losses:
    set_requires_grad([D], False)
    optimizer.zero_grad(set_to_none=True)
    with precision.autocast():
        loss_gan = gan_loss(frozen(D)(torch.cat((real_A, fake_B), 1)), True, c.gan_mode)
        loss_l1 = l1(fake_B.float(), real_B) * c.lambda_l1
        loss = loss_gan + loss_l1
    precision.backward(loss)
    precision.step(optimizer)
    set_requires_grad([D], True)
    return {"G_GAN": loss_gan.detach(), "G_L1": loss_l1.detach()}


def cyclegan_step(
    nets: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    pools: dict[str, ImagePool],
    real_A: torch.Tensor,
    real_B: torch.Tensor,
    c: TrainConfig,
    precision: Precision,
) -> Losses:
    """Both generators first (discriminators frozen), then D_A and D_B on pooled fakes."""
    G_A, G_B = nets["G_A"], nets["G_B"]
    with precision.autocast():
        fake_B = G_A(real_A)  # G_A(A)
        rec_A = G_B(fake_B)  # G_B(G_A(A))
        fake_A = G_B(real_B)  # G_B(B)
        rec_B = G_A(fake_A)  # G_A(G_B(B))
    fakes = {"A": fake_A, "B": fake_B}
    losses = _cyclegan_g(nets, optimizers["G"], real_A, real_B, fakes, rec_A, rec_B, c, precision)
    optimizers["D"].zero_grad(set_to_none=True)
    losses["D_A"] = _cyclegan_d(nets["D_A"], real_B, pools["B"].query(fake_B), c, precision)
    losses["D_B"] = _cyclegan_d(nets["D_B"], real_A, pools["A"].query(fake_A), c, precision)
    precision.step(optimizers["D"])
    precision.update()
    return losses


def _cyclegan_g(nets, optimizer, real_A, real_B, fakes, rec_A, rec_B, c, precision) -> Losses:
    G_A, G_B, D_A, D_B = (nets[k] for k in ("G_A", "G_B", "D_A", "D_B"))
    set_requires_grad([D_A, D_B], False)
    optimizer.zero_grad(set_to_none=True)
    lambda_idt = c.lambda_identity
    with precision.autocast():
        losses: Losses = {}
        if lambda_idt > 0:  # G_A should leave B images alone, G_B A images
            losses["idt_A"] = l1(G_A(real_B).float(), real_B) * c.lambda_b * lambda_idt
            losses["idt_B"] = l1(G_B(real_A).float(), real_A) * c.lambda_a * lambda_idt
        losses["G_A"] = gan_loss(frozen(D_A)(fakes["B"]), True, c.gan_mode)
        losses["G_B"] = gan_loss(frozen(D_B)(fakes["A"]), True, c.gan_mode)
        losses["cycle_A"] = l1(rec_A.float(), real_A) * c.lambda_a
        losses["cycle_B"] = l1(rec_B.float(), real_B) * c.lambda_b
        order = ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B")  # the classic sum
        loss = sum(losses[k] for k in order if k in losses)
    precision.backward(loss)
    precision.step(optimizer)
    set_requires_grad([D_A, D_B], True)
    return {k: v.detach() for k, v in losses.items()}


def _cyclegan_d(D, real, fake, c: TrainConfig, precision: Precision) -> torch.Tensor:
    """0.5 * (real + fake) for one discriminator; gradients accumulate into its optimizer."""
    with precision.autocast():
        loss_real = gan_loss(D(real), True, c.gan_mode)
        loss_fake = gan_loss(D(fake.detach()), False, c.gan_mode)
        loss = (loss_real + loss_fake) * 0.5
    precision.backward(loss)
    return loss.detach()
