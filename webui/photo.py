"""The Photo tab: the picker, Fast / Full size, round trip, ↩ back, the examples, your own
model, and the /translate API. `create_ui` builds its components (inside a gr.Tab),
`create_event_handlers` wires them, `api` adds the documented endpoint; the handlers are
here too (the work itself: the Translator, through runtime.engine()).

Every request path meets the same caps (issue 10): photos at most MAX_UPLOAD bytes and
MAX_PIXELS, request bodies at most MAX_BODY (app.py's BodyCap). The events that run on the
server are the API, the page's translations (Translate, ↩ back, examples; a browser is an
HTTP client too), "Load my model" (its own size cap) and a read-only refresh of the
availability marks; the picker, the direction switch and the "out of date" note run in the
browser and have nothing to call on the server.
"""

from __future__ import annotations

import html
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image

from img2img import Cancelled, Img2ImgError
from img2img.atomic import write_new
from img2img.checkpoints.catalog import custom_ids, get_entry, is_available, load_catalog

from . import cancel, describe
from .cancel import should_stop
from .explain import explain
from .inputs import MAX_PIXELS, parse_seed, photo_or_error, seed_number
from .layout import (
    SHOW_RESULT,
    controls_column,
    document_api,
    example_rows,
    result_column,
)
from .media import MAX_FULL_PIXELS, full_size
from .messages import as_dict, failure_text, failures, public
from .own_model import load_custom
from .picker import (
    is_stored,
    label_of,
    model_views,
    picked_js,
    picker_js,
    refresh_event,
    refuse_unpublished,
    reverse_of,
    stale_js,
    weights_text,
)
from .runtime import (
    ALLOW_CUSTOM,
    CUSTOM,
    FAST_SIZE,
    MAX_SIDE,
    ZERO_GPU,
    engine,
    gpu,
    max_job_seconds,
    output_folder,
    translator,
)

# Gradio swaps in a per-request tracker; track_tqdm shows download bars while a model loads.
TRACK_PROGRESS = gr.Progress(track_tqdm=True)


# ---------------------------------------------------------------------------- translation


def _decode(upload, resolution: str) -> tuple[Image.Image, tuple[int, int], bool]:
    """(photo to translate, its size as uploaded, big?): "fast" outputs stay within
    MAX_SIDE (light responses); "full" keeps the photo's size (media.full_size); big: over
    MAX_SIDE at full size, computed by the engine's translate_full (tiled if it does not fit)."""
    if photo_or_error(upload) is None:
        raise gr.Error("Upload a photo first (drop a file, paste, or use the webcam).")
    lib = engine()
    img = lib.open_image(upload, max_pixels=MAX_PIXELS)
    original, big = img.size, False
    if resolution == "full":
        size, big = full_size(img.size)
    else:
        size = lib.working_size(img.size, MAX_SIDE) if max(img.size) > MAX_SIDE else img.size
    if size != img.size:
        img = img.resize(size, Image.LANCZOS)
    return img, original, big


def _load(key: str, progress) -> float:
    """Load (downloading if needed) and return the seconds it took (0 when cached)."""
    t = translator()
    if t.is_loaded(key):
        return 0.0
    progress(0, desc=f"Loading {key if len(key) < 60 else Path(key).name} (first use)")
    start = time.perf_counter()
    t.load(key)
    return time.perf_counter() - start


def gpu_seconds(key: str, reverse: str | None, img: Image.Image, size: int | None, seed, big):
    """ZeroGPU seconds to reserve for one request, from its work instead of the 60 s default
    (a shorter reservation queues first): a fixed part for the copies to and from the GPU and
    cuDNN's tuning of a new shape, plus the megapixels each pass computes."""
    w, h = engine().working_size(img.size, size) if size and not big else img.size
    passes = 2 if reverse else 1
    return min(60, math.ceil(10 + 5 * passes * w * h / 1e6))


# What the running job's passes report to and ask (set by _compute for its own thread; a
# ZeroGPU worker process sees none of it: its reservation bounds the job).
_hooks = threading.local()


