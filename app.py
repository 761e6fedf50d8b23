"""img2img: the Gradio app. UI only; the work is done by img2img.inference.Translator.

Run `python app.py` (http://127.0.0.1:7860) or deploy as a Hugging Face Space (the README's
front matter). Environment:
    IMG2IMG_DEFAULT_MODEL   model shown first (default pix2pix/night2day)
    IMG2IMG_MAX_SIDE        largest output side in pixels (default 1024); larger photos are
                            downscaled to it, and the status says so
    IMG2IMG_MAX_MODELS      generators kept in memory (default 4)
    IMG2IMG_CONCURRENCY     requests processed at once (default 2) / IMG2IMG_QUEUE_SIZE (16)
    IMG2IMG_EXAMPLES_DIR    example inputs (default examples/; its examples.json names the
                            model each one pre-selects)
    IMG2IMG_TMP_TTL         seconds uploads and results stay on disk (default 3600)
    IMG2IMG_ALLOW_CUSTOM    0 removes "Your own model" (a visitor's Hub repo or checkpoint)
    IMG2IMG_MAX_CHECKPOINT_MB  largest checkpoint a visitor may load (default 300)
plus the catalog's IMG2IMG_WEIGHTS_DIR, IMG2IMG_REPO_<ID>, IMG2IMG_HUB_NAMESPACE, HF_*.
On ZeroGPU (SPACES_ZERO_GPU=true) the default model and its reverse are put on cuda before
launch (so `spaces` packs them), each request is one @spaces.GPU call whose duration is
computed from its work, and torch.compile is refused (ZeroGPU does not support it).

Every request path meets the same caps (issue 10): photos at most MAX_UPLOAD bytes and
MAX_PIXELS, request bodies at most MAX_BODY (413 before Gradio reads them). The events that
run on the server are the API, the page's translations (Translate, ↩ back, examples; a
browser is an HTTP client too), "Load my model" (its own size cap) and a read-only refresh
of the availability marks; the picker, the direction switch and the "out of date" note run
in the browser and have nothing to call on the server.
"""

from __future__ import annotations

try:  # ZeroGPU: `spaces` must be imported before torch; elsewhere there is no GPU() to call
    import spaces
except ImportError:
    spaces = None

import base64  # noqa: E402
import binascii  # noqa: E402
import html  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
from PIL import Image  # noqa: E402

from img2img import Img2ImgError, describe  # noqa: E402
from img2img.catalog import get_entry, grouped, is_available, load_catalog, local_dir  # noqa: E402
from img2img.download import is_offline  # noqa: E402
from img2img.explain import explain  # noqa: E402
from img2img.serving import BodyCap, path_roots, public_message  # noqa: E402

