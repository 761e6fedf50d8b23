"""What the app says about models, their weights, results and failures: Markdown text.

Pure functions of plain values (no gradio; no torch at import, as the page is built before
torch loads): app.py is the glue that puts these words on the page. Text that comes from a
message, a file name or a visitor is escaped, so that `<urlopen error ...>` shows instead of
vanishing as an HTML tag, and everything after it stays readable.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from img2img.checkpoints.catalog import ModelEntry

from .explain import explain

# hub.availability states -> the picker's marks ({brief}: what the file is, or why not).
MARKS = {
    "stored": "✓ ready ({brief})",
    "local": "✓ ready (local file: {brief})",
    "cached": "✓ ready (downloaded)",
    "download": "↓ downloads on first use",
    "offline": "✗ not on this machine ({brief})",
    "unusable": "✗ local file unusable: {brief}",
    "unpublished": "✗ not yet published",
}
# One order over the whole picker: your models, ready ones, downloads, then what cannot run.
ORDER = {"stored": 0, "local": 1, "cached": 1, "download": 2, "offline": 3, "unusable": 3}
ORDER["unpublished"] = 4
STORED_GROUP = "Your models"
URL = re.compile(r"https?://[^\s<>`]+")
# What a result depends on, named when the controls no longer match it (the page's
# "out of date" note, computed in the browser: app._stale_js).
RESULT_INPUTS = {
    "input": "the photo",
    "model": "the model",
    "custom": "your model",
    "resolution": "the resolution",
    "seed": "the seed",
    "round_trip": "the round trip",
}
STALE_HEAD = (
    "**⚠️ Out of date:** {changed} changed since this result was made. Press **Translate** to "
    "update it.\n\n"
)


def _escape(text: str) -> str:
    escaped = html.escape(text, quote=False)
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!|~>" else c for c in escaped)


def md(text: str) -> str:
    """Plain text for Markdown: HTML escaped and Markdown's punctuation backslash-escaped (a
    path with _ or * stays literal); URLs as code spans, since Markdown's automatic links
    would keep the backslashes."""
    parts, last = [], 0
    for match in URL.finditer(text):
        url = match.group().rstrip(".,;:)")
        parts += [_escape(text[last : match.start()]), f"`{url}`"]
        last = match.start() + len(url)
    return "".join(parts) + _escape(text[last:])


def mark(state: str, brief: str = "") -> str:
    return MARKS[state].format(brief=brief or "?")


def picker(
    groups: dict[str, list[ModelEntry]], found: dict[str, tuple], marks: bool, stored=()
) -> list[tuple[str, str]]:
    """(label, id) per model, in one order (ORDER): your models (`stored`: (id, name, state,
    brief) each), ready catalog models, those that would download, then those that cannot run
    here; by task within each. Labels keep their task; `marks=False` marks only the
    unpublished ones (the page before the availability is known)."""
    rows = []
    for rank, (model_id, name, state, brief) in enumerate(stored):
        suffix = f" — {mark(state, brief)}" if marks else ""
        rows.append(((0, rank), (f"{STORED_GROUP} · {name}{suffix}", model_id)))
    position = 0
    for task, entries in groups.items():
        for e in entries:
            state, _, brief = found[e.id][:3]
            shown = marks or state == "unpublished"
            suffix = f" — {mark(state, brief)}" if shown else ""
            rank = ORDER[state] if marks else ORDER[state] // 4 * 4  # unpublished last
            rows.append(((rank, position), (f"{task} · {e.label}{suffix}", e.id)))
            position += 1
    return [choice for _, choice in sorted(rows, key=lambda r: r[0])]


def short_path(path: str, root: Path) -> str:
    """A path as a deployer knows it: relative to the app's folder when inside it."""
    p = Path(path)
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(p)


def weights_line(entry: ModelEntry, found: tuple, loaded: bool) -> str:
    """Where the weights come from now: the source that will be, or was, used (from
    hub.availability: (state, source, brief, detail): local folder and what its file is, a
    local file that cannot serve and why, downloaded copy, download, no network, not
    published)."""
    state, source, _, detail = found
    done = "loaded" if loaded else "ready"
    if state == "local":
        return f"{done} from the local folder `{source}`: {md(detail)}"
    if state == "unusable":
        return f"**the local file cannot be used:** {md(detail)}"
    if state == "cached":
        return f"{done}: downloaded copy of {md(source)}"
    if state == "offline":
        return f"not on this machine, and it cannot be downloaded here ({md(detail)}): {md(source)}"
    if state == "download":
        return f"not on this machine; downloads from {md(source)} on first use"
    return f"not yet published: train it with train.py, then set `{entry.env_var}`"


def stored_card(model_id: str, folder: str, state: str, detail: str) -> str:
    """One of your models kept in <weights>/custom/<name>/: what it is, or why it cannot load."""
    what = f"- Holds: {md(detail)}" if state == "stored" else f"- **Cannot be used:** {md(detail)}"
    return "\n".join(
        [
            f"**{STORED_GROUP}** · `{model_id}` · kept in `{folder}`",
            what,
            f"- Command line: `img2img translate --checkpoint {model_id}`",
        ]
    )


