"""CUT and FastCUT (Park et al., ECCV 2020): one-sided unpaired translation by patch contrast.

One generator G (A -> B), a PatchGAN D judging B images, and F: small MLP heads that project
patches of G's encoder features (`--nce-layers`, indices into G's `model` Sequential: the
default 0,4,8,12,16 are the padded input, the two down-sampling convs, and residual blocks
1 and 5 of the anti-aliased cut_resnet). Per step, for unpaired batches A and B:

    D:  0.5 * (GAN(D(B) -> real) + GAN(D(G(A)) -> fake))                     LSGAN by default
    G:  lambda_gan * GAN(D(G(A)) -> real) + NCE(A, G(A))                     [CUT: see below]
    NCE(x, y) = lambda_nce * mean over layers l of PatchNCE(F_l(E_l(y)), F_l(E_l(x)))

PatchNCE samples `--num-patches` positions per layer (the same positions in x and y, for every
image of the batch), and asks each patch of G(x) to pick, at temperature `--nce-t`, the patch
of x at its own position among the other sampled positions of the same image (cross-entropy
over 1 positive and num_patches - 1 negatives; keys carry no gradient). CUT (`--nce-idt`, on
by default) adds the identity term NCE(B, G(B)) and averages the two; FastCUT (`train.py cut
--fast`, preset fastcut) has no identity term, lambda_nce 10, flip equivariance (G sees a
horizontally flipped batch half of the time; its features are flipped back before the loss)
and 150 + 50 epochs, as the authors set it.

Where this differs from taesungp/contrastive-unpaired-translation, and why: F's heads are
created when the networks are (the authors create them lazily on the first batch), from a
probe forward of G on a zero image, so a run is deterministic and its checkpoint holds F from
step 0; G and F are updated by one Adam over both (the authors use two with the same settings:
Adam is per parameter, so the updates are the same); the flip is drawn from torch's RNG (the
checkpointed one), not numpy's; D is our PatchGAN (the authors' default D also blurs before
each stride). Every network is initialised xavier-normal with gain 0.02, the authors' default.
CUT runs in one process: its encoder-only forwards bypass DistributedDataParallel.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..eval import metrics as table
from ..media.processing import to_uint8
from .config import ConfigError, TrainConfig
from .losses import gan_loss
from .precision import Precision
from .steps import Losses, frozen, set_requires_grad

GENERATORS = ("cut_resnet", "resnet")  # generators whose `model` Sequential the layers index


def nce_layers(c: TrainConfig) -> tuple[int, ...]:
    """`--nce-layers` as indices (validated by config.validate: ascending, >= 0)."""
    return tuple(int(i) for i in c.nce_layers.split(","))


def _plain(runner: nn.Module) -> nn.Module:
    """The module under a torch.compile wrapper (its `model` Sequential is what we walk)."""
    return getattr(runner, "_orig_mod", runner)


def encode(G: nn.Module, x: torch.Tensor, layers: tuple[int, ...]) -> list[torch.Tensor]:
    """The outputs of G.model[i] for i in `layers` (ascending), G run only as far as needed."""
    feats = []
    for i, layer in enumerate(_plain(G).model):
        x = layer(x)
        if i in layers:
            feats.append(x)
        if i == layers[-1]:
            break
    return feats


class PatchSampleF(nn.Module):
    """Per encoder layer, a 2-layer MLP (C -> dim -> dim) over sampled patch features, then
    L2 normalisation: the projection heads "F" of CUT (`--netF mlp_sample`)."""

    def __init__(self, channels: list[int], dim: int = 256) -> None:
        super().__init__()
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(c, dim), nn.ReLU(), nn.Linear(dim, dim)) for c in channels
        )

    def forward(
        self, feats: list[torch.Tensor], num_patches: int, ids: list[torch.Tensor] | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """[(B, C_l, H_l, W_l)] -> ([(B * P_l, dim)] unit rows, [(P_l,)] the positions used):
        P_l = min(num_patches, H_l W_l) positions drawn at random unless `ids` are given."""
        samples, used = [], []
        for n, (feat, mlp) in enumerate(zip(feats, self.mlps, strict=True)):
            rows = feat.permute(0, 2, 3, 1).flatten(1, 2)  # (B, H W, C)
            if ids is None:
                pick = torch.randperm(rows.shape[1], device=feat.device)[:num_patches]
            else:
                pick = ids[n]
            x = mlp(rows[:, pick, :].flatten(0, 1))  # (B * P, dim)
            samples.append(x / (x.norm(dim=1, keepdim=True) + 1e-7))
            used.append(pick)
        return samples, used


def patch_nce(q: torch.Tensor, k: torch.Tensor, batch: int, tau: float) -> torch.Tensor:
    """Per-patch InfoNCE of queries q against keys k, both (B * P, dim) unit rows: logits
    [q_i . k_i, q_i . k_j (j != i, same image)] / tau, target 0. Returns (B * P,)."""
    k = k.detach()
    positive = (q * k).sum(dim=1, keepdim=True)  # (B P, 1)
    qb, kb = q.view(batch, -1, q.shape[1]), k.view(batch, -1, k.shape[1])  # (B, P, dim)
    negative = torch.bmm(qb, kb.transpose(1, 2))  # (B, P, P)
    eye = torch.eye(qb.shape[1], dtype=torch.bool, device=q.device)[None]
    negative = negative.masked_fill(eye, -10.0).flatten(0, 1)  # the positive itself: ~exp(-10)
    logits = torch.cat((positive, negative), dim=1) / tau  # (B P, 1 + P)
    target = torch.zeros(len(logits), dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target, reduction="none")


def nce_loss(G, heads, src, tgt, c: TrainConfig, flipped: bool) -> torch.Tensor:
    """lambda_nce * mean over layers of PatchNCE(F(E(tgt)), F(E(src))); tgt came from a
    flipped src when `flipped` (its features are flipped back to line up)."""
    layers = nce_layers(c)
    feat_q = encode(G, tgt, layers)
    if flipped:
        feat_q = [f.flip(3) for f in feat_q]
    with torch.no_grad():  # the keys are detached in PatchNCE: no gradient either way
        k, ids = heads(encode(G, src, layers), c.num_patches)
    q, _ = heads(feat_q, c.num_patches, ids)
    terms = [
        patch_nce(a.float(), b.float(), len(src), c.nce_t).mean() for a, b in zip(q, k, strict=True)
    ]
    return sum(terms) * c.lambda_nce / len(layers)


def cut_step(runners, optimizers, pools, real_A, real_B, c: TrainConfig, precision) -> Losses:
    """G on A (and B with --nce-idt) once, then the D step and the G + F step (the authors'
    order). A, B: (N, C, H, W). Returns the weighted losses, detached."""
    G, D, heads = runners["G"], runners["D"], runners["F"]
    n = len(real_A)
    real = torch.cat((real_A, real_B)) if c.nce_idt else real_A
    flipped = c.flip_equivariance and bool(torch.rand(()) < 0.5)
    with precision.autocast():
        fake = G(real.flip(3) if flipped else real)
    fake_B, idt_B = fake[:n], fake[n:]
    losses = _discriminator(D, optimizers["D"], real_B, fake_B, c, precision)
    set_requires_grad([D], False)
    optimizers["G"].zero_grad(set_to_none=True)
    with precision.autocast():
        g: Losses = {}
        if c.lambda_gan > 0:
            g["G_GAN"] = gan_loss(frozen(D)(fake_B), True, c.gan_mode) * c.lambda_gan
        if c.lambda_nce > 0:
            g["NCE"] = nce_loss(G, heads, real_A, fake_B, c, flipped)
            if c.nce_idt:
                g["NCE_Y"] = nce_loss(G, heads, real_B, idt_B, c, flipped)
        nce = (g["NCE"] + g["NCE_Y"]) * 0.5 if "NCE_Y" in g else g.get("NCE", 0.0)
        loss = g.get("G_GAN", 0.0) + nce
    precision.backward(loss)
    precision.step(optimizers["G"])
    set_requires_grad([D], True)
    precision.update()
    return losses | {k: v.detach() for k, v in g.items()}


def _discriminator(D, optimizer, real_B, fake_B, c: TrainConfig, precision: Precision) -> Losses:
    optimizer.zero_grad(set_to_none=True)
    with precision.autocast():
        loss_fake = gan_loss(D(fake_B.detach()), False, c.gan_mode)
        loss_real = gan_loss(D(real_B), True, c.gan_mode)
        loss = (loss_fake + loss_real) * 0.5
    precision.backward(loss)
    precision.step(optimizer)
    return {"D_real": loss_real.detach(), "D_fake": loss_fake.detach()}


# ----------------------------------------------------------------------------- recipe hooks


def xavier_init(module: nn.Module, gain: float = 0.02) -> None:
    """The authors' default `--init_type xavier`: conv / linear weights xavier-normal(gain),
    biases 0, BatchNorm weights N(1, gain)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