ROOT = Path(__file__).resolve().parent
MAX_SIDE = int(os.environ.get("IMG2IMG_MAX_SIDE", 1024))
MAX_UPLOAD = 20 * 1024**2  # bytes: photos, however they come in (checkpoints: their own cap)
# Decoded-size cap handed to open_image: room for the 48-50 MP photos that fit MAX_UPLOAD, at
# most ~200 MB of RGBA per decode, and only IMG2IMG_CONCURRENCY decodes run at once.
MAX_PIXELS = 50_000_000
# Request bodies other than Gradio's multipart upload: a MAX_UPLOAD image as base64, plus room.
MAX_BODY = 4 * -(-MAX_UPLOAD // 3) + 64 * 1024
MAX_SEED = 2**32 - 1  # = img2img.inference.MAX_SEED (torch keeps 32 bits; torch-free here)
TOO_LARGE = f"Request too large: images are limited to {MAX_UPLOAD // 2**20} MB."
FAST_SIZE = 256
DEFAULT_MODEL = os.environ.get("IMG2IMG_DEFAULT_MODEL", "pix2pix/night2day")
EXAMPLES_DIR = Path(os.environ.get("IMG2IMG_EXAMPLES_DIR", ROOT / "examples"))
OUTPUT_DIR = Path(tempfile.gettempdir()) / "img2img-outputs"
TMP_TTL_S = int(os.environ.get("IMG2IMG_TMP_TTL", 3600))  # uploads and results kept this long
ALLOW_CUSTOM = os.environ.get("IMG2IMG_ALLOW_CUSTOM", "1").strip() != "0"
MAX_CHECKPOINT_MB = int(os.environ.get("IMG2IMG_MAX_CHECKPOINT_MB", 300))
CHECKPOINT_TYPES = [".safetensors", ".pth", ".pt", ".bin"]
CUSTOM = "custom"  # the picker's value for "Your own model"
ZERO_GPU = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")
# Examples are cached at first use, per process: a restart with other weights starts afresh.
os.environ.setdefault("GRADIO_EXAMPLES_CACHE", tempfile.mkdtemp(prefix="img2img-examples-"))

# Gradio swaps in a per-request tracker; track_tqdm shows download bars while a model loads.
TRACK_PROGRESS = gr.Progress(track_tqdm=True)
_translator = None
_translator_lock = threading.Lock()


def translator():
    """The app's Translator, made on first use: torch (~2 s to import) loads after the page
    is served (`python app.py` warms it up right after launch), not before."""
    global _translator
    with _translator_lock:
        if _translator is None:
            from img2img.execution import auto_plan, without_compile
            from img2img.inference import Translator, default_device

            device = default_device()
            plan = auto_plan(device)
            if ZERO_GPU and plan.compile:  # HF docs: ZeroGPU does not support torch.compile
                print("* IMG2IMG_COMPILE=1 refused: ZeroGPU does not support torch.compile")
                plan = without_compile(plan)
            max_models = int(os.environ.get("IMG2IMG_MAX_MODELS", 4))
            _translator = Translator(device=device, plan=plan, max_models=max_models)
        return _translator


def _too_big(size: int) -> gr.Error:
    return gr.Error(
        f"The photo is {size / 2**20:.1f} MB, over the {MAX_UPLOAD / 2**20:.0f} MB upload limit."
    )


def _raw_upload(payload):
    """Image preprocess that hands the upload to our decoder untouched.

    Stock gr.Image opens every upload with PIL before the event function runs, so a corrupt
    file or a decompression bomb becomes an opaque "could not preprocess" error. We return
    the uploaded file's path (or the bytes of a webcam/clipboard data URL) and let
    img2img.processing.open_image decode it, with its size cap and precise messages.
    The byte cap holds for every way in, checked before anything is decoded: Gradio's upload
    route enforces max_file_size, but an inline data URL in the event's JSON, or a URL that
    Gradio fetches for the caller, would not meet it.
    """
    if payload is None:
        return None
    if payload.url and payload.url.startswith("data:"):
        header, _, encoded = payload.url.partition(",")
        if len(encoded) * 3 // 4 > MAX_UPLOAD:  # base64: 4 characters per 3 bytes
            raise _too_big(len(encoded) * 3 // 4)
        if not header.endswith(";base64"):
            raise gr.Error("An inline image must be a base64 data URL.")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as e:
            raise gr.Error("The inline image is not valid base64.") from e
    if payload.path and os.path.isfile(payload.path):
        if (size := os.path.getsize(payload.path)) > MAX_UPLOAD:
            raise _too_big(size)
    return payload.path


def _seed_as_sent(payload):
    """Seed preprocess: the value as sent, so that _seed() gives the one clear message
    (stock gr.Number fails on text, and on huge numbers only at torch.manual_seed)."""
    return payload


def raw_image(**kwargs) -> gr.Image:
    component = gr.Image(**kwargs)
    # An instance override, not a subclass: Gradio writes a .pyi stub beside the module of
    # every Component subclass, which would fail in a read-only app directory.
    component.preprocess = _raw_upload
    return component


def seed_number(value: int, **kwargs) -> gr.Number:
    component = gr.Number(value, precision=0, **kwargs)
    component.preprocess = _seed_as_sent  # an instance override, as in raw_image
    return component


# ---------------------------------------------------------------------------- catalog view

CUSTOM_LABEL = "★ Your own model (a Hub repo or a checkpoint file)"


def _availability(entry, live: bool = True) -> tuple[str, str]:
    """(state, source) from hub.availability: file checks only. hub imports torch, so the
    page is first built with `live=False` (published or not) and refreshed on load."""
    if not live:
        published = is_available(entry)
        source = entry.sources[0].describe() if entry.sources else ""
        return ("download" if published else "unpublished"), source
    from img2img.hub import availability

    found = availability(entry)
    source = describe.short_path(found.source, ROOT) if found.state == "local" else found.source
    return found.state, source


def model_choices(live: bool = True) -> list[tuple[str, str]]:
    """(label, id) pairs for the picker: by task, ready models first within each task, then
    those that download on first use, then the unpublished ones; "Your own model" last."""
    groups = grouped()
    states = {e.id: _availability(e, live)[0] for es in groups.values() for e in es}
    choices = describe.picker(groups, states, is_offline(), marks=live)
    return choices + ([(CUSTOM_LABEL, CUSTOM)] if ALLOW_CUSTOM else [])


def weights_line(entry, live: bool = True) -> str:
    """Where this model's weights come from right now (the source that will be, or was, used)."""
    state, source = _availability(entry, live)
    if not live:
        return describe.md(source) if source else f"set `{entry.env_var}`"
    loaded = _translator is not None and _translator.is_loaded(entry.id)
    return describe.weights_line(entry, state, source, loaded, is_offline())


def model_card(model_id: str, live: bool = True) -> str:
    if model_id == CUSTOM:
        return ""  # the "Your own model" box says what it holds
    entry = get_entry(model_id)
    return describe.model_card(entry, weights_line(entry, live))


def _go_button(model_id: str, live: bool = True) -> dict:
    runnable = model_id == CUSTOM or _availability(get_entry(model_id), live)[0] != "unpublished"
    return {"value": "Translate" if runnable else "Not yet published", "interactive": runnable}


def model_views(live: bool = True) -> dict[str, dict]:
    """Per model, what the page shows when it is picked: its card and the Translate button.
    The page gets them at build time (no marks), then from `refresh`."""
    ids = [*load_catalog(), CUSTOM] if ALLOW_CUSTOM else list(load_catalog())
    return {i: {"card": model_card(i, live), "go": _go_button(i, live)} for i in ids}


def refresh(model_id: str):
    """Read-only, on page load and after each translation: the picker's availability marks
    (ready / downloads / offline / unpublished), and the views of the cards."""
    views = model_views()
    if model_id not in views:  # a raw client's value: refresh the marks, nothing else
        return gr.update(choices=model_choices()), views, gr.update(), gr.update()
    view = views[model_id]
    return gr.update(choices=model_choices()), views, view["card"], gr.update(**view["go"])


def _picker_js() -> tuple[str, str]:
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


def _stale_js() -> str:
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


# ---------------------------------------------------------------------------- messages


def _path_roots() -> list[tuple[str, str]]:
    """Server folders an error message may name, each with the placeholder sent instead."""
    from huggingface_hub import constants

    from img2img.catalog import weights_dir
    from img2img.download import cache_dir

    return path_roots(
        {
            "<weights>": weights_dir(),
            "<cache>": cache_dir(),
            "<hf-cache>": Path(constants.HF_HUB_CACHE),
            "<hf-home>": Path(constants.HF_HOME),
            "<uploads>": Path(gr.utils.get_upload_folder()),
            "<outputs>": OUTPUT_DIR,
            "<app>": ROOT,
            "<tmp>": Path(tempfile.gettempdir()),
            "~": Path.home(),
        }
    )


def _public(text: str) -> str:
    """`text` without absolute server paths: it goes to visitors (the log keeps all)."""
    return public_message(text, _path_roots())


def _failure_text(error: BaseException) -> str:
    if isinstance(error, gr.Error):
        return _public(error.message)
    if isinstance(error, Img2ImgError):
        return _public(str(error))
    return "out of memory. What you can do: choose Fast · 256 px; or use a smaller photo"


def _seed(value, none_below_zero: bool) -> int | None:
    """The seed as an int in 0 .. MAX_SEED (negative: None, where the API allows it)."""
    if isinstance(value, str):  # a client may send the number as text
        try:
            value = float(value)
        except ValueError:
            pass
    if value is None and none_below_zero:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and value == value and abs(value) != float("inf") and value == int(value):
        seed = int(value)
        if seed < 0 and none_below_zero:
            return None
        if 0 <= seed <= MAX_SEED:
            return seed
    low = "-1 (none) or 0" if none_below_zero else "0"
    raise gr.Error(f"The seed must be a whole number from {low} to 2^32 - 1 ({MAX_SEED}).")


def _failures() -> tuple[type[BaseException], ...]:
    import torch

    return (Img2ImgError, gr.Error, torch.OutOfMemoryError)


def _as_dict(value) -> dict | None:
    """A gr.State value as a dict: cached examples hand it back as its JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) and value else None


# ---------------------------------------------------------------------------- translation


def _decode(upload) -> tuple[Image.Image, tuple[int, int]]:
    """The photo, downscaled to MAX_SIDE when larger, and its size as uploaded."""
    if upload is None:
        raise gr.Error("Upload a photo first (drop a file, paste, or use the webcam).")
    from img2img.processing import open_image, working_size

    img = open_image(upload, max_pixels=MAX_PIXELS)
    original = img.size
    if max(img.size) > MAX_SIDE:  # outputs never exceed MAX_SIDE: keep responses light
        img = img.resize(working_size(img.size, MAX_SIDE), Image.LANCZOS)
    return img, original


def _load(key: str, progress) -> float:
    """Load (downloading if needed) and return the seconds it took (0 when cached)."""
    t = translator()
    if t.is_loaded(key):
        return 0.0
    progress(0, desc=f"Loading {key if len(key) < 60 else Path(key).name} (first use)")
    start = time.perf_counter()
    t.load(key)
    return time.perf_counter() - start


def gpu_seconds(key: str, reverse: str | None, img: Image.Image, size: int | None, seed) -> int:
    """ZeroGPU seconds to reserve for one request, from its work instead of the 60 s default
    (a shorter reservation queues first): a fixed part for the copies to and from the GPU and
    cuDNN's tuning of a new shape, plus the megapixels each pass computes."""
    from img2img.processing import working_size

    w, h = working_size(img.size, size) if size else img.size
    passes = 2 if reverse else 1
    return min(60, math.ceil(10 + 5 * passes * w * h / 1e6))


def _gpu(fn):
    return spaces.GPU(duration=gpu_seconds)(fn) if spaces is not None else fn


@_gpu
def _run(key: str, reverse: str | None, img: Image.Image, size: int | None, seed):
    """One GPU reservation per request: the translation and its round trip together."""
    t = translator()
    out = t.translate(key, [img], size=size, seed=seed)[0]
    back = t.translate(reverse, [out], size=size, seed=seed)[0] if reverse else None
    return out, back


def _job(model_id: str, custom, round_trip: bool) -> tuple[str, str, str | None]:
    """(Translator key, label, reverse key) for the picker's value, refusing before any work
    what cannot run: an unpublished model, or your own model before it is loaded."""
    if model_id == CUSTOM:
        custom = _as_dict(custom)
        if not ALLOW_CUSTOM:
            raise gr.Error("Your own model is switched off on this server.")
        if not custom:
            raise gr.Error(
                "your own model is not loaded yet. What you can do: give a Hub repo id or "
                "upload a checkpoint file, then press Load my model"
            )
        return custom["key"], f"Your model ({custom['name']})", None  # key: its server path
    entry = get_entry(model_id)
    if _availability(entry)[0] == "unpublished":
        raise gr.Error(
            f"{entry.id} is not published yet. What you can do: train it with train.py and "
            f"set {entry.env_var}=namespace/repo; or put a checkpoint file in "
            f"{describe.short_path(str(local_dir(entry)), ROOT)}/"
        )
    return entry.id, entry.label, entry.reverse if round_trip else None


def _translate(upload, model_id, resolution, seed, round_trip, progress, custom=None):
    """Shared by the page, the examples and the API: returns (input, output, back, result)."""
    key, label, reverse = _job(model_id, custom, round_trip)
    img, original = _decode(upload)
    load_s = _load(key, progress) + (_load(reverse, progress) if reverse else 0.0)
    size = FAST_SIZE if resolution == "fast" else None
    progress(0.5, desc="Translating")
    start = time.perf_counter()
    out, back = _run(key, reverse, img, size, seed)
    t = translator()
    result = {
        "model": model_id,
        "custom": _as_dict(custom)["id"] if model_id == CUSTOM else None,
        "label": label,
        "resolution": resolution,
        "seed": seed,
        "round_trip": bool(round_trip),
        "input": upload if isinstance(upload, str) else None,  # as the page knows it
        "reverse": None if model_id == CUSTOM else get_entry(model_id).reverse,
    }
    facts = dict(size=out.size, original=original, run_s=time.perf_counter() - start)
    facts.update(load_s=load_s, device=str(t.device), plan=t.plan.describe())
    facts.update(fast_size=FAST_SIZE, max_side=MAX_SIDE, catalog=model_id != CUSTOM)
    facts["weights"] = "" if model_id == CUSTOM else weights_line(get_entry(model_id))
    result["summary"] = describe.result_summary(result, facts)
    return img, out, back, result


def _save_png(img: Image.Image, name: str = "img2img") -> str:
    """Write the result for the download button; prune results older than TMP_TTL_S."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in OUTPUT_DIR.glob("*/*.png"):
        try:  # a concurrent request may be pruning the same file
            if now - old.stat().st_mtime > TMP_TTL_S:
                old.unlink()
                old.parent.rmdir()
        except OSError:
            pass
    folder = Path(tempfile.mkdtemp(dir=OUTPUT_DIR))
    path = folder / f"{name}.png"
    img.save(path, format="PNG")
    return str(path)


SHOWN = ("input", "model", "custom", "resolution", "seed", "round_trip", "summary")


def _present(img, out, back, result) -> tuple:
    """The page's outputs for a result: slider, round trip, download, status, the result
    (kept on the server, for ↩), what the browser needs to mark it out of date, ↩."""
    name = "img2img-" + (result["model"].replace("/", "-") if result["model"] != CUSTOM else "own")
    try:
        result["output"] = download = _save_png(out, name)
    except OSError:  # e.g. the server's disk is full: show the result, skip the file
        result["output"] = download = None
        result["summary"] += "\n\nPNG download unavailable (server storage is full)."
    return (
        (img, out),
        gr.update(value=back, visible=back is not None),
        download,
        result["summary"],
        result,
        {k: result[k] for k in SHOWN},
        _back_button(result),
    )


def _back_button(result: dict | None):
    """↩ under a result that has a reverse model: it translates the result back."""
    reverse = result and result.get("output") and result.get("reverse")
    label = f"↩ Translate this result back ({get_entry(reverse).label})" if reverse else ""
    return gr.update(visible=bool(reverse), value=label)


def _failed(error: BaseException, subject: str) -> tuple:
    """A failure clears the result and its download; the message stays until the next run."""
    status = describe.error_markdown(_failure_text(error), subject)
    hidden = gr.update(value=None, visible=False)
    return None, hidden, None, status, None, None, gr.update(visible=False)


def translate_ui(
    upload,
    model_id,
    resolution,
    vary,
    seed,
    round_trip,
    custom=None,
    progress=TRACK_PROGRESS,
):
    seed = _seed(0 if seed is None else seed, none_below_zero=False) if vary else None
    try:
        return _present(
            *_translate(upload, model_id, resolution, seed, round_trip, progress, custom)
        )
    except _failures() as e:
        subject = "Your model" if model_id == CUSTOM else get_entry(model_id).label
        return _failed(e, subject)


def translate_back(result, resolution, vary, seed, progress=TRACK_PROGRESS):
    """↩ for a result: its output becomes the photo and goes through the reverse model. The
    result comes from the session on the server (a gr.State), never from the request."""
    result = _as_dict(result)
    if not result or not result.get("reverse") or not result.get("output"):
        return gr.update(), gr.update(), *_failed(gr.Error("translate a photo first"), "")
    photo, reverse = result["output"], result["reverse"]
    outputs = translate_ui(photo, reverse, resolution, vary, seed, False, None, progress)
    return photo, reverse, *outputs


def _no_progress(*args, **kwargs) -> None:
    pass


_example_failures: dict[str, str] = {}  # session -> status of its example that just failed


def example_ui(upload, model_id, request: gr.Request):
    """An example row, run once at its first use and then served from Gradio's example cache
    (for every visitor, until the app restarts). A failure raises, so that nothing is cached;
    its message waits here for `after_example` to put it in the status area."""
    _example_failures.pop(request.session_hash, None)
    try:
        core = _translate(upload, model_id, "fast", None, False, _no_progress)
    except _failures() as e:
        label = get_entry(model_id).label
        _example_failures[request.session_hash] = describe.error_markdown(_failure_text(e), label)
        headline = html.escape(explain(_failure_text(e)).headline)
        raise gr.Error(headline, title=label, print_exception=False) from e
    slider, _, download, _, result, shown, _ = _present(*core)
    result["summary"] += "\n\nAn example: computed at its first use, then cached."
    shown["summary"] = result["summary"]
    return slider, download, result["summary"], result, shown  # no gr.update: cached values


def after_example(result, request: gr.Request):
    """After an example row: its failure in the status area (the result cleared), else the
    round-trip image hidden and the ↩ button for the example's result."""
    failure = _example_failures.pop(request.session_hash, None)
    if failure:
        hidden = gr.update(value=None, visible=False)
        return None, None, failure, None, None, hidden, _back_button(None)
    same = gr.update()
    return same, same, same, same, same, gr.update(visible=False), _back_button(_as_dict(result))


# ---------------------------------------------------------------------------- your own model


def _checkpoint_path(repo: str | None, file: str | None, progress) -> tuple[str, str]:
    """(local path, name) of the visitor's checkpoint: the uploaded file, else the Hub repo."""
    if file:
        path = Path(file)
        if path.suffix.lower() not in CHECKPOINT_TYPES:
            raise gr.Error(f"{path.name} is not a checkpoint: use {', '.join(CHECKPOINT_TYPES)}")
        if path.stat().st_size > MAX_CHECKPOINT_MB * 10**6:
            raise gr.Error(
                f"{path.name} is over the limit of {MAX_CHECKPOINT_MB} MB set here "
                "(IMG2IMG_MAX_CHECKPOINT_MB)"
            )
        return str(path), path.name
    if not (repo or "").strip():
        raise gr.Error("give a Hub repo id (namespace/name) or upload a checkpoint file first")
    from img2img.hub import fetch_repo

    progress(0, desc=f"Downloading {repo.strip()[:80]}")
    return str(fetch_repo(repo, MAX_CHECKPOINT_MB * 10**6)), repo.strip()


def load_custom(repo, file, progress=TRACK_PROGRESS):
    """Load my model: the visitor's checkpoint through load_model's strict, pickle-safe path."""
    try:
        path, name = _checkpoint_path(repo, file, progress)
        model = translator().load(path)
    except _failures() as e:
        status = describe.error_markdown(_failure_text(e), "Your model")
        return status, None, None, gr.update(visible=False)
    from img2img.inference import has_dropout, size_multiple

    size = sum(p.numel() for p in model.parameters())
    dropout = has_dropout(model)
    arch = describe.architecture(model.config, size, size_multiple(model), dropout)
    token = f"{name}#{time.time_ns()}"  # a new load is a new model, even from the same file
    custom = {"key": path, "name": name, "arch": arch, "dropout": dropout, "id": token}
    mine = {"id": token, "dropout": dropout}  # for the browser: no server path
    card = describe.custom_card(custom, MAX_CHECKPOINT_MB)
    return card, custom, mine, gr.update(visible=dropout)


# ---------------------------------------------------------------------------- the API


def translate(image, model_id, resolution="fast", seed=-1, progress=TRACK_PROGRESS):
    """Translate a photo with a catalog model; returns a PNG of the photo's size (up to
    IMG2IMG_MAX_SIDE px on the long side, 1024 by default) and aspect ratio.

    Args:
        image: a photo (PNG, JPEG, WebP; alpha kept), uploaded or a data URL: <= 20 MB, 50 MP.
        model_id: a catalog id such as cyclegan/horse2zebra (`img2img models` lists them).
        resolution: "fast" (computed at 256 px, resized back) or "full" (at the photo's size).
        seed: -1: deterministic; 0 .. 4294967295 (2^32 - 1): a dropout variation (pix2pix).

    Returns:
        The translated image, PNG.
    """
    if model_id == CUSTOM:
        raise gr.Error("your own model is for the page only: the API translates catalog ids")
    seed = _seed(seed, none_below_zero=True)
    try:
        return _translate(image, model_id, resolution, seed, False, progress)[1]
    except Img2ImgError as e:
        raise gr.Error(_public(str(e))) from e
    except _failures()[2:] as e:
        raise gr.Error("Out of memory: try the fast 256 px resolution.") from e


def _document_api(fn, inputs: list, output) -> None:
    """Parameter descriptions in /gradio_api/info and view_api(): Gradio reads them from each
    input component's schema (additional_description), not from the docstring, so the
    docstring's Args are copied there; the output gets its Returns line."""
    from gradio.utils import get_function_description

    _, params, returns = get_function_description(fn)
    for component, text in zip(inputs, params.values(), strict=False):
        schema = {**component.api_info_as_input(), "additional_description": text}
        component.api_info_as_input = lambda schema=schema: schema
    schema = {**output.api_info_as_output(), "description": " ".join(returns)}
    output.api_info_as_output = lambda: schema


# ---------------------------------------------------------------------------- layout

TAGLINE = (
    "# img2img\nTranslate a photo with the original **pix2pix** and **CycleGAN** generators: "
    "night → day, satellite ↔ map, labels → facade, horse ↔ zebra, summer ↔ winter, photo ↔ "
    f"painting. Results keep your photo's aspect ratio and size, up to {MAX_SIDE} px on the "
    "long side (a larger photo is downscaled, and the status says so)."
)
# On a phone the result is below the controls: bring it into view once it is there.
SHOW_RESULT = """() => { if (window.innerWidth < 768)
    document.querySelector('#slider')?.scrollIntoView({behavior: 'smooth', block: 'start'}); }"""
CSS = """
#tagline h1 { margin: 0 0 0.2em 0; }
#tagline p { margin: 0; }
#status details { margin-top: 0.3em; }
"""


def example_rows(catalog: dict) -> list[list[str]]:
    """[file, model] rows: from examples.json (the model each pre-selects), else every image
    in the folder with the default model."""
    record = EXAMPLES_DIR / "examples.json"
    if record.is_file():
        rows = json.loads(record.read_text(encoding="utf-8"))
        return [
            [str(EXAMPLES_DIR / r["file"]), r["model"]]
            for r in rows
            if r["model"] in catalog and (EXAMPLES_DIR / r["file"]).is_file()
        ]
    suffixes = {".png", ".jpg", ".jpeg", ".webp"}
    files = sorted(EXAMPLES_DIR.glob("*")) if EXAMPLES_DIR.is_dir() else []
    return [[str(p), DEFAULT_MODEL] for p in files if p.suffix.lower() in suffixes]


def _controls_column(default: str) -> dict:
    """The left column: photo, model (and your own model), resolution + Translate, options."""
    c = {}
    c["image"] = raw_image(
        label="Photo",
        sources=["upload", "webcam", "clipboard"],
        type="filepath",
        image_mode=None,
        format="png",
        height=300,
        elem_id="input-image",
    )
    c["model"] = gr.Dropdown(
        model_choices(live=False), value=default, label="Model", elem_id="model"
    )
    with gr.Group(visible=False, elem_id="custom-box") as c["custom_box"]:
        if ALLOW_CUSTOM:  # else an empty, hidden group: nothing of it reaches the page
            c.update(_custom_inputs())
    resolutions = [("Fast · 256 px", "fast"), (f"Large · up to {MAX_SIDE} px", "full")]
    with gr.Row(equal_height=True):
        c["resolution"] = gr.Radio(resolutions, value="fast", label="Resolution", scale=2)
        c["go"] = gr.Button("Translate", variant="primary", elem_id="go", scale=1, min_width=120)
    pair = get_entry(default).reverse is not None
    with gr.Row():
        c["swap"] = gr.Button("⇄ Reverse direction", size="sm", visible=pair)
        c["round_trip"] = gr.Checkbox(label="Round trip A → B → A", visible=pair)
    with gr.Row(visible=get_entry(default).family == "pix2pix") as c["variation"]:
        c["vary"] = gr.Checkbox(label="Dropout variation (pix2pix)")
        c["seed"] = seed_number(0, minimum=0, maximum=MAX_SEED, label="Seed")
    c["card"] = gr.Markdown(model_card(default, live=False), elem_id="model-card")
    return c


def _custom_inputs() -> dict:
    """Your own model: a Hub repo id or a checkpoint file, the Load button, what it found."""
    return dict(
        repo=gr.Textbox(label="Hub repo id", placeholder="namespace/name[@revision]"),
        checkpoint=gr.File(
            label=f"…or a checkpoint file (up to {MAX_CHECKPOINT_MB} MB)",
            file_types=CHECKPOINT_TYPES,
            type="filepath",
            height=90,
            elem_id="checkpoint",
        ),
        load=gr.Button("Load my model", size="sm", elem_id="load-custom"),
        custom_info=gr.Markdown(
            describe.custom_card(None, MAX_CHECKPOINT_MB), elem_id="custom-info"
        ),
    )


def _result_column() -> dict:
    c = {}
    c["slider"] = gr.ImageSlider(
        label="Before / after",
        format="png",
        type="filepath",  # an input too: ↩ translates the shown result back
        height=360,
        interactive=False,
        elem_id="slider",
    )
    with gr.Row():
        c["download"] = gr.DownloadButton("Download PNG", elem_id="download", size="sm")
        c["back_button"] = gr.Button(visible=False, size="sm", elem_id="translate-back")
    c["status"] = gr.Markdown(elem_id="status")
    c["back"] = gr.Image(
        label="Round trip: back to A",
        format="png",
        visible=False,
        interactive=False,
        height=240,
        elem_id="round-trip",
    )
    return c


def _wire(c: dict, examples: list) -> None:
    """Every event of the page (all private: the API is /translate alone). The picker, the
    direction switch and the out-of-date note run in the browser (js, no server function)."""
    private = dict(api_visibility="private")
    quiet = dict(api_visibility="private", show_progress="hidden")
    result_outputs = [c[k] for k in ("slider", "back", "download", "status", "result", "shown")]
    result_outputs.append(c["back_button"])
    refreshed = dict(fn=refresh, inputs=c["model"], **quiet)
    refreshed["outputs"] = [c["model"], c["views"], c["card"], c["go"]]
    c["demo"].load(**refreshed)
    on_change, on_swap = _picker_js()
    c["model"].change(
        None,
        [c["model"], c["views"], c["mine"]],
        [c["card"], c["swap"], c["round_trip"], c["variation"], c["go"], c["custom_box"]],
        js=on_change,
    )
    controls = [c[k] for k in ("image", "model", "resolution", "vary", "seed", "round_trip")]
    stale = dict(fn=None, inputs=[*controls, c["mine"], c["shown"]], outputs=c["status"])
    stale["js"] = _stale_js()
    gr.on([x.input for x in controls], **stale)
    c["swap"].click(None, c["model"], c["model"], js=on_swap).then(**stale)
    run = c["go"].click(translate_ui, [*controls, c["custom"]], result_outputs, **private)
    back_inputs = [c["result"], c["resolution"], c["vary"], c["seed"]]
    again = c["back_button"].click(
        translate_back, back_inputs, [c["image"], c["model"], *result_outputs], **private
    )
    for event in (run, again):
        event.then(**refreshed)
        event.then(None, js=SHOW_RESULT)
    if ALLOW_CUSTOM:
        c["load"].click(
            load_custom,
            [c["repo"], c["checkpoint"]],
            [c["custom_info"], c["custom"], c["mine"], c["variation"]],
            **private,
        ).then(**stale)
    if examples:
        shown = [c[k] for k in ("slider", "download", "status", "result", "shown")]
        rows = gr.Examples(
            examples,
            inputs=[c["image"], c["model"]],
            outputs=shown,
            fn=example_ui,
            cache_examples=True,
            cache_mode="lazy",  # nothing runs at start-up: no weights are needed to launch
            label="Examples (each picks a model; see examples/LICENSES.md)",
            examples_per_page=10,
            elem_id="examples",
            api_visibility="private",
        )
        after = dict(fn=after_example, inputs=c["result"], **quiet)
        after["outputs"] = [*shown, c["back"], c["back_button"]]
        for done in (rows.load_input_event.success, rows.load_input_event.failure):
            done(**after).then(**refreshed).then(**stale)  # .then alone skips failures


def build_demo() -> gr.Blocks:
    catalog = load_catalog()
    default = DEFAULT_MODEL if DEFAULT_MODEL in catalog else next(iter(catalog))
    cleanup = (max(1, TMP_TTL_S // 4), TMP_TTL_S)  # Gradio prunes its upload/result cache
    with gr.Blocks(title="img2img · pix2pix & CycleGAN", delete_cache=cleanup) as demo:
        gr.Markdown(TAGLINE, elem_id="tagline")
        with gr.Row(equal_height=False):
            with gr.Column():
                c = _controls_column(default)
            with gr.Column():
                c.update(_result_column())
                c["demo"], c["result"], c["custom"] = demo, gr.State(None), gr.State(None)
                # What the browser's own events read: model views, your model, the result.
                c["views"] = gr.JSON(model_views(live=False), visible=False)
                c["mine"], c["shown"] = gr.JSON(None, visible=False), gr.JSON(None, visible=False)
                _wire(c, example_rows(catalog))  # the examples render here, under the result
        # The documented API: (image, model_id[, resolution, seed]) -> PNG.
        api_resolution = gr.Radio(["fast", "full"], value="fast", label="Resolution", visible=False)
        api_seed = seed_number(-1, label="Seed (-1: none; 0 .. 2^32 - 1)", visible=False)
        api_out = gr.Image(format="png", type="pil", label="Translated image", visible=False)
        api_inputs = [c["image"], c["model"], api_resolution, api_seed]
        _document_api(translate, api_inputs, api_out)
        gr.Button(visible=False).click(translate, api_inputs, api_out, api_name="translate")
    concurrency = int(os.environ.get("IMG2IMG_CONCURRENCY", 2))
    return demo.queue(
        default_concurrency_limit=concurrency,
        max_size=int(os.environ.get("IMG2IMG_QUEUE_SIZE", 16)),
    )


def launch_kwargs() -> dict:
    """No file access beyond Gradio's own: block the repo, weights and caches explicitly.
    Uploads may be as large as a checkpoint when visitors can load their own model; photos
    keep their own cap (_raw_upload), and other request bodies are capped at MAX_BODY."""
    from huggingface_hub import constants
    from starlette.middleware import Middleware

    blocked = [ROOT, Path(constants.HF_HOME), Path.home() / ".cache", Path("/etc")]
    upload = max(MAX_UPLOAD, MAX_CHECKPOINT_MB * 10**6) if ALLOW_CUSTOM else MAX_UPLOAD
    cap = Middleware(BodyCap, limit=MAX_BODY, message=TOO_LARGE)
    return dict(
        max_file_size=upload,
        blocked_paths=[str(p) for p in blocked],
        show_error=False,
        theme=gr.themes.Soft(),
        css=CSS,
        app_kwargs={"middleware": [cap]},
    )


def preload_defaults() -> None:
    """ZeroGPU: the default model and its reverse on cuda before launch, for `spaces` to pack."""
    entry = get_entry(DEFAULT_MODEL)
    for key in filter(None, (entry.id, entry.reverse)):
        try:
            translator().load(key)
            print(f"* Preloaded {key} on {translator().device}", flush=True)
        except Img2ImgError as e:
            print(f"* {key} not preloaded: {e}", flush=True)


demo = build_demo()

if __name__ == "__main__":
    if ZERO_GPU:
        preload_defaults()
    # Serve the page first, then load torch and pick the device while the visitor uploads.
    demo.launch(prevent_thread_lock=True, **launch_kwargs())
    ready = translator()
    print(f"* Inference ready on {ready.device} ({ready.plan.describe()})", flush=True)
    demo.block_thread()
