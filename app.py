"""img2img: the Gradio app. UI only; the work is done by img2img.inference.Translator.

Run `python app.py` (http://127.0.0.1:7860) or deploy as a Hugging Face Space (the README's
front matter). Two tabs: Photo (the picker, Fast / Full size, round trip, examples, your own
model) and Video (webui/media.py). Environment (the parts' docstrings have the rest):
    IMG2IMG_DEFAULT_MODEL, IMG2IMG_MAX_SIDE, IMG2IMG_MAX_MODELS, IMG2IMG_TMP_TTL,
    IMG2IMG_ALLOW_CUSTOM, IMG2IMG_MAX_CHECKPOINT_MB           webui/runtime.py
    IMG2IMG_MAX_FULL_MP, IMG2IMG_MAX_VIDEO_SECONDS / _MB / _MP  webui/media.py
    IMG2IMG_CONCURRENCY     requests processed at once (default 2) / IMG2IMG_QUEUE_SIZE (16)
    IMG2IMG_EXAMPLES_DIR    example inputs (default examples/; its examples.json names the
                            model each one pre-selects)
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

try:  # ZeroGPU: `spaces` must be imported before torch (webui.runtime uses it)
    import spaces  # noqa: F401
except ImportError:
    pass

import html  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
from PIL import Image  # noqa: E402

from img2img import Img2ImgError
from img2img.checkpoints.catalog import get_entry, load_catalog  # noqa: E402
from webui import describe  # noqa: E402
from webui.explain import explain  # noqa: E402
from webui.inputs import (
    MAX_BODY,
    MAX_PIXELS,
    MAX_SEED,
    MAX_UPLOAD,
    TOO_LARGE,
    parse_seed,
    seed_number,
)
from webui.layout import (
    CSS,
    SHOW_RESULT,
    TAGLINE,
    controls_column,
    document_api,
    example_rows,
    result_column,
)
from webui.media import MAX_FULL_PIXELS, MAX_VIDEO_BYTES, full_size, translate_full, video_tab
from webui.messages import as_dict, failure_text, failures, public  # noqa: E402
from webui.own_model import load_custom  # noqa: E402
from webui.picker import (
    model_choices,
    model_views,
    picker_js,
    refresh,
    refuse_unpublished,
    stale_js,
    weights_line,
)
from webui.runtime import (
    ALLOW_CUSTOM,
    CUSTOM,
    DEFAULT_MODEL,
    FAST_SIZE,
    MAX_CHECKPOINT_MB,
    MAX_SIDE,
    ROOT,
    TMP_TTL_S,
    ZERO_GPU,
    gpu,
    library,
    output_folder,
    translator,
)
from webui.serving import BodyCap  # noqa: E402

# Examples are cached at first use, per process: a restart with other weights starts afresh.
os.environ.setdefault("GRADIO_EXAMPLES_CACHE", tempfile.mkdtemp(prefix="img2img-examples-"))
# Gradio swaps in a per-request tracker; track_tqdm shows download bars while a model loads.
TRACK_PROGRESS = gr.Progress(track_tqdm=True)
__all__ = ["MAX_SEED", "MAX_UPLOAD", "demo", "launch_kwargs", "translator", "model_choices"]


# ---------------------------------------------------------------------------- translation


def _decode(upload, resolution: str) -> tuple[Image.Image, tuple[int, int], bool]:
    """(photo to translate, its size as uploaded, tiled?): "fast" outputs stay within
    MAX_SIDE (light responses); "full" keeps the photo's size (media.full_size)."""
    if upload is None:
        raise gr.Error("Upload a photo first (drop a file, paste, or use the webcam).")
    library()  # once, under one lock (runtime.library)
    from img2img.media.processing import open_image, working_size

    img = open_image(upload, max_pixels=MAX_PIXELS)
    original, tiled = img.size, False
    if resolution == "full":
        size, tiled = full_size(img.size)
    else:
        size = working_size(img.size, MAX_SIDE) if max(img.size) > MAX_SIDE else img.size
    if size != img.size:
        img = img.resize(size, Image.LANCZOS)
    return img, original, tiled


def _load(key: str, progress) -> float:
    """Load (downloading if needed) and return the seconds it took (0 when cached)."""
    t = translator()
    if t.is_loaded(key):
        return 0.0
    progress(0, desc=f"Loading {key if len(key) < 60 else Path(key).name} (first use)")
    start = time.perf_counter()
    t.load(key)
    return time.perf_counter() - start


