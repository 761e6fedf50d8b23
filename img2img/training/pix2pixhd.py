"""pix2pixHD training (Wang et al. 2018): multi-scale discriminators, feature matching, VGG.

Paired A|B data, as pix2pix. Per step, with D_1..D_K judging cat(A, image) at full, 1/2,
... resolution (K = --num-d) and D_k^j the output of its layer j:

    L_D = 0.5 * sum_k [ GAN(D_k(A, G(A)) -> fake) + GAN(D_k(A, B) -> real) ]
    L_G = sum_k GAN(D_k(A, G(A)) -> real)                                        G_GAN
        + lambda_feat * 4 / (n_layers_d + 1) / K * sum_k sum_j L1(D_k^j(A, G(A)), D_k^j(A, B))
                                                                              G_GAN_Feat
        + lambda_feat * L_VGG(G(A), B)                                            G_VGG

GAN is LSGAN by default (pix2pixHD's `no_lsgan` False). As in NVIDIA's train.py both losses
are computed with the discriminators as they are before the step; then G steps, then D.
`--no-feat-match` and `--no-vgg-loss` drop their terms (training/vgg.py: the VGG19 weights).
Fresh networks start as every family here does, conv weights N(0, 0.02) and biases 0
(NVIDIA's weights_init leaves PyTorch's default bias init). The discriminators' keys are
NVIDIA's (`scale{k}_layer{j}.N...`, getIntermFeat), so a `latest_net_D.pth` loads into them.
Tested against NVIDIA's code (pix2pixhd 1.0 on PyPI): one step's losses and updates
(tests/test_pix2pixhd.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.norm import init_weights, make_norm
from .config import TrainConfig
from .losses import gan_loss
from .precision import Precision
from .steps import Losses, frozen, set_requires_grad
from .vgg import load_vgg, vgg_loss

Features = list[list[torch.Tensor]]  # per discriminator (finest first): each layer's output


class MultiscaleDiscriminator(nn.Module):
    """K PatchGANs (4x4 convs, padding 2), discriminator k on the input pooled K-1-k times.

    Each is n_layers + 2 Sequentials `scale{k}_layer{j}`: Conv4s2 LReLU | (n_layers - 1) x
    (Conv4s2 Norm LReLU) | Conv4s1 Norm LReLU | Conv4s1 -> 1 map; widths ndf * 2^j, at most 512.
    """

    def __init__(
        self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
        num_d: int = 2,
    ) -> None:  # fmt: skip
        super().__init__()
        self.num_d, self.n_layers = num_d, n_layers
        for k in range(num_d):
            for j, layer in enumerate(_patchgan(in_channels, ndf, n_layers, norm)):
                self.add_module(f"scale{k}_layer{j}", layer)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> Features:
        """(B, C, H, W) -> for each scale, finest first, its n_layers + 2 outputs (last: logits)."""
        result = []
        for i in range(self.num_d):
            k = self.num_d - 1 - i  # NVIDIA's order: the last discriminator sees full size
            outputs, h = [], x
            for j in range(self.n_layers + 2):
                h = getattr(self, f"scale{k}_layer{j}")(h)
                outputs.append(h)
            result.append(outputs)
            if i != self.num_d - 1:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        return result


def _patchgan(in_channels: int, ndf: int, n_layers: int, norm: str) -> list[nn.Sequential]:
    """NLayerDiscriminator's layers, one Sequential each (its getIntermFeat form)."""
    layers = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, 2), nn.LeakyReLU(0.2, True))]
    nf = ndf
    for n in range(1, n_layers + 1):
        prev, nf = nf, min(nf * 2, 512)
        stride = 2 if n < n_layers else 1
        conv = nn.Conv2d(prev, nf, 4, stride, 2)
        layers.append(nn.Sequential(conv, make_norm(norm, nf), nn.LeakyReLU(0.2, True)))
    layers.append(nn.Sequential(nn.Conv2d(nf, 1, 4, 1, 2)))
    return layers


def build_discriminator(c: TrainConfig, in_channels: int) -> nn.Module:
    """The recipe's discriminator: --num-d scales of --ndf / --n-layers-d / --norm."""
    return MultiscaleDiscriminator(in_channels, c.ndf, c.n_layers_d, c.norm, c.num_d)


def fixed(c: TrainConfig, device: torch.device) -> dict[str, nn.Module]:
    """{"VGG": the frozen VGG19} when the VGG term is on (its weights found first)."""
    return {"VGG": load_vgg(device)} if c.vgg_loss and c.lambda_feat > 0 else {}


def multiscale_gan(pred: Features, real: bool, mode: str) -> torch.Tensor:
    """The GAN loss summed over the discriminators (each on its last output)."""
    return sum(gan_loss(outputs[-1], real, mode) for outputs in pred)


def feature_matching(fake: Features, real: Features, c: TrainConfig) -> torch.Tensor:
    """lambda_feat * 4 / (n_layers + 1) / K * sum of L1 over every layer but the logits."""
    weight = c.lambda_feat * 4.0 / (c.n_layers_d + 1) / len(fake)
    terms = [F.l1_loss(f, r.detach()) for fs, rs in zip(fake, real, strict=True)
             for f, r in zip(fs[:-1], rs[:-1], strict=True)]  # fmt: skip
    return weight * sum(terms)


def pix2pixhd_step(
    nets: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    pools: dict,
    real_A: torch.Tensor,
    real_B: torch.Tensor,
    c: TrainConfig,
    precision: Precision,
) -> Losses:
    """Both losses with D as it is, then the G step, then the D step. A, B: (N, C, H, W)."""
    G, D = nets["G"], nets["D"]
    with precision.autocast():
        fake_B = G(real_A)
        pred_fake_d = D(torch.cat((real_A, fake_B.detach()), 1))
        pred_real = D(torch.cat((real_A, real_B), 1))
        loss_d_fake = multiscale_gan(pred_fake_d, False, c.gan_mode)
        loss_d_real = multiscale_gan(pred_real, True, c.gan_mode)
    losses = _generator_step(nets, optimizers["G"], real_A, real_B, fake_B, pred_real, c, precision)
    optimizers["D"].zero_grad(set_to_none=True)
    with precision.autocast():
        loss_d = (loss_d_fake + loss_d_real) * 0.5
    precision.backward(loss_d)
    precision.step(optimizers["D"])
    precision.update()
    return losses | {"D_real": loss_d_real.detach(), "D_fake": loss_d_fake.detach()}


def _generator_step(nets, optimizer, real_A, real_B, fake_B, pred_real, c, precision) -> Losses:
    D = nets["D"]
    set_requires_grad([D], False)
    optimizer.zero_grad(set_to_none=True)
    with precision.autocast():
        pred_fake = frozen(D)(torch.cat((real_A, fake_B), 1))
        losses = {"G_GAN": multiscale_gan(pred_fake, True, c.gan_mode)}
        if c.feat_match:
            losses["G_GAN_Feat"] = feature_matching(pred_fake, pred_real, c)
        if "VGG" in nets:
            losses["G_VGG"] = vgg_loss(nets["VGG"], fake_B.float(), real_B) * c.lambda_feat
        loss = sum(losses.values())
    precision.backward(loss)
    precision.step(optimizer)
    set_requires_grad([D], True)
    return {k: v.detach() for k, v in losses.items()}