@gpu(duration=gpu_seconds)
def _run(key: str, reverse: str | None, img: Image.Image, size: int | None, seed, big: bool):
    """One GPU reservation per request: the translation and its round trip together, and
    whether they ran in tiles (a big photo whose untiled forward does not fit the memory
    budget: decided here, where the device's memory can be read)."""
    t, lib = translator(), engine()
    tiled = big and lib.would_tile(t, key, img)
    out = _pass(t, key, img, size, seed, tiled)
    return out, _pass(t, reverse, out, size, seed, tiled) if reverse else None, tiled


def _pass(t, key: str, img: Image.Image, size: int | None, seed, tiled: bool) -> Image.Image:
    """One model over the photo (in tiles, stoppable between batches of windows), timed
    into the engine's speed book."""
    lib, start = engine(), time.perf_counter()
    if tiled:
        stop, report = getattr(_hooks, "stop", None), getattr(_hooks, "report", None)
        out = lib.translate_full(t, key, img, progress=report or True, should_stop=stop)
    else:
        out = t.translate(key, [img], size=size, seed=seed)[0]
    mode = "tiles" if tiled else "fast" if size else "whole"
    done = lib.working_size(img.size, size) if size else img.size
    lib.observe(t, key, mode, time.perf_counter() - start, done)
    return out


@dataclass
class Job:
    """A translation decided but not run: what, on which photo, how, and how long."""

    key: str
    label: str
    reverse: str | None
    img: Image.Image
    original: tuple[int, int]
    big: bool
    size: int | None  # FAST_SIZE, or None: the photo's own
    load_s: float = 0.0
    estimate: object = None  # engine.Estimate of the whole job, None when not known


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
    if is_stored(model_id):  # one of your models kept on disk: its id is its key
        return model_id, label_of(model_id), None
    entry = get_entry(model_id)
    refuse_unpublished(entry)
    return entry.id, entry.label, entry.reverse if round_trip else None


TOO_LONG = (
    "choose Fast · 256 px, or a smaller photo; or run it on your own machine: "
    "img2img translate PHOTO --checkpoint {model} --tile -o OUT_DIR; or raise "
    "IMG2IMG_MAX_JOB_SECONDS if you run this server"
)


def _time_job(job: Job, guess: bool):
    """The job's estimate (None when a pass is not known), refused up front when over
    IMG2IMG_MAX_JOB_SECONDS (JobTooLongError). Fast jobs and ZeroGPU (whose reservation
    bounds a job, and whose tiling is decided on the GPU) are not timed."""
    if job.size is not None or ZERO_GPU:
        return None
    t, lib = translator(), engine()
    tiled = job.big and guess and lib.would_tile(t, job.key, job.img)
    mode = "tiles" if tiled or (job.big and not guess) else "whole"
    parts = [lib.estimate(t, k, mode, job.img.size, guess) for k in (job.key, job.reverse) if k]
    if any(p is None for p in parts):
        return None
    total = lib.Estimate(sum(p.seconds for p in parts), all(p.measured for p in parts))
    lib.check_job(total, max_job_seconds(t.device), TOO_LONG.format(model=job.key))
    return total


def _plan(upload, model_id, resolution, seed, round_trip, progress, custom=None) -> Job:
    """Everything before computing: the model and photo checked, the estimate refused when
    too long (from a measured speed before loading, again with a first guess after)."""
    key, label, reverse = _job(model_id, custom, round_trip)
    img, original, big = _decode(upload, resolution)
    job = Job(key, label, reverse, img, original, big, FAST_SIZE if resolution == "fast" else None)
    _time_job(job, guess=False)
    job.load_s = _load(key, progress) + (_load(reverse, progress) if reverse else 0.0)
    job.estimate = _time_job(job, guess=True)
    return job


def _announce(job: Job) -> str:
    """The status while a long job runs: its estimate on this machine."""
    t = translator()
    return (
        f"Translating at full size: {job.estimate.words()} on this {t.device.type.upper()} "
        f"({t.plan.describe()}). **Stop** ends it."
    )


