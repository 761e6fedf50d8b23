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
"""

from __future__ import annotations

try:  # ZeroGPU: `spaces` must be imported before torch; elsewhere there is no GPU() to call
    import spaces
except ImportError:
    spaces = None

import base64  # noqa: E402
import hashlib  # noqa: E402
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

ROOT = Path(__file__).resolve().parent
MAX_SIDE = int(os.environ.get("IMG2IMG_MAX_SIDE", 1024))
MAX_UPLOAD_MB = 20  # photos; checkpoints have their own cap below
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


def _raw_upload(payload):
    """Image preprocess that hands the upload to our decoder untouched.

    Stock gr.Image opens every upload with PIL before the event function runs, so a corrupt
    file or a decompression bomb becomes an opaque "could not preprocess" error. We return
    the uploaded file's path (or the bytes of a webcam/clipboard data URL) and let
    img2img.processing.open_image decode it, with its size cap and precise messages.
    """
    if payload is None:
        return None
    if payload.url and payload.url.startswith("data:"):
        return base64.b64decode(payload.url.split(",", 1)[1])
    return payload.path


def raw_image(**kwargs) -> gr.Image:
    component = gr.Image(**kwargs)
    # An instance override, not a subclass: Gradio writes a .pyi stub beside the module of
    # every Component subclass, which would fail in a read-only app directory.
    component.preprocess = _raw_upload
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


def _go_button(model_id: str, live: bool = True):
    if model_id != CUSTOM and _availability(get_entry(model_id), live)[0] == "unpublished":
        return gr.update(value="Not yet published", interactive=False)
    return gr.update(value="Translate", interactive=True)


def on_model_change(model_id: str, custom=None):
    custom = _as_dict(custom)
    mine = model_id == CUSTOM
    e = None if mine else get_entry(model_id)
    pair = e is not None and e.reverse is not None
    dropout = bool(custom and custom["dropout"]) if mine else e.family == "pix2pix"
    return (
        model_card(model_id),
        gr.update(visible=pair),
        gr.update(visible=pair, value=False),
        gr.update(visible=dropout),
        _go_button(model_id),
        gr.update(visible=mine),
    )


def refresh_page(model_id: str, custom=None):
    """On page load and after each translation: availability marks, card, Translate button."""
    return (
        gr.update(choices=model_choices(), value=model_id),
        model_card(model_id),
        _go_button(model_id),
    )


def reverse_model(model_id: str) -> str:
    return model_id if model_id == CUSTOM else get_entry(model_id).reverse or model_id


# ---------------------------------------------------------------------------- messages


def _failure_text(error: BaseException) -> str:
    if isinstance(error, gr.Error):
        return error.message
    if isinstance(error, Img2ImgError):
        return str(error)
    return "out of memory. What you can do: choose Fast · 256 px; or use a smaller photo"


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
    if isinstance(upload, str) and os.path.getsize(upload) > MAX_UPLOAD_MB * 2**20:
        raise gr.Error(f"This file is larger than {MAX_UPLOAD_MB} MB: photos are capped there.")
    from img2img.processing import open_image, working_size

    img = open_image(upload)
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
        return custom["key"], f"Your model ({custom['name']})", None
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
        "custom": key if model_id == CUSTOM else None,
        "label": label,
        "resolution": resolution,
        "seed": seed,
        "round_trip": bool(round_trip),
        "input": _input_key(upload),
        "reverse": None if model_id == CUSTOM else get_entry(model_id).reverse,
    }
    facts = dict(size=out.size, original=original, run_s=time.perf_counter() - start)
    facts.update(load_s=load_s, device=str(t.device), plan=t.plan.describe())
    facts.update(fast_size=FAST_SIZE, max_side=MAX_SIDE, catalog=model_id != CUSTOM)
    facts["weights"] = "" if model_id == CUSTOM else weights_line(get_entry(model_id))
    result["summary"] = describe.result_summary(result, facts)
    return img, out, back, result


def _input_key(upload) -> str | None:
    """Identifies the photo a result was made from (its bytes), to notice a new one."""
    if upload is None:
        return None
    try:
        data = upload if isinstance(upload, bytes) else Path(upload).read_bytes()
    except OSError:
        return str(upload)
    return hashlib.sha1(data).hexdigest()[:16]


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


def _present(img, out, back, result) -> tuple:
    """The page's outputs for a result: slider, round trip, download, status, state, back."""
    name = "img2img-" + (result["model"].replace("/", "-") if result["model"] != CUSTOM else "own")
    try:
        download = _save_png(out, name)
    except OSError:  # e.g. the server's disk is full: show the result, skip the file
        download = None
        result["summary"] += "\n\nPNG download unavailable (server storage is full)."
    return (
        (img, out),
        gr.update(value=back, visible=back is not None),
        download,
        result["summary"],
        result,
        _back_button(result),
    )