def gpu_seconds(key: str, reverse: str | None, img: Image.Image, size: int | None, seed, tiled):
    """ZeroGPU seconds to reserve for one request, from its work instead of the 60 s default
    (a shorter reservation queues first): a fixed part for the copies to and from the GPU and
    cuDNN's tuning of a new shape, plus the megapixels each pass computes."""
    library()  # once, under one lock (runtime.library)
    from img2img.media.processing import working_size

    w, h = working_size(img.size, size) if size and not tiled else img.size
    passes = 2 if reverse else 1
    return min(60, math.ceil(10 + 5 * passes * w * h / 1e6))


@gpu(duration=gpu_seconds)
def _run(key: str, reverse: str | None, img: Image.Image, size: int | None, seed, tiled: bool):
    """One GPU reservation per request: the translation and its round trip together."""
    if tiled:
        out = translate_full(key, img)
        return out, translate_full(reverse, out) if reverse else None
    t = translator()
    out = t.translate(key, [img], size=size, seed=seed)[0]
    back = t.translate(reverse, [out], size=size, seed=seed)[0] if reverse else None
    return out, back


def _job(model_id: str, custom, round_trip: bool) -> tuple[str, str, str | None]:
    """(Translator key, label, reverse key) for the picker's value, refusing before any work
    what cannot run: an unpublished model, or your own model before it is loaded."""
    if model_id == CUSTOM:
        custom = as_dict(custom)
        if not ALLOW_CUSTOM:
            raise gr.Error("Your own model is switched off on this server.")
        if not custom:
            raise gr.Error(
                "your own model is not loaded yet. What you can do: give a Hub repo id or "
                "upload a checkpoint file, then press Load my model"
            )
        return custom["key"], f"Your model ({custom['name']})", None  # key: its server path
    entry = get_entry(model_id)
    refuse_unpublished(entry)
    return entry.id, entry.label, entry.reverse if round_trip else None