def heads(c: TrainConfig, nets: dict[str, nn.Module]) -> dict[str, nn.Module]:
    """{"F": the PatchSampleF heads}, their widths read off a probe forward of G (eval mode,
    no gradients, no random numbers); then G, D and F get the authors' xavier init."""
    G, layers = nets["G"], nce_layers(c)
    if layers[-1] >= len(G.model):
        raise ConfigError(
            f"--nce-layers {c.nce_layers}: the {c.generator} generator has layers "
            f"0..{len(G.model) - 1}"
        )
    probe = torch.zeros(1, G.config["in_channels"], 32, 32)
    with torch.no_grad():
        channels = [f.shape[1] for f in encode(G.eval(), probe, layers)]
    G.train()
    net = PatchSampleF(channels, c.nce_dim)
    for module in (G, nets["D"], net):
        xavier_init(module)
    return {"F": net}


def load_data(c: TrainConfig, world: Any) -> tuple[Any, Any, bool]:
    """CycleGAN's data (unaligned A and B; an aligned folder's halves, with real validation
    pairs), in one process only."""
    if world.size > 1:
        raise ConfigError(
            "train.py cut runs in one process (its encoder-only forwards bypass "
            "DistributedDataParallel): run it without torchrun"
        )
    from .loader import load_data as layouts  # loader imports the recipes, so not at the top

    return layouts(dataclasses.replace(c, family="cyclegan"), world)


def cut_batch(nets, A, B, paired: bool, out) -> tuple[torch.Tensor, torch.Tensor]:
    """G(A) against B (A2B_L1, A2B_PSNR, A2B_SSIM) when the held-out pairs are real, and the
    A2B features for FID / KID where validation computes them; the grid shows A / G(A) / B."""
    fake_B = nets["G"](A)
    fake8 = to_uint8(fake_B, truncate=True)
    if paired:
        rows = table.of_scope("image", networks=())
        for name, values in table.image_scores(rows, fake8, to_uint8(B)).items():
            out.add(f"A2B_{name.upper()}", values)
    out.add_features("A2B_fake", fake8)
    out.add_features("A2B_real", to_uint8(B))
    return fake_B, B


def card_notes(c: TrainConfig, metrics: dict[str, float]) -> tuple[str, ...]:
    """The model card's line on the recipe."""
    mode = "FastCUT" if c.preset == "fastcut" else "CUT"
    return (
        f"{mode} (Park et al. 2020) by `train.py cut`: PatchNCE on layers {c.nce_layers}, "
        f"lambda_nce {c.lambda_nce}, identity NCE {'on' if c.nce_idt else 'off'}",
    )
