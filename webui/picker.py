"""The model picker: availability marks, model cards, the Translate button, and the browser
code that switches them (no server function behind the picker, the direction switch or the
"out of date" note: the server's events are translations and read-only refreshes)."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from img2img.checkpoints.catalog import (
    custom_folder,
    custom_ids,
    get_entry,
    grouped,
    is_available,
    load_catalog,
    local_dir,
)

from . import describe
from .messages import public
from .runtime import ALLOW_CUSTOM, CUSTOM, ROOT, engine, is_loaded

CUSTOM_LABEL = "★ Your own model (a Hub repo or a checkpoint file)"
Status = tuple[str, str, str, str]  # (state, source, brief, detail): hub.availability's


def shown_path(path: str) -> str:
    """A server path as the page shows it: relative to the app's folder when inside it, else
    through messages.public (the weights folder by the name the deployer gave it)."""
    short = describe.short_path(path, ROOT)
    return public(short) if Path(short).is_absolute() else short


def availability(entry, live: bool = True) -> Status:
    """(state, source, brief, detail) from hub.availability: file checks, a local file's
    header, the last probe. hub imports torch, so the page is first built with `live=False`
    (published or not) and refreshed on load."""
    if not live:
        published = is_available(entry)
        source = entry.sources[0].describe() if entry.sources else ""
        return ("download" if published else "unpublished"), source, "", ""
    found = engine().availability(entry)
    source = shown_path(found.source) if found.state in ("local", "unusable") else found.source
    return found.state, source, found.brief, public(found.detail)


Found = dict[str, Status]  # model id -> availability(entry)


def _found(live: bool) -> Found:
    """Every catalog model's availability, each looked up once (file checks per model)."""
    return {e.id: availability(e, live) for e in load_catalog().values()}


def stored(live: bool = True) -> list[dict]:
    """Your own models kept in <weights>/custom/<name>/: id, name, state ("stored" or
    "unusable"), brief, detail and folder as the page shows them (live: what each holds)."""
    if not live:
        return [
            dict(id=i, name=i.split("/", 1)[1], state="stored", brief="", detail="", folder="")
            for i in custom_ids()
        ]
    out = []
    for model in engine().stored_models():
        v = model.verdict
        state, brief = ("stored", engine().short_name(v.config)) if v.ok else ("unusable", v.brief)
        detail = public(v.what if v.ok else v.problem)
        out.append(dict(id=model.id, name=model.name, state=state, brief=brief, detail=detail))
        out[-1]["folder"] = shown_path(str(model.folder))
    return out


def is_stored(model_id: str) -> bool:
    """Whether the picker's value is one of your models kept on disk (custom/<name>)."""
    return bool(model_id) and custom_folder(model_id) is not None


def label_of(model_id: str) -> str:
    """The name a result or an error gives the picker's value."""
    if model_id == CUSTOM:
        return "Your model"
    if is_stored(model_id):
        return f"Your model {model_id.split('/', 1)[1]}"
    entry = load_catalog().get(model_id)  # a value typed into the picker may be anything
    return entry.label if entry else str(model_id)


def reverse_of(model_id: str) -> str | None:
    """The catalog's reverse model of the picker's value (None: none, or not a catalog id)."""
    return get_entry(model_id).reverse if model_id in load_catalog() else None


def model_choices(
    live: bool = True, found: Found | None = None, mine: list[dict] | None = None
) -> list[tuple[str, str]]:
    """(label, id) pairs for the picker, in one order (describe.ORDER): your models kept on
    disk, ready catalog models, those that download on first use, then those that cannot run
    here; "Your own model" (a Hub repo or an upload) last."""
    found = found or _found(live)
    mine = stored(live) if mine is None else mine
    rows = [(m["id"], m["name"], m["state"], m["brief"]) for m in mine]
    choices = describe.picker(grouped(), found, marks=live, stored=rows)
    return choices + ([(CUSTOM_LABEL, CUSTOM)] if ALLOW_CUSTOM else [])