def _back_button(result: dict | None):
    """↩ under a result that has a reverse model: it translates the result back."""
    reverse = result and result.get("reverse")
    label = f"↩ Translate this result back ({get_entry(reverse).label})" if reverse else ""
    return gr.update(visible=bool(reverse), value=label)


def _failed(error: BaseException, subject: str) -> tuple:
    """A failure clears the result and its download; the message stays until the next run."""
    text = _failure_text(error)
    status = describe.error_markdown(text, subject)
    return None, gr.update(value=None, visible=False), None, status, None, gr.update(visible=False)


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
    seed = int(seed or 0) if vary else None
    try:
        return _present(
            *_translate(upload, model_id, resolution, seed, round_trip, progress, custom)
        )
    except _failures() as e:
        subject = "Your model" if model_id == CUSTOM else get_entry(model_id).label
        return _failed(e, subject)


def translate_back(pair, result, resolution, vary, seed, progress=TRACK_PROGRESS):
    """⇄ for a result: the output becomes the photo and goes through the reverse model."""
    result = _as_dict(result)
    if not result or not result.get("reverse") or not pair or not pair[1]:
        return gr.update(), gr.update(), *_failed(gr.Error("translate a photo first"), "")
    reverse = result["reverse"]
    outputs = translate_ui(pair[1], reverse, resolution, vary, seed, False, None, progress)
    return pair[1], reverse, *outputs


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
    slider, _, download, _, result, _ = _present(*core)
    result["summary"] += "\n\nAn example: computed at its first use, then cached."
    return slider, download, result["summary"], result  # no gr.update: the cache keeps values


def after_example(
    upload, model_id, resolution, vary, seed, round_trip, custom, result, request: gr.Request
):
    """After an example row: its failure in the status area (the result cleared), else the
    round-trip image hidden and the ↩ button for the example's result."""
    failure = _example_failures.pop(request.session_hash, None)
    if failure:
        return None, None, failure, None, gr.update(value=None, visible=False), _back_button(None)
    controls = (upload, model_id, resolution, vary, seed, round_trip, custom, result)
    status, result = mark_stale(*controls), _as_dict(result)
    return gr.update(), gr.update(), status, result, gr.update(visible=False), _back_button(result)


def mark_stale(upload, model_id, resolution, vary, seed, round_trip, custom, result):
    """After a control changes: the status says whether the shown result still matches."""
    result = _as_dict(result)
    if not result:
        return gr.update()  # no result on show (an error message stays where it is)
    custom = _as_dict(custom)
    now = {
        "input": _input_key(upload),
        "model": model_id,
        "custom": custom["key"] if model_id == CUSTOM and custom else None,
        "resolution": resolution,
        "seed": int(seed or 0) if vary else None,
        "round_trip": bool(round_trip),
    }
    return describe.stale_note(result, now)


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
        return (
            describe.error_markdown(_failure_text(e), "Your model"),
            None,
            gr.update(visible=False),
        )
    from img2img.inference import has_dropout, size_multiple

    size = sum(p.numel() for p in model.parameters())
    dropout = has_dropout(model)
    arch = describe.architecture(model.config, size, size_multiple(model), dropout)
    custom = {"key": path, "name": name, "arch": arch, "dropout": dropout}
    return describe.custom_card(custom, MAX_CHECKPOINT_MB), custom, gr.update(visible=dropout)


# ---------------------------------------------------------------------------- the API


