"""`pip install img2img-gan` brings what the README and docs/deploy.md promise: the default
CPU plan (openvino) and a torch inside the range the suite runs on, with coherent extras.

The wheel is built from a copy of the checkout (offline, no build isolation); its METADATA is
compared with requirements.txt (what CI and a Space run) and with docs/deploy.md, and it is
installed for real, `--no-index`, into a fresh virtualenv that sees the suite's packages."""

from __future__ import annotations

import email
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers.env import clean_env
from helpers.paths import ROOT
from helpers.venvs import pip_install, suite_venv
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

DEPLOY = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")


def _pins(path: Path) -> dict[str, Requirement]:
    """name -> requirement of a requirements file (comments and -r lines left out)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            found[req.name] = req
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"  # a copy: building in place would leave build/ in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "img2img", source / "img2img", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp / "dist"), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    [built] = (tmp / "dist").glob("img2img_gan-*.whl")
    return built


def _metadata(wheel: Path) -> tuple[list[Requirement], dict[str, list[Requirement]]]:
    """(base requirements, {extra: its requirements}) from the wheel's METADATA."""
    with zipfile.ZipFile(wheel) as zf:
        [name] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(zf.read(name))
    base, extras = [], {e: [] for e in meta.get_all("Provides-Extra") or []}
    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        extra = next((e for e in extras if req.marker and req.marker.evaluate({"extra": e})), None)
        (extras[extra] if extra else base).append(req)
    return base, extras


@pytest.mark.slow
def test_the_wheel_requires_what_the_docs_promise(wheel):
    base, extras = _metadata(wheel)
    by_name = {r.name: r for r in base}
    pins = _pins(ROOT / "requirements.txt")
    # The default CPU plan comes with a plain install, pinned as requirements.txt pins it.
    assert str(by_name["openvino"].specifier) == str(pins["openvino"].specifier)
    assert "`openvino==2026.4.1`" in DEPLOY and str(pins["openvino"]) == "openvino==2026.4.1"
    # torch: the ZeroGPU floor, the tested release inside, nothing newer than its minor.
    torch = by_name["torch"].specifier
    tested = next(iter(pins["torch"].specifier)).version  # requirements.txt: torch==X.Y.Z
    major, minor = (int(x) for x in tested.split(".")[:2])
    assert "2.8.0" in torch and tested in torch and "2.7.1" not in torch
    assert f"{major}.{minor + 1}.0" not in torch, f"{torch} allows a torch newer than {tested}"
    promised = re.search(r"`torch(>=[^`]+)`", DEPLOY)
    assert promised and SpecifierSet(promised.group(1)) == torch, "docs/deploy.md's torch range"
    # Every pin of requirements.txt is allowed by the package (base or an extra): CI and a
    # Space run versions a pip install may pick.
    everything = {r.name: r for r in base} | {r.name: r for e in extras.values() for r in e}
    for name, pin in pins.items():
        if name in everything:
            version = next(iter(pin.specifier)).version if "==" in str(pin) else None
            if version:
                assert version in everything[name].specifier, (name, pin, everything[name])
    assert {"app", "train", "eval", "dev"} <= set(extras)
    assert {r.name for r in extras["eval"]} == {"torchmetrics", "torch-fidelity", "torchvision"}
    [self_ref] = [r for r in extras["dev"] if r.name == "img2img-gan"]
    assert self_ref.extras == {"app", "train", "eval", "datasets", "ray", "export", "int8"}


# Run in the new venv: every base requirement of the installed img2img-gan is installed there
# at a version it allows (what pip would have checked).
REQUIREMENTS_MET = """
from importlib.metadata import PackageNotFoundError, distribution, version
from packaging.requirements import Requirement
unmet = []
for text in distribution("img2img-gan").requires or []:
    req = Requirement(text)
    if req.marker and not req.marker.evaluate({"extra": ""}):
        continue
    try:
        if version(req.name) not in req.specifier:
            unmet.append(f"{req} (have {version(req.name)})")
    except PackageNotFoundError:
        unmet.append(f"{req} (missing)")
print("met" if not unmet else "unmet: " + "; ".join(unmet))
"""


@pytest.mark.slow
def test_the_wheel_installs_offline_and_runs_the_default_cpu_plan(wheel, tmp_path):
    """A real `pip install --no-index` of the wheel: its requirements are met by the suite's
    packages (no download), and the installed command runs outside any checkout."""
    venv = tmp_path / "venv"
    python, purelib = suite_venv(venv)
    # --force-reinstall --no-deps: the suite's own venv may hold the checkout's editable
    # install (make installs it), which pip would take as already there; the requirements
    # are then checked against what the new venv sees, with nothing downloaded.
    pip_install(python, "--no-index", "--force-reinstall", "--no-deps", str(wheel))
    met = subprocess.run([python, "-c", REQUIREMENTS_MET], capture_output=True, text=True)
    assert met.returncode == 0 and met.stdout.strip() == "met", met.stdout + met.stderr
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = clean_env(HF_HOME=str(tmp_path / "hf"), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [venv / "bin" / "img2img", "--version"], cwd=outside, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("img2img-gan "), done.stderr
    code = (
        "import img2img, torch; from img2img.plans.execution import auto_plan; "
        "print(img2img.__file__); print(auto_plan(torch.device('cpu')).name)"
    )
    where, plan = subprocess.run(
        [python, "-c", code], cwd=outside, env=env, capture_output=True, text=True, timeout=120,
        check=True,
    ).stdout.split()  # fmt: skip
    assert where.startswith(purelib) and plan.startswith("openvino")
