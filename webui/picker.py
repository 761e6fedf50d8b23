"""The model picker: availability marks, model cards, the Translate button, and the browser
code that switches them (no server function behind the picker, the direction switch or the
"out of date" note: the server's events are translations and read-only refreshes)."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from img2img.checkpoints.catalog import get_entry, grouped, is_available, load_catalog, local_dir
from img2img.checkpoints.download import is_offline

from . import describe
from .messages import public
from .runtime import ALLOW_CUSTOM, CUSTOM, ROOT, engine, is_loaded

CUSTOM_LABEL = "★ Your own model (a Hub repo or a checkpoint file)"


def availability(entry, live: bool = True) -> tuple[str, str]:
    """(state, source) from hub.availability: file checks only. hub imports torch, so the
    page is first built with `live=False` (published or not) and refreshed on load."""
    if not live:
        published = is_available(entry)
        source = entry.sources[0].describe() if entry.sources else ""
        return ("download" if published else "unpublished"), source
    found = engine().availability(entry)
    source = found.source
    if found.state == "local":  # relative to the app's folder, else with no server path
        source = describe.short_path(source, ROOT)
        source = public(source) if Path(source).is_absolute() else source
    return found.state, source


Found = dict[str, tuple[str, str]]  # model id -> availability(entry)


def _found(live: bool) -> Found:
    """Every catalog model's availability, each looked up once (file checks per model)."""
    return {e.id: availability(e, live) for e in load_catalog().values()}


def model_choices(live: bool = True, found: Found | None = None) -> list[tuple[str, str]]:
    """(label, id) pairs for the picker: by task, ready models first within each task, then
    those that download on first use, then the unpublished ones; "Your own model" last."""
    found = found or _found(live)
    states = {i: state for i, (state, _) in found.items()}
    choices = describe.picker(grouped(), states, is_offline(), marks=live)
    return choices + ([(CUSTOM_LABEL, CUSTOM)] if ALLOW_CUSTOM else [])


def weights_line(entry, live: bool = True, found: tuple[str, str] | None = None) -> str:
    """Where this model's weights come from right now (the source that will be, or was, used)."""
    state, source = found or availability(entry, live)
    if not live:
        return describe.md(source) if source else f"set `{entry.env_var}`"
    loaded = is_loaded(entry.id)
    return describe.weights_line(entry, state, source, loaded, is_offline())


def model_card(model_id: str, live: bool = True, found: tuple[str, str] | None = None) -> str:
    if model_id == CUSTOM:
        return ""  # the "Your own model" box says what it holds
    entry = get_entry(model_id)
    return describe.model_card(entry, weights_line(entry, live, found))


def refuse_unpublished(entry) -> None:
    """gr.Error, before any work, for a model nobody has published yet, and what to do."""
    if availability(entry)[0] == "unpublished":
        raise gr.Error(
            f"{entry.id} is not published yet. What you can do: train it with train.py and "
            f"set {entry.env_var}=namespace/repo; or put a checkpoint file in "
            f"{describe.short_path(str(local_dir(entry)), ROOT)}/"
        )


def _go_button(state: str | None) -> dict:
    runnable = state != "unpublished"  # None: your own model
    return {"value": "Translate" if runnable else "Not yet published", "interactive": runnable}


def model_views(live: bool = True, found: Found | None = None) -> dict[str, dict]:
    """Per model, what the page shows when it is picked: its card and the Translate button.
    The page gets them at build time (no marks), then from `refresh`."""
    found = found or _found(live)
    views = {i: {"card": model_card(i, live, f), "go": _go_button(f[0])} for i, f in found.items()}
    if ALLOW_CUSTOM:
        views[CUSTOM] = {"card": model_card(CUSTOM), "go": _go_button(None)}
    return views


def refresh_event(model, views, card, go, pickers=()) -> dict:
    """The read-only refresh (on page load and after each translation), as an event's
    fn / inputs / outputs: the availability marks (ready / downloads / offline /
    unpublished) of the main picker `model` and of every catalog-only picker in `pickers`
    (another tab's, e.g. the Video tab's), the views of the cards, and the picked model's
    card and Translate button."""
    pickers = list(pickers)

    def refresh(model_id: str):
        found = _found(live=True)
        views, choices = model_views(found=found), model_choices(found=found)
        others = [gr.update(choices=catalog_only(choices)) for _ in pickers]
        if model_id not in views:  # a raw client's value: refresh the marks, nothing else
            return gr.update(choices=choices), views, gr.update(), gr.update(), *others
        view = views[model_id]
        return gr.update(choices=choices), views, view["card"], gr.update(**view["go"]), *others

    outputs = [model, views, card, go, *pickers]
    return dict(fn=refresh, inputs=model, outputs=outputs)


def catalog_only(choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(label, value) for label, value in choices if value != CUSTOM]


def picker_js() -> tuple[str, str]:
    """The picker's events, run in the browser: on model change (card, direction switch,
    round trip, dropout options, Translate button, your-own-model box) and on swap."""
    static = {
        e.id: {
            "pair": e.reverse is not None,
            "pix2pix": e.family == "pix2pix",
            "reverse": e.reverse,
        }
        for e in load_catalog().values()
    }
    table = json.dumps(static, ensure_ascii=True)
    change = f"""(id, views, mine) => {{
        const m = {table}[id] || {{}}, v = (views || {{}})[id];
        if (!v) return [];
        const show = (visible, rest) => ({{__type__: "update", visible, ...rest}});
        const dropout = id === "{CUSTOM}" ? !!(mine && mine.dropout) : !!m.pix2pix;
        return [v.card, show(!!m.pair), show(!!m.pair, {{value: false}}), show(dropout),
                {{__type__: "update", ...v.go}}, show(id === "{CUSTOM}")];
    }}"""
    swap = f"(id) => ({table}[id] || {{}}).reverse || id"
    return change, swap


def stale_js() -> str:
    """After a control changes, in the browser: the shown result's summary, headed by what
    changed since it was made (nothing on show: the status, e.g. an error, stays)."""
    names = json.dumps(describe.RESULT_INPUTS, ensure_ascii=True)
    return f"""(image, model, resolution, vary, seed, round_trip, mine, shown) => {{
        if (!shown || !shown.summary) return {{__type__: "update"}};
        const now = {{
            input: image ? (image.path || image.url || null) : null, model, resolution,
            custom: model === "{CUSTOM}" && mine ? mine.id : null,
            seed: vary ? Number(seed || 0) : null, round_trip: !!round_trip,
        }};
        const same = (k) => (k === "input" && shown.input === null) ||
            JSON.stringify(shown[k] ?? null) === JSON.stringify(now[k] ?? null);
        const changed = Object.entries({names}).filter(([k]) => !same(k)).map(([, n]) => n);
        if (!changed.length) return shown.summary;
        const head = {json.dumps(describe.STALE_HEAD, ensure_ascii=True)};
        return head.replace("{{changed}}", changed.join(", ")) + shown.summary;
    }}"""
