"""The README and docs/ stay true: every catalog model, every tracked source file, every link
and every file path they name."""

from __future__ import annotations

import re
import subprocess

from helpers.paths import ROOT

from img2img.checkpoints.catalog import load_catalog

README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").glob("*.md"))


def _tracked() -> list[str]:
    return subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()


def test_every_catalog_model_is_in_the_model_table():
    missing = [i for i in load_catalog() if f"`{i}`" not in README]
    assert not missing, missing


def test_every_source_file_is_in_the_file_tree():
    tree = (ROOT / "docs" / "files.md").read_text(encoding="utf-8")
    listed = [f for f in _tracked() if f.endswith((".py", ".json")) or f in ("Makefile", ".ci/run")]
    missing = [f for f in listed if f not in tree]
    assert not missing, f"add to the file tree in docs/files.md: {missing}"


def test_the_two_setup_commands():
    assert "make run" in README and "make test" in README
    assert "make test-fast" in README and 'pytest -m "not slow"' in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_spaces_front_matter():
    """HF Spaces rejects a short_description over 60 characters; every Hub model is listed."""
    front = README.split("---")[1]
    short = next(line for line in front.splitlines() if line.startswith("short_description:"))
    assert len(short.split(":", 1)[1].strip()) <= 60
    hub_repos = {s.repo_id for e in load_catalog().values() for s in e.sources if s.type == "hub"}
    assert all(f"  - {repo}" in front for repo in hub_repos)


def test_spaces_front_matter_tags_and_preloads_the_default_models():
    """`preload_from_hub` puts the default model (and its reverse) in the Space's image, as
    `<repo> <file>[,<file>]` lines; `tags` are what the Hub lists the Space under."""
    from img2img.checkpoints.catalog import get_entry
    from webui.runtime import DEFAULT_MODEL

    front = README.split("---")[1]
    assert re.search(r"^tags:\n(  - [\w-]+\n)+", front, re.M), "tags: a list"
    assert "  - mcp-server" in front, "the app serves MCP by default (app.py mcp_server)"
    preload = front.split("preload_from_hub:", 1)[1]
    default = get_entry(DEFAULT_MODEL)
    for key in filter(None, (default.id, default.reverse)):
        source = next(s for s in get_entry(key).sources if s.type == "hub")
        files = ",".join((source.filename, *source.files))
        assert f"  - {source.repo_id} {files}" in preload, (key, preload)


def test_readme_is_a_front_door():
    """At most 250 lines below the Spaces front matter (which is configuration)."""
    body = README.split("---", 2)[2]
    assert len(body.splitlines()) <= 250


def test_every_linked_doc_exists():
    links = set(re.findall(r"\]\((docs/[^)#\s]+\.md)(?:#[^)]*)?\)", README))
    assert links, "the README links into docs/"
    missing = sorted(link for link in links if not (ROOT / link).is_file())
    assert not missing, missing


def _inline_code(text: str) -> list[str]:
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # fenced blocks are not paths
    return re.findall(r"`([^`\n]+)`", text)


def test_every_file_path_in_the_docs_exists():
    """A path in backticks that looks like a file exists (docs stay true after moves)."""
    wrong = []
    for page in [ROOT / "README.md", *DOCS]:
        for span in _inline_code(page.read_text(encoding="utf-8")):
            for word in span.split():
                word = word.strip("\"'(),;:")
                if "/" not in word or not word.endswith((".py", ".json", ".md")):
                    continue
                if any(c in word for c in "<*$") or word.startswith(("weights/", "http")):
                    continue
                if not (ROOT / word).exists():
                    wrong.append(f"{page.relative_to(ROOT)}: {word}")
    assert not wrong, wrong