def _compute(job: Job, model_id: str, seed, round_trip, progress, custom=None, stop=None):
    """Run a planned job: returns (input, output, back, result)."""
    _hooks.stop, _hooks.report = stop, _reporter(job, progress)
    when = f", {job.estimate.words()}" if job.estimate is not None else ""
    progress(0.5, desc="Translating" + (" at full size" if job.big else "") + when)
    start = time.perf_counter()
    try:
        out, back, tiled = _run(job.key, job.reverse, job.img, job.size, seed, job.big)
    finally:
        _hooks.stop = _hooks.report = None
    t = translator()
    result = {
        "model": model_id,
        "custom": as_dict(custom)["id"] if model_id == CUSTOM else None,
        "label": job.label,
        "resolution": "fast" if job.size else "full",
        "seed": seed,
        "round_trip": bool(round_trip),
        "input": None,
        "reverse": reverse_of(model_id),
    }
    run_s = time.perf_counter() - start
    facts = dict(size=out.size, original=job.original, run_s=run_s)
    facts.update(load_s=job.load_s, device=str(t.device), plan=t.plan.describe())
    facts.update(fast_size=FAST_SIZE, max_side=MAX_SIDE, catalog=model_id != CUSTOM)
    facts.update(tiled=tiled, max_full_mp=MAX_FULL_PIXELS / 1e6)
    facts["weights"] = weights_text(model_id)
    result["summary"] = describe.result_summary(result, facts)
    if job.estimate is not None and job.estimate.seconds >= ANNOUNCE_S:
        took = engine().duration(run_s)
        result["summary"] += f"\n\nEstimated {job.estimate.words()} before it ran; took {took}."
    return job.img, out, back, result


def _reporter(job: Job, progress):
    """The tiles' progress callback: (windows done, total) with the time left, from the
    windows' own pace once two reports came (before: the estimate)."""
    if job.estimate is None:
        return None
    lib, start, first = engine(), time.perf_counter(), []

    def report(done: int, total: int) -> None:
        now = time.perf_counter()
        first or first.append((now, done))
        (t0, d0) = first[0]
        if done > d0:
            left = (now - t0) / (done - d0) * (total - done)
        else:
            left = max(job.estimate.seconds - (now - start), 0) * (total - done) / total
        desc = f"Window {done} of {total}: about {lib.duration(left)} left"
        progress((done, total), desc=desc, unit="window")

    return report


def _translate(upload, model_id, resolution, seed, round_trip, progress, custom=None):
    """Shared by the examples and the API: returns (input, output, back, result)."""
    job = _plan(upload, model_id, resolution, seed, round_trip, progress, custom)
    stop = should_stop(None)
    core = _compute(job, model_id, seed, round_trip, progress, custom, stop)
    core[3]["input"] = upload if isinstance(upload, str) else None  # as the page knows it
    return core


def _save_png(img: Image.Image, folder: Path, name: str) -> str:
    """`img` as folder/name.png, written once, atomically, under a name of its own (a fresh
    output_folder per result), for Gradio to serve as it is: handing Gradio the PIL image
    instead makes it rewrite one file per identical result while others stream it."""
    path = folder / f"{name}.png"
    write_new(path, lambda f: img.save(f, format="PNG"))
    return str(path)


def _result_files(img, out, back, name: str) -> tuple[str, str, str | None]:
    """(input, output, round trip) as files of this result's own folder."""
    folder = output_folder()
    files = _save_png(img, folder, "input"), _save_png(out, folder, name)
    return *files, _save_png(back, folder, f"{name}-back") if back is not None else None


SHOWN = ("input", "model", "custom", "resolution", "seed", "round_trip", "summary")


def _present(img, out, back, result) -> tuple:
    """The page's outputs for a result: slider, round trip, download, status, the result
    (kept on the server, for ↩), what the browser needs to mark it out of date, ↩."""
    name = "img2img-" + (result["model"].replace("/", "-") if result["model"] != CUSTOM else "own")
    try:
        img, out, back = _result_files(img, out, back, name)
        result["output"] = download = out
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


def _failed(error: BaseException | None, subject: str) -> tuple:
    """A failure (None: a stopped job) clears the result and its download; the message stays
    until the next run."""
    status = STOPPED if error is None else describe.error_markdown(failure_text(error), subject)
    hidden = gr.update(value=None, visible=False)
    return None, hidden, None, status, None, None, gr.update(visible=False)


