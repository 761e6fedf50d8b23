"""The classic objectives: vanilla GAN (pix2pix), least-squares GAN (CycleGAN), L1.

`gan_loss` compares a discriminator's patch map of logits with an all-real or all-fake
target of the same shape, as the classic `GANLoss` does (one target per patch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAN_MODES = ("vanilla", "lsgan")


def gan_loss(pred: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """Mean loss of a (B, 1, h, w) patch map against ones (`real`) or zeros.

    vanilla: BCEWithLogitsLoss (pix2pix); lsgan: MSELoss (CycleGAN).
    """
    target = torch.full_like(pred, 1.0 if real else 0.0)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(pred, target)
    if mode == "lsgan":
        return F.mse_loss(pred, target)
    raise ValueError(f"unknown gan_mode {mode!r}; expected one of {GAN_MODES}")


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (the reconstruction, cycle and identity losses)."""
    return F.l1_loss(x, y)