def examples_note(blocked: list[tuple[str, str]]) -> str:
    """Under the examples: those whose model cannot run here, and why ((label, mark) each)."""
    if not blocked:
        return ""
    rows = "; ".join(f"{md(label)} ({md(why)})" for label, why in blocked)
    return f"**Examples that cannot run on this machine:** {rows}."


def model_card(entry: ModelEntry, weights: str) -> str:
    lines = [
        f"**{entry.label}** · `{entry.id}` · {entry.family}",
        f"- Expects: {entry.expects}",
        f"- Trained on: {entry.dataset}",
        f"- Weights: {weights}",
        f"- License: {entry.license}",
    ]
    if entry.reverse:
        lines.append(f"- Reverse direction: `{entry.reverse}`")
    if entry.uses_batchnorm:
        lines.append("- BatchNorm uses each photo's own statistics (as the official results)")
    return "\n".join(lines)


def error_markdown(message: str, subject: str = "") -> str:
    """A failure for the status area: a headline, what to do first (then the other steps),
    and what was tried, folded in a <details> block."""
    ex = explain(message)
    offline = any("no network" in d for d in ex.details)
    head = (f"{subject}: " if subject else "") + ex.headline + (" (no network)" if offline else "")
    lines = [f"**⚠️ {md(head)}**"]
    if ex.steps:
        lines.append(f"**What to do:** {md(ex.steps[0])}")
        lines += [f"- or: {md(step)}" for step in ex.steps[1:]]
    details = "".join(f"<li>{html.escape(d)}</li>" for d in ex.details)
    if details:  # one HTML block (no blank line inside), so Markdown leaves it as it is
        lines.append(f"<details><summary>Details: what was tried</summary><ul>{details}</ul>")
        lines[-1] += "</details>"
    return "\n\n".join(lines)


def result_summary(result: dict[str, Any], facts: dict[str, Any]) -> str:
    """What made a result: model, size, time, device and plan, resolution, seed, downscale,
    round trip, weights. `result` is the app's record of it, `facts` how the run went."""
    (w, h), (ow, oh) = facts["size"], facts["original"]
    model_id = f" (`{result['model']}`)" if facts.get("catalog", True) else ""
    load = f" · model loaded in {facts['load_s']:.1f} s" if facts["load_s"] >= 0.05 else ""
    if result["resolution"] == "fast":
        how = f"Fast: computed at {facts['fast_size']} px, resized to the photo's size"
    elif facts.get("tiled"):
        how = "Full size: computed at the photo's size in overlapping tiles, statistics shared"
    else:
        how = "Full size: computed at the photo's size in one piece"
    seed = f" · seed {result['seed']}" if result["seed"] is not None else " · no seed"
    if facts.get("tiled") and result["seed"] is not None:
        seed = " · seed not applied (tiles run with dropout off)"
    lines = [
        f"**{md(result['label'])}**{model_id} · {w}×{h} px in **{facts['run_s']:.2f} s** on "
        f"`{facts['device']}` ({facts['plan']}){load}",
        how + seed,
    ]
    if (ow, oh) != (w, h) and result["resolution"] == "full":
        lines.append(
            f"Downscaled from {ow}×{oh} to {w}×{h} (the app's cap for full size: "
            f"{facts['max_full_mp']:g} MP, IMG2IMG_MAX_FULL_MP)."
        )
    elif (ow, oh) != (w, h):
        lines.append(
            f"Downscaled from {ow}×{oh} to {w}×{h} (Fast keeps outputs within "
            f"{facts['max_side']} px, IMG2IMG_MAX_SIDE; Full size keeps the photo's size)."
        )
    if result["round_trip"]:
        lines.append(f"Round trip: translated back with `{result['reverse']}` (below).")
    if facts.get("weights"):
        lines.append(f"Weights: {facts['weights']}.")
    return "\n\n".join(lines)


def architecture(config: dict[str, Any], parameters: int, multiple: int, dropout: bool) -> str:
    """A loaded generator as the checkpoint describes it (config read or inferred)."""
    settings = ", ".join(f"{k} {v}" for k, v in config.items() if k != "architecture")
    return (
        f"**{config['architecture']}** generator ({settings}) · {parameters / 1e6:.1f} M "
        f"parameters · sides padded to a multiple of {multiple} · dropout "
        + ("yes" if dropout else "no")
    )


def custom_card(custom: dict[str, Any] | None, max_mb: int) -> str:
    """ "Your own model": what to give before loading; its architecture once loaded."""
    if not custom:
        return (
            "**Your own model** · give a Hub repo id (`namespace/name`: our format, or a "
            "HugGAN-style `pytorch_model.bin`) or upload a checkpoint (.safetensors, .pth, "
            f".bin; up to {max_mb} MB), then press **Load my model**. It is read by the same "
            "strict loader as the catalog's models (it never runs code from a pickle)."
        )
    return f"**Your model** · {md(custom['name'])}\n- Architecture: {custom['arch']}"