ANNOUNCE_S = 5  # a job estimated longer is announced in the status before it starts
STOPPED = "**Stopped.** The server stopped computing; nothing of the job is kept."
KEEP = gr.update()


def translate_ui(
    upload,
    model_id,
    resolution,
    vary,
    seed,
    round_trip,
    custom=None,
    progress=TRACK_PROGRESS,
    request: gr.Request = None,
):
    """The Translate button (a generator): first the status (a long job's estimate) and the
    Stop button, then the result. Stop and a closed tab end the work between tiles."""
    session = getattr(request, "session_hash", None)
    flag = cancel.start_job(session, "photo")
    try:
        seed = parse_seed(0 if seed is None else seed, none_below_zero=False) if vary else None
        job = _plan(upload, model_id, resolution, seed, round_trip, progress, custom)
        long = job.estimate is not None and job.estimate.seconds >= ANNOUNCE_S
        status = _announce(job) if long else KEEP
        yield KEEP, KEEP, KEEP, status, KEEP, KEEP, KEEP, gr.update(visible=True)
        core = _compute(job, model_id, seed, round_trip, progress, custom, should_stop(flag))
        core[3]["input"] = upload if isinstance(upload, str) else None
        yield *_present(*core), gr.update(visible=False)
    except Cancelled as e:  # Stop, or the tab closed: nothing half-done is shown
        print(f"* {e}", flush=True)
        yield *_failed(None, ""), gr.update(visible=False)
    except failures() as e:
        yield *_failed(e, label_of(model_id)), gr.update(visible=False)
    finally:
        cancel.end_job(session, "photo", flag)


def stop_ui(request: gr.Request):
    """Stop: the running job's flag set (its worker stops at the next batch of tiles); the
    result and its download cleared, the Stop button hidden."""
    cancel.ask_stop(getattr(request, "session_hash", None), "photo")
    return *_failed(None, ""), gr.update(visible=False)


def translate_back(
    result, resolution, vary, seed, progress=TRACK_PROGRESS, request: gr.Request = None
):
    """↩ for a result: its output becomes the photo and goes through the reverse model. The
    result comes from the session on the server (a gr.State), never from the request."""
    result = as_dict(result)
    if not result or not result.get("reverse") or not result.get("output"):
        failed = _failed(gr.Error("translate a photo first"), "")
        yield gr.update(), gr.update(), *failed, gr.update(visible=False)
        return
    photo, reverse = result["output"], result["reverse"]
    args = photo, reverse, resolution, vary, seed, False, None, progress, request
    for outputs in translate_ui(*args):
        yield photo, reverse, *outputs