def _translate(upload, model_id, resolution, seed, round_trip, progress, custom=None):
    """Shared by the page, the examples and the API: returns (input, output, back, result)."""
    key, label, reverse = _job(model_id, custom, round_trip)
    img, original, tiled = _decode(upload, resolution)
    load_s = _load(key, progress) + (_load(reverse, progress) if reverse else 0.0)
    size = FAST_SIZE if resolution == "fast" else None
    progress(0.5, desc="Translating" + (" in tiles" if tiled else ""))
    start = time.perf_counter()
    out, back = _run(key, reverse, img, size, seed, tiled)
    t = translator()
    result = {
        "model": model_id,
        "custom": as_dict(custom)["id"] if model_id == CUSTOM else None,
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
    facts.update(tiled=tiled, max_full_mp=MAX_FULL_PIXELS / 1e6)
    facts["weights"] = "" if model_id == CUSTOM else weights_line(get_entry(model_id))
    result["summary"] = describe.result_summary(result, facts)
    return img, out, back, result


def _save_png(img: Image.Image, name: str = "img2img") -> str:
    """Write the result for the download button (old results are pruned: output_folder)."""
    path = output_folder() / f"{name}.png"
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
    status = describe.error_markdown(failure_text(error), subject)
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
    seed = parse_seed(0 if seed is None else seed, none_below_zero=False) if vary else None
    try:
        return _present(
            *_translate(upload, model_id, resolution, seed, round_trip, progress, custom)
        )
    except failures() as e:
        subject = "Your model" if model_id == CUSTOM else get_entry(model_id).label
        return _failed(e, subject)


def translate_back(result, resolution, vary, seed, progress=TRACK_PROGRESS):
    """↩ for a result: its output becomes the photo and goes through the reverse model. The
    result comes from the session on the server (a gr.State), never from the request."""
    result = as_dict(result)
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
    except failures() as e:
        label = get_entry(model_id).label
        _example_failures[request.session_hash] = describe.error_markdown(failure_text(e), label)
        headline = html.escape(explain(failure_text(e)).headline)
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
    return same, same, same, same, same, gr.update(visible=False), _back_button(as_dict(result))


# ---------------------------------------------------------------------------- the API


def translate(image, model_id, resolution="fast", seed=-1, progress=TRACK_PROGRESS):
    """Translate a photo with a catalog model; returns a PNG of the photo's size (up to
    IMG2IMG_MAX_SIDE px on the long side, 1024 by default) and aspect ratio.

    Args:
        image: a photo (PNG, JPEG, WebP; alpha kept), uploaded or a data URL: <= 20 MB, 50 MP.
        model_id: a catalog id such as cyclegan/horse2zebra (`img2img models` lists them).
        resolution: "fast" (computed at 256 px, resized back) or "full" (own size; tiled).
        seed: -1: deterministic; 0 .. 4294967295 (2^32 - 1): a dropout variation (pix2pix).

    Returns:
        The translated image, PNG.
    """
    if model_id == CUSTOM:
        raise gr.Error("your own model is for the page only: the API translates catalog ids")
    seed = parse_seed(seed, none_below_zero=True)
    try:
        return _translate(image, model_id, resolution, seed, False, progress)[1]
    except Img2ImgError as e:
        raise gr.Error(public(str(e))) from e
    except failures()[2:] as e:
        raise gr.Error("Out of memory: try the fast 256 px resolution.") from e


def _examples(c: dict, examples: list):
    """The example rows (rendered where this is called: under the photo's result)."""
    if not examples:
        return None
    return gr.Examples(
        examples,
        inputs=[c["image"], c["model"]],
        outputs=[c[k] for k in ("slider", "download", "status", "result", "shown")],
        fn=example_ui,
        cache_examples=True,
        cache_mode="lazy",  # nothing runs at start-up: no weights are needed to launch
        label="Examples (each picks a model; see examples/LICENSES.md)",
        examples_per_page=10,
        elem_id="examples",
        api_visibility="private",
    )


def _wire(c: dict) -> None:
    """Every event of the page (all private: the API is /translate alone). The picker, the
    direction switch and the out-of-date note run in the browser (js, no server function)."""
    private = dict(api_visibility="private")
    quiet = dict(api_visibility="private", show_progress="hidden")
    result_outputs = [c[k] for k in ("slider", "back", "download", "status", "result", "shown")]
    result_outputs.append(c["back_button"])
    refreshed = dict(fn=refresh, inputs=c["model"], **quiet)
    refreshed["outputs"] = [c["model"], c["views"], c["card"], c["go"], c["clip_model"]]
    c["demo"].load(**refreshed)
    on_change, on_swap = picker_js()
    c["model"].change(
        None,
        [c["model"], c["views"], c["mine"]],
        [c["card"], c["swap"], c["round_trip"], c["variation"], c["go"], c["custom_box"]],
        js=on_change,
    )
    controls = [c[k] for k in ("image", "model", "resolution", "vary", "seed", "round_trip")]
    stale = dict(fn=None, inputs=[*controls, c["mine"], c["shown"]], outputs=c["status"])
    stale["js"] = stale_js()
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
    if c.get("examples"):
        rows = c["examples"]
        shown = [c[k] for k in ("slider", "download", "status", "result", "shown")]
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
        with gr.Tabs():
            with gr.Tab("Photo", id="photo"), gr.Row(equal_height=False):
                with gr.Column():
                    c = controls_column(default)
                with gr.Column():
                    c.update(result_column())
                    c["demo"], c["result"], c["custom"] = demo, gr.State(None), gr.State(None)
                    # What the browser's own events read: model views, your model, the result.
                    c["views"] = gr.JSON(model_views(live=False), visible=False)
                    c["mine"] = gr.JSON(None, visible=False)
                    c["shown"] = gr.JSON(None, visible=False)
                    c["examples"] = _examples(c, example_rows(catalog))  # under the result
            with gr.Tab("Video", id="video"):
                c.update(video_tab(default))
        _wire(c)
        # The documented API: (image, model_id[, resolution, seed]) -> PNG.
        api_resolution = gr.Radio(["fast", "full"], value="fast", label="Resolution", visible=False)
        api_seed = seed_number(-1, label="Seed (-1: none; 0 .. 2^32 - 1)", visible=False)
        api_out = gr.Image(format="png", type="pil", label="Translated image", visible=False)
        api_inputs = [c["image"], c["model"], api_resolution, api_seed]
        document_api(translate, api_inputs, api_out)
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
    upload = max(MAX_UPLOAD, MAX_VIDEO_BYTES, MAX_CHECKPOINT_MB * 10**6 if ALLOW_CUSTOM else 0)
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