def weights_line(entry, live: bool = True, found: Status | None = None) -> str:
    """Where this model's weights come from right now (the source that will be, or was, used)."""
    status = found or availability(entry, live)
    if not live:
        return describe.md(status[1]) if status[1] else f"set `{entry.env_var}`"
    return describe.weights_line(entry, status, is_loaded(entry.id))


def weights_text(model_id: str) -> str:
    """A result's "Weights:" line: the catalog model's source, or your model's file."""
    if model_id == CUSTOM:
        return ""
    if is_stored(model_id):
        mine = next((m for m in stored() if m["id"] == model_id), None)
        return f"your model in `{mine['folder']}`: {mine['detail']}" if mine else ""
    return weights_line(get_entry(model_id))


def model_card(model_id: str, live: bool = True, found: Status | None = None) -> str:
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
            f"{shown_path(str(local_dir(entry)))}/"
        )


def _go_button(state: str | None) -> dict:
    runnable = state != "unpublished"  # None: your own model
    return {"value": "Translate" if runnable else "Not yet published", "interactive": runnable}


def model_views(
    live: bool = True, found: Found | None = None, mine: list[dict] | None = None
) -> dict[str, dict]:
    """Per model, what the page shows when it is picked: its card and the Translate button.
    The page gets them at build time (no marks), then from `refresh`."""
    found = found or _found(live)
    views = {i: {"card": model_card(i, live, f), "go": _go_button(f[0])} for i, f in found.items()}
    for m in stored(live) if mine is None else mine:
        card = describe.stored_card(m["id"], m["folder"], m["state"], m["detail"])
        views[m["id"]] = {"card": card, "go": _go_button(None)}
    if ALLOW_CUSTOM:
        views[CUSTOM] = {"card": model_card(CUSTOM), "go": _go_button(None)}
    return views


def _examples_note(rows: list, found: Found) -> str:
    """The examples whose catalog model cannot run here, each with its mark."""
    blocked = []
    for _, model_id in rows:
        state, _, brief, _ = found.get(model_id, ("local", "", "", ""))
        if state in ("offline", "unusable", "unpublished"):
            blocked.append((get_entry(model_id).label, describe.mark(state, brief)))
    return describe.examples_note(blocked)


def refresh_event(model, views, card, go, pickers=(), examples=None) -> dict:
    """The read-only refresh (on page load and after each translation), as an event's
    fn / inputs / outputs: the availability marks (ready / downloads / no network / unusable /
    unpublished) of the main picker `model` and of every other picker in `pickers` (another
    tab's, e.g. the Video tab's), after a probe of the download servers (hub.probe_sources,
    remembered a minute); the views of the cards; the picked model's card and Translate
    button; and, with `examples` = (note, rows), the note naming examples that cannot run."""
    pickers = list(pickers)
    note, rows = examples if examples else (None, [])

    def refresh(model_id: str):
        engine().probe_sources(list(load_catalog().values()))
        found, mine = _found(live=True), stored(live=True)
        views = model_views(found=found, mine=mine)
        choices = model_choices(found=found, mine=mine)
        others = [gr.update(choices=choices) for _ in pickers]
        others += [_examples_note(rows, found)] if note is not None else []
        if model_id not in views:  # a raw client's value: refresh the marks, nothing else
            return gr.update(choices=choices), views, gr.update(), gr.update(), *others
        view = views[model_id]
        return gr.update(choices=choices), views, view["card"], gr.update(**view["go"]), *others

    outputs = [model, views, card, go, *pickers, *([note] if note is not None else [])]
    return dict(fn=refresh, inputs=model, outputs=outputs)


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


def picked_js(picker: str) -> str:
    """Browser code that gives the model picker `picker`'s whole label (marks included) as it
    shows it, once drawn: for the line under it that phones see (#model-picked, CSS)."""
    query = json.dumps(f"{picker} input")
    return f"""() => new Promise((done) => requestAnimationFrame(() =>
        done(document.querySelector({query})?.value || '')))"""