def check_upload(upload):
    """At upload, before Translate: a file that is not an image we can read (or over the
    caps) is said in the status area at once, and taken off the page (no broken image)."""
    if upload is None:
        return gr.update(), gr.update()
    try:
        engine().open_image(photo_or_error(upload), max_pixels=MAX_PIXELS)
    except failures() as e:
        return None, describe.error_markdown(failure_text(e), "The upload")
    return gr.update(), gr.update()


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
        label = label_of(model_id)
        _example_failures[request.session_hash] = describe.error_markdown(failure_text(e), label)
        headline = html.escape(explain(failure_text(e)).headline)
        # No toast (visible=False): the status area says it, with what to do (after_example).
        raise gr.Error(headline, title=label, visible=False, print_exception=False) from e
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
        model_id: a catalog id such as cyclegan/horse2zebra, or custom/<name> for a model kept
            in the server's weights/custom/<name>/ (`img2img models` lists both).
        resolution: "fast" (computed at 256 px, resized back) or "full" (own size; tiled).
        seed: -1: deterministic; 0 .. 4294967295 (2^32 - 1): a dropout variation (pix2pix).

    Returns:
        The translated image, PNG.
    """
    if model_id == CUSTOM:
        raise gr.Error("your own model is for the page only: the API translates catalog ids")
    seed = parse_seed(seed, none_below_zero=True)
    try:
        out = _translate(image, model_id, resolution, seed, False, progress)[1]
    except Img2ImgError as e:
        raise gr.Error(public(str(e))) from e
    except failures()[2:] as e:
        raise gr.Error("Out of memory: try the fast 256 px resolution.") from e
    try:  # a file of its own, served as it is (_save_png)
        return _save_png(out, output_folder(), "img2img-" + model_id.replace("/", "-"))
    except OSError as e:
        raise gr.Error("The server's storage is full: try again later.") from e


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


PICKED_JS = picked_js("#model")


def create_event_handlers(c: dict, pickers=()) -> None:
    """Every event of the tab (all private: the API is /translate alone, `api`). The picker,
    the direction switch and the out-of-date note run in the browser (js, no server
    function). `pickers`: the other tabs' model pickers, refreshed with this one's marks."""
    private = dict(api_visibility="private")
    quiet = dict(api_visibility="private", show_progress="hidden")
    result_outputs = [c[k] for k in ("slider", "back", "download", "status", "result", "shown")]
    result_outputs.append(c["back_button"])
    notes = (c["examples_note"], c["example_rows"]) if c.get("examples") else None
    refreshed = refresh_event(c["model"], c["views"], c["card"], c["go"], pickers, notes) | quiet
    picked = dict(fn=None, inputs=None, outputs=c["picked"], js=PICKED_JS)
    c["demo"].load(**refreshed).then(**picked)
    c["model"].change(**picked)
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
    c["image"].upload(check_upload, c["image"], [c["image"], c["status"]], **quiet)
    job = dict(show_progress_on=c["slider"], **private)  # the status shows the estimate
    outputs = [*result_outputs, c["stop"]]
    run = c["go"].click(translate_ui, [*controls, c["custom"]], outputs, **job)
    back_inputs = [c["result"], c["resolution"], c["vary"], c["seed"]]
    again = c["back_button"].click(
        translate_back, back_inputs, [c["image"], c["model"], *outputs], **job
    )
    c["stop"].click(stop_ui, None, outputs, cancels=[run, again], queue=False, **private)
    for event in (run, again):
        event.then(**refreshed).then(**picked)
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


def create_ui(default: str, catalog: dict, demo: gr.Blocks) -> dict:
    """The tab's components (built inside a gr.Tab): controls on the left; the result, the
    session's state and the example rows on the right."""
    with gr.Row(equal_height=False):
        with gr.Column():
            c = controls_column(default)
        with gr.Column():
            c.update(result_column())
            c["stop"] = gr.Button("Stop", variant="stop", visible=False, elem_id="stop")
            c["demo"], c["result"], c["custom"] = demo, gr.State(None), gr.State(None)
            # What the browser's own events read: model views, your model, the result.
            c["views"] = gr.JSON(model_views(live=False), visible=False)
            c["mine"] = gr.JSON(None, visible=False)
            c["shown"] = gr.JSON(None, visible=False)
            c["example_rows"] = example_rows(catalog)
            c["examples"] = _examples(c, c["example_rows"])  # under the result
            c["examples_note"] = gr.Markdown(elem_id="examples-note")  # those that cannot run
    return c


def api(c: dict) -> None:
    """The documented API: (image, model_id[, resolution, seed]) -> PNG, at /translate."""
    # The models a client (an MCP agent reads the enum) can run: published catalog ids and
    # the deployer's models in <weights>/custom/ (at start), not the page-only "Your own
    # model" nor the unpublished ones. Other strings still reach
    # `translate` (allow_custom_value) and get its message.
    runnable = [(e.label, e.id) for e in load_catalog().values() if is_available(e)]
    runnable += [(f"Your model {i.split('/', 1)[1]}", i) for i in custom_ids()]  # on disk
    api_model = gr.Dropdown(
        runnable, value=c["model"].value, label="Model", allow_custom_value=True, visible=False
    )
    api_resolution = gr.Radio(["fast", "full"], value="fast", label="Resolution", visible=False)
    api_seed = seed_number(-1, label="Seed (-1: none; 0 .. 2^32 - 1)", visible=False)
    api_out = gr.Image(format="png", type="pil", label="Translated image", visible=False)
    api_inputs = [c["image"], api_model, api_resolution, api_seed]
    document_api(translate, api_inputs, api_out)
    gr.Button(visible=False).click(translate, api_inputs, api_out, api_name="translate")
