"""A fresh virtualenv that sees the suite's own packages (through a .pth, nothing
downloaded), and pip installs into it: what `make run` builds, or a user's clean install."""

from __future__ import annotations

import site
import subprocess
import sys
from pathlib import Path


def suite_venv(venv: Path) -> tuple[Path, str]:
    """(its python, its purelib folder): a venv without pip whose sys.path ends with the
    suite's site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    Path(purelib, "suite.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python, purelib


def pip_install(python: Path, *args: str) -> None:
    """`pip install --quiet ARGS` into the venv of `python`, with the suite's own pip."""
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