def translate(image, model_id, resolution="fast", seed=-1, progress=TRACK_PROGRESS):
    """Translate a photo with a catalog model; returns a PNG of the photo's size (up to
    IMG2IMG_MAX_SIDE px on the long side, 1024 by default) and aspect ratio.

    Args:
        image: the photo (PNG, JPEG, WebP, ...; transparency is kept).
        model_id: a catalog id such as cyclegan/horse2zebra (`img2img models` lists them).
        resolution: "fast" (computed at 256 px, resized back) or "full" (at the photo's size).
        seed: -1 for the deterministic result; 0 to 4294967295 for a dropout variation (pix2pix).

    Returns:
        The translated image, PNG.
    """
    if model_id == CUSTOM:
        raise gr.Error("your own model is for the page only: the API translates catalog ids")
    seed = None if seed is None or seed < 0 else int(seed)
    try:
        return _translate(image, model_id, resolution, seed, False, progress)[1]
    except Img2ImgError as e:
        raise gr.Error(str(e)) from e
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
        c["seed"] = gr.Number(0, precision=0, minimum=0, label="Seed")
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
    """Every event of the page (all private: the API is /translate alone)."""
    private = dict(api_visibility="private")
    quiet = dict(api_visibility="private", show_progress="hidden")  # bookkeeping events
    result_outputs = [c[k] for k in ("slider", "back", "download", "status", "result")]
    result_outputs.append(c["back_button"])
    refresh = dict(fn=refresh_page, inputs=[c["model"], c["custom"]], **quiet)
    refresh["outputs"] = [c["model"], c["card"], c["go"]]
    c["demo"].load(**refresh)
    c["model"].change(
        on_model_change,
        [c["model"], c["custom"]],
        [c["card"], c["swap"], c["round_trip"], c["variation"], c["go"], c["custom_box"]],
        **quiet,
    )
    controls = [c[k] for k in ("image", "model", "resolution", "vary", "seed", "round_trip")]
    stale = dict(fn=mark_stale, inputs=[*controls, c["custom"], c["result"]], **quiet)
    stale["outputs"] = c["status"]
    gr.on([x.input for x in controls], **stale)
    c["swap"].click(reverse_model, c["model"], c["model"], **quiet).then(**stale)
    run = c["go"].click(translate_ui, [*controls, c["custom"]], result_outputs, **private)
    back_inputs = [c["slider"], c["result"], c["resolution"], c["vary"], c["seed"]]
    again = c["back_button"].click(
        translate_back, back_inputs, [c["image"], c["model"], *result_outputs], **private
    )
    for event in (run, again):
        event.then(**refresh)
        event.then(None, js=SHOW_RESULT)
    if ALLOW_CUSTOM:
        c["load"].click(
            load_custom,
            [c["repo"], c["checkpoint"]],
            [c["custom_info"], c["custom"], c["variation"]],
            **private,
        ).then(**stale)
    if examples:
        rows = gr.Examples(
            examples,
            inputs=[c["image"], c["model"]],
            outputs=[c[k] for k in ("slider", "download", "status", "result")],
            fn=example_ui,
            cache_examples=True,
            cache_mode="lazy",  # nothing runs at start-up: no weights are needed to launch
            label="Examples (each picks a model; see examples/LICENSES.md)",
            examples_per_page=10,
            elem_id="examples",
            api_visibility="private",
        )
        after = dict(fn=after_example, inputs=[*controls, c["custom"], c["result"]], **quiet)
        after["outputs"] = [c[k] for k in ("slider", "download", "status", "result")]
        after["outputs"] += [c["back"], c["back_button"]]
        rows.load_input_event.success(**after).then(**refresh)
        rows.load_input_event.failure(**after).then(**refresh)  # .then alone skips failures


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
                _wire(c, example_rows(catalog))  # the examples render here, under the result
        # The documented API: (image, model_id[, resolution, seed]) -> PNG.
        api_resolution = gr.Radio(["fast", "full"], value="fast", label="Resolution", visible=False)
        api_seed = gr.Number(-1, precision=0, label="Seed (-1: none)", visible=False)
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
    keep their own cap (_decode)."""
    from huggingface_hub import constants

    blocked = [ROOT, Path(constants.HF_HOME), Path.home() / ".cache", Path("/etc")]
    upload_mb = max(MAX_UPLOAD_MB, MAX_CHECKPOINT_MB) if ALLOW_CUSTOM else MAX_UPLOAD_MB
    return dict(
        max_file_size=f"{upload_mb}mb",
        blocked_paths=[str(p) for p in blocked],
        show_error=False,
        theme=gr.themes.Soft(),
        css=CSS,
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
