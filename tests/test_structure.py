"""The app's layering (issue 18): the UI reaches the torch side through one door,
webui/engine.py, imported once in its own thread; nothing in app.py or webui/ imports inside
a function, and the engine's loading is safe when many requests arrive at once."""

from __future__ import annotations

import ast
import subprocess
import sys

from helpers.paths import ROOT

UI_FILES = [ROOT / "app.py", *sorted((ROOT / "webui").glob("*.py"))]


def _local_imports(path) -> list[str]:
    """`import` statements inside a function body of `path` (file:line name)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    names = ", ".join(a.name for a in inner.names)
                    module = getattr(inner, "module", None) or ""
                    found.append(f"{path.name}:{inner.lineno} {module} {names}".strip())
    return found


def test_no_function_local_imports_in_the_ui():
    local = [hit for path in UI_FILES for hit in _local_imports(path)]
    assert not local, local


def _module_imports(path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_only_the_engine_imports_the_torch_side():
    """torch and the library modules that import it appear in webui/engine.py alone (the
    rest of the UI may use the torch-free catalog, download, error and atomic-write modules)."""
    torch_free = {"img2img", "img2img.atomic", "img2img.checkpoints.catalog"}
    torch_free.add("img2img.checkpoints.download")
    offenders = {}
    for path in UI_FILES:
        if path.name == "engine.py":
            continue
        heavy = {
            m
            for m in _module_imports(path)
            if m == "torch" or (m.startswith("img2img") and m not in torch_free)
        }
        if heavy:
            offenders[path.name] = sorted(heavy)
    assert not offenders, offenders
    assert "torch" in _module_imports(ROOT / "webui" / "engine.py")


def test_the_engine_loads_once_in_its_own_thread_while_requests_wait():
    """Eight threads ask for the engine at once: one import, in the engine's own thread,
    and every caller gets the same module and the same Translator."""
    code = (
        "import sys, threading\n"
        "from webui import runtime\n"
        "assert 'torch' not in sys.modules\n"
        "seen, errors = [], []\n"
        "def ask():\n"
        "    try:\n"
        "        seen.append((runtime.engine(), runtime.translator()))\n"
        "    except BaseException as e:\n"
        "        errors.append(e)\n"
        "threads = [threading.Thread(target=ask) for _ in range(8)]\n"
        "for t in threads: t.start()\n"
        "for t in threads: t.join()\n"
        "assert not errors, errors\n"
        "assert len({id(m) for m, _ in seen}) == 1 and len({id(t) for _, t in seen}) == 1\n"
        "assert runtime._engine._thread.name == 'img2img engine'\n"
        "assert runtime.loaded() is seen[0][0] and 'torch' in sys.modules\n"
        "print('ok')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "IMG2IMG_PLAN": "eager", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_a_failed_engine_import_reaches_every_caller():
    """A broken torch side (here: the engine module cannot import) is raised to each handler
    that waits for it, not swallowed, and the UI's failure list still works without it."""
    code = (
        "import sys\n"
        "sys.modules['webui.engine'] = None  # makes `import webui.engine` fail\n"
        "from webui import runtime, messages\n"
        "for _ in range(2):\n"
        "    try:\n"
        "        runtime.engine()\n"
        "    except ImportError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit('no error')\n"
        "assert runtime.loaded() is None and len(messages.failures()) == 3\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
