"""Checkpoint families beyond the classic ones: the HugGAN CycleGAN ResNet (reference fixture
and full-size manifest), community ResNet variants written independently here the way their
scripts define them, files holding a whole CycleGAN, and what an unrecognised file is told."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from helpers.images import random_image
from helpers.models import tiny_generators
from safetensors.torch import load_file, save_file
from torch import nn

from img2img import CheckpointError, Translator, load_generator
from img2img.checkpoints.catalog import load_catalog
from img2img.checkpoints.hub import load_model
from img2img.checkpoints.weights import clean_state_dict, find_family, infer_config
from img2img.models import ARCHITECTURES, HugGANResnetGenerator, build_generator
from img2img.models.resnet import ResnetGenerator

NGF = 8

# --- reference modules: plain nn.Sequential stacks, as community CycleGAN scripts write them


class RefBlock(nn.Module):
    """x + F(x), its Sequential stored under the script's attribute name."""

    def __init__(self, dim: int, name: str, affine: bool, bias: bool) -> None:
        super().__init__()
        self.name = name
        layers = []
        for i in range(2):
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, bias=bias)]
            layers += [nn.InstanceNorm2d(dim, affine=affine)]
            if i == 0:
                layers += [nn.ReLU(True)]
        setattr(self, name, nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + getattr(self, self.name)(x)


class RefGenerator(nn.Module):
    def __init__(self, n_blocks, block_name, affine, upsample, bias, in_nc=3, out_nc=3):
        super().__init__()
        norm = lambda c: nn.InstanceNorm2d(c, affine=affine)  # noqa: E731
        m = [nn.ReflectionPad2d(3), nn.Conv2d(in_nc, NGF, 7, bias=bias), norm(NGF), nn.ReLU(True)]
        for mult in (1, 2):
            c = NGF * mult
            m += [
                nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias),
                norm(2 * c),
                nn.ReLU(True),
            ]
        m += [RefBlock(4 * NGF, block_name, affine, bias) for _ in range(n_blocks)]
        for mult in (4, 2):
            c = NGF * mult
            if upsample == "transpose":
                m += [nn.ConvTranspose2d(c, c // 2, 3, 2, padding=1, output_padding=1, bias=bias)]
            else:
                m += [nn.Upsample(scale_factor=2), nn.Conv2d(c, c // 2, 3, 1, 1, bias=bias)]
            m += [norm(c // 2), nn.ReLU(True)]
        m += [nn.ReflectionPad2d(3), nn.Conv2d(NGF, out_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class RefDiscriminator(nn.Module):
    """HugGAN's CycleGAN discriminator (what a whole-CycleGAN file holds beside the G's)."""

    def __init__(self, c: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate([(c, 8), (8, 16), (16, 32), (32, 64)]):
            layers += [nn.Conv2d(a, b, 4, stride=2, padding=1)]
            layers += [nn.InstanceNorm2d(b)] if i else []
            layers += [nn.LeakyReLU(0.2, inplace=True)]
        self.model = nn.Sequential(
            *layers, nn.ZeroPad2d((1, 0, 1, 0)), nn.Conv2d(64, 1, 4, padding=1)
        )


def randomised(module: nn.Module, seed: int) -> nn.Module:
    """Every parameter random, eval mode: conv weights ~ N(0, 1 / fan_in) so the Tanh is not
    saturated, norm weights and biases far from 1 and 0 (a misread norm or bias shows)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() == 4:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3 + 0.5)
    return module.eval()


def save(state: dict[str, torch.Tensor], path) -> None:
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save(state, path)


# (block_name, norm_affine, upsample, bias): every combination; the junyanz one is resnet.py's,
# and (conv_block, non-affine, transpose, no bias) has exactly the keys of a junyanz
# norm="none" ResNet, which it keeps loading as (see test_ambiguous_layout_stays_junyanz).
COMBOS = list(
    itertools.product(
        ("block", "conv_block"), (False, True), ("nearest_conv", "transpose"), (True, False)
    )
)
AMBIGUOUS = ("conv_block", False, "transpose", False)
VARIANTS = [
    (*combo, n_blocks, suffix)
    for (combo, n_blocks, suffix) in zip(
        [c for c in COMBOS if c != AMBIGUOUS],
        itertools.cycle([0, 1, 2, 3, 6, 9]),
        itertools.cycle([".pth", ".bin", ".safetensors"]),
    )
]


def variant_id(v) -> str:
    name, affine, up, bias, n, suffix = v
    norm, with_bias = "affineIN" if affine else "IN", "bias" if bias else "nobias"
    return f"{name}-{norm}-{up}-{with_bias}-{n}blocks{suffix}"


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_community_resnet_variants_load_and_match_their_modules(tmp_path, variant):
    name, affine, up, bias, n_blocks, suffix = variant
    ref = randomised(RefGenerator(n_blocks, name, affine, up, bias), seed=n_blocks)
    path = tmp_path / f"G{suffix}"
    save(ref.state_dict(), path)
    model = load_generator(path)
    junyanz = (name, affine, up) == ("conv_block", False, "transpose")
    if junyanz:  # the classic layout stays resnet.py's
        assert model.config["architecture"] == "resnet" and model.config["norm"] == "instance"
    else:
        # Without blocks the block name leaves no trace: the default is as good as any.
        expect = dict(
            block_name=name if n_blocks else "block", norm_affine=affine, upsample=up, bias=bias
        )
        assert model.config == {
            "architecture": "huggan_resnet",
            "in_channels": 3,
            "out_channels": 3,
            "n_blocks": n_blocks,
            "ngf": NGF,
            **expect,
        }
    assert list(model.state_dict()) == list(ref.state_dict())  # same keys, same order
    x = torch.rand(2, 3, 36, 44, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        want = ref(x)
        err = (model(x) - want).abs().max().item()
    assert (want.abs() < 0.99).float().mean() > 0.5  # a meaningful output, not a saturated one
    assert err < 1e-4, f"{variant_id(variant)}: max abs error {err}"


def all_states() -> dict[str, dict[str, torch.Tensor]]:
    states = {variant_id(v): RefGenerator(v[4], *v[:4]).state_dict() for v in VARIANTS}
    states.update({f"tiny-{k}": m.state_dict() for k, m in tiny_generators().items()})
    states["tiny-huggan_resnet"] = HugGANResnetGenerator(ngf=NGF, n_blocks=2).state_dict()
    states["junyanz-batch-dropout"] = ResnetGenerator(
        ngf=NGF, norm="batch", dropout=True
    ).state_dict()
    states["junyanz-none"] = ResnetGenerator(ngf=NGF, norm="none", n_blocks=0).state_dict()
    return states


@pytest.mark.parametrize("name,state", sorted(all_states().items()))
def test_exactly_one_architecture_claims_each_layout(name, state):
    """Order-independent recognition: matchers are exclusive."""
    claims = [a.name for a in ARCHITECTURES.values() if a.matches(clean_state_dict(state))]
    assert len(claims) == 1, f"{name} is claimed by {claims}"


def test_ambiguous_layout_stays_junyanz(tmp_path):
    """conv_block + ConvTranspose with no norm weights and no conv biases is what a junyanz
    norm="none" ResNet saves; that is what it loads as, as before community ResNets."""
    ref = randomised(RefGenerator(2, *AMBIGUOUS), seed=0)
    junyanz = ResnetGenerator(ngf=NGF, n_blocks=2, norm="none")
    assert list(ref.state_dict()) == list(junyanz.state_dict())
    torch.save(ref.state_dict(), tmp_path / "G.pth")
    config = load_generator(tmp_path / "G.pth").config
    assert (config["architecture"], config["norm"]) == ("resnet", "none")


# --- HugGAN CycleGAN: the reference fixture and the published file's manifest --------------


def test_huggan_fixture_reproduces_the_original_code(fixtures):
    """Was: "ResNet checkpoint with 0 blocks lacks its output conv" (read as junyanz)."""
    model = load_generator(fixtures / "huggan_resnet2.pytorch_model.bin")
    assert model.config == {**HugGANResnetGenerator().config, "n_blocks": 2}
    data = load_file(fixtures / "huggan_resnet2.io.safetensors")
    with torch.no_grad():
        y = model(data["input"])
    err = (y - data["output_eval"]).abs().max().item()
    assert y.shape == data["output_eval"].shape and err < 1e-4, f"max abs error {err}"


def manifest(fixtures) -> dict[str, list[int]]:
    readme = json.loads((fixtures / "README_huggan_resnet2.json").read_text())
    return readme["full_size_key_manifest"]["huggan_generator_resnet_9blocks"]


def test_full_size_huggan_file_would_load_strictly(fixtures):
    """The 45 MB `pytorch_model.bin`: config read off its shapes rebuilds exactly its keys,
    shapes and order; the default module is that too, and so is every catalog entry's."""
    shapes = manifest(fixtures)
    config = infer_config({k: torch.empty(s, device="meta") for k, s in shapes.items()})
    for cfg in [config, HugGANResnetGenerator().config] + [
        e.architecture
        for e in load_catalog().values()
        if e.architecture["architecture"] == "huggan_resnet"
    ]:
        with torch.device("meta"):
            module = build_generator(cfg)
        assert [(k, list(v.shape)) for k, v in module.state_dict().items()] == list(shapes.items())
    assert config == HugGANResnetGenerator().config  # n_blocks 9, ngf 64, HugGAN switches


def test_catalog_lists_the_huggan_cyclegan_repos():
    repos = {
        s.repo_id: e
        for e in load_catalog().values()
        for s in e.sources
        if e.architecture["architecture"] == "huggan_resnet"
    }
    assert set(repos) == {"huggan/sim2real_cyclegan", "Chris1/real2sim-512"}
    for entry in repos.values():
        assert entry.family == "cyclegan" and entry.license_id == "mit"
        assert entry.sources[0].filename == "pytorch_model.bin"


def test_translator_runs_a_huggan_resnet_checkpoint(tmp_path):
    torch.manual_seed(0)
    torch.save(
        HugGANResnetGenerator(ngf=NGF, n_blocks=1).state_dict(), tmp_path / "pytorch_model.bin"
    )
    out = Translator(device="cpu", plan="eager").translate(str(tmp_path), [random_image(50, 38)])
    assert out[0].size == (50, 38)


# --- files holding a whole CycleGAN ---------------------------------------------------------


def cyclegan_nets() -> dict[str, nn.Module]:
    return {
        "G_AB": randomised(RefGenerator(2, "block", False, "nearest_conv", True), 1),
        "G_BA": randomised(RefGenerator(2, "block", False, "nearest_conv", True), 2),
        "D_A": randomised(RefDiscriminator(), 3),
        "D_B": randomised(RefDiscriminator(), 4),
    }


def nested(nets, tmp_path):
    torch.save({k: m.state_dict() for k, m in nets.items()}, tmp_path / "cyclegan.pth")
    return tmp_path / "cyclegan.pth"


def prefixed(nets, tmp_path):
    state = {f"{k}.{key}": v for k, m in nets.items() for key, v in m.state_dict().items()}
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "cyclegan.safetensors")
    return tmp_path / "cyclegan.safetensors"


def junyanz_prefixed(nets, tmp_path):  # netG_A.model..., netD_B.model... (classic names)
    names = {"G_AB": "netG_A", "G_BA": "netG_B", "D_A": "netD_A", "D_B": "netD_B"}
    state = {f"{names[k]}.{key}": v for k, m in nets.items() for key, v in m.state_dict().items()}
    torch.save(state, tmp_path / "latest.pth")
    return tmp_path / "latest.pth"


@pytest.mark.parametrize("write", [nested, prefixed, junyanz_prefixed])
def test_a_whole_cyclegan_file_loads_the_named_generator(tmp_path, write):
    nets = cyclegan_nets()
    path = write(nets, tmp_path)
    g_ab, g_ba = ("netG_A", "netG_B") if write is junyanz_prefixed else ("G_AB", "G_BA")
    with pytest.raises(CheckpointError) as e:
        load_generator(path)
    assert f"{g_ab} (huggan_resnet)" in str(e.value) and f"{g_ba} (huggan_resnet)" in str(e.value)
    assert "name=" in str(e.value)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    for name, ref in ((g_ab, nets["G_AB"]), (g_ba, nets["G_BA"])):
        model = load_generator(path, name=name)
        with torch.no_grad():
            assert (model(x) - ref(x)).abs().max().item() < 1e-4, name
    assert load_model(str(path), name=g_ba).config["architecture"] == "huggan_resnet"
    with pytest.raises(CheckpointError, match="no network named 'G'") as e:
        load_generator(path, name="G")
    assert all(n in str(e.value) for n in (g_ab, g_ba, "D_A", "D_B"))


def test_a_file_with_one_generator_and_other_entries_needs_no_name(tmp_path):
    nets = cyclegan_nets()
    opt = torch.optim.Adam(nets["G_AB"].parameters())
    nets["G_AB"](torch.zeros(1, 3, 8, 8)).mean().backward()
    opt.step()
    obj = {"G_AB": nets["G_AB"].state_dict(), "D_A": nets["D_A"].state_dict()}
    torch.save({**obj, "optimizer_G": opt.state_dict(), "epoch": 3}, tmp_path / "ckpt.pth")
    model = load_generator(tmp_path / "ckpt.pth")
    assert list(model.state_dict()) == list(nets["G_AB"].state_dict())
    torch.save({"checkpoint": {"G_AB": obj["G_AB"]}}, tmp_path / "deep.pth")
    assert load_generator(tmp_path / "deep.pth", name="G_AB").config["n_blocks"] == 2


def test_a_file_of_discriminators_only_lists_what_it_holds(tmp_path):
    nets = cyclegan_nets()
    torch.save({k: nets[k].state_dict() for k in ("D_A", "D_B")}, tmp_path / "d.pth")
    with pytest.raises(
        CheckpointError, match="2 networks and none has a generator layout.*D_A, D_B"
    ):
        load_generator(tmp_path / "d.pth")


# --- what an unrecognised or half-matching file is told --------------------------------------


def fixture_state(fixtures) -> dict[str, torch.Tensor]:
    return torch.load(fixtures / "huggan_resnet2.pytorch_model.bin", weights_only=True)


def load_error(state, tmp_path) -> str:
    torch.save(state, tmp_path / "x.pth")
    with pytest.raises(CheckpointError) as e:
        load_generator(tmp_path / "x.pth")
    return str(e.value)


def test_half_matching_huggan_files_name_the_family_and_the_tensors(fixtures, tmp_path):
    state = fixture_state(fixtures)
    no_output = {k: v for k, v in state.items() if not k.startswith("model.21.")}
    text = load_error(no_output, tmp_path)
    assert (
        "HugGAN/community ResNet" in text and "model.21.weight" in text and "0 blocks" not in text
    )
    no_decoder = {k: v for k, v in state.items() if not k.startswith(("model.13.", "model.17."))}
    text = load_error(no_decoder, tmp_path)
    assert "no decoder conv" in text and "model.12.weight" in text and "model.13.weight" in text
    odd = {**state, "model.11.block.5.weight": torch.zeros(256, 256, 1, 1)}
    text = load_error(odd, tmp_path)
    assert '"architecture": "huggan_resnet"' in text
    assert "model.11.block.5.weight: checkpoint (256, 256, 1, 1) vs model (256, 256, 3, 3)" in text


def test_unrecognised_resnet_says_what_it_found_and_tried(tmp_path):
    state = ResnetGenerator(ngf=NGF, n_blocks=3).state_dict()
    state = {k: v for k, v in state.items() if int(k.split(".")[1]) < 13}  # decoder cut off
    text = load_error(state, tmp_path)
    assert "unrecognised checkpoint layout" in text
    assert "ResNet layout (7x7 input conv model.1) with 3 residual blocks has no decoder" in text
    assert "model.N.conv_block.N.weight x6" in text and "model.1.weight (8, 3, 7, 7)" in text
    assert all(a.about in text for a in ARCHITECTURES.values())


def test_unrecognised_huggan_unet_without_its_output_conv(tmp_path):
    state = tiny_generators()["huggan_unet"].state_dict()
    text = load_error({k: v for k, v in state.items() if not k.startswith("final.")}, tmp_path)
    assert "Nearly: HugGAN U-Net layout" in text and "final.2.weight" in text


def test_find_family_of_the_fixture_is_huggan(fixtures):
    assert find_family(fixture_state(fixtures)) == "huggan_resnet"
