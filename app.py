"""img2img: the Gradio app. UI only; the work is done by img2img.inference.Translator.

Run `python app.py` (http://127.0.0.1:7860) or deploy as a Hugging Face Space (the README's
front matter). Environment:
    IMG2IMG_DEFAULT_MODEL   model shown first (default pix2pix/night2day)
    IMG2IMG_MAX_SIDE        largest output side in pixels (default 1024)
    IMG2IMG_MAX_MODELS      generators kept in memory (default 4)
    IMG2IMG_CONCURRENCY     requests processed at once (default 2) / IMG2IMG_QUEUE_SIZE (16)
    IMG2IMG_EXAMPLES_DIR    folder of example photos shown under the input (default examples/)
    IMG2IMG_TMP_TTL         seconds uploads and results stay on disk (default 3600)
plus the catalog's IMG2IMG_WEIGHTS_DIR, IMG2IMG_REPO_<ID>, IMG2IMG_HUB_NAMESPACE, HF_*.
"""

from __future__ import annotations

try:  # ZeroGPU: `spaces` must be imported before torch; elsewhere GPU() is a no-op
    import spaces

    gpu = spaces.GPU(duration=60)
except ImportError:

    def gpu(fn):
        return fn


import base64  # noqa: E402
import binascii  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
from PIL import Image  # noqa: E402

from img2img import Img2ImgError  # noqa: E402
from img2img.catalog import get_entry, grouped, is_available, load_catalog  # noqa: E402

ROOT = Path(__file__).resolve().parent
MAX_SIDE = int(os.environ.get("IMG2IMG_MAX_SIDE", 1024))
MAX_UPLOAD = 20 * 1024**2  # bytes: Gradio's max_file_size, and every other way an image comes in
# Decoded-size cap handed to open_image: room for the 48-50 MP photos that fit MAX_UPLOAD, at
# most ~200 MB of RGBA per decode, and only IMG2IMG_CONCURRENCY decodes run at once.
MAX_PIXELS = 50_000_000
# Request bodies other than Gradio's multipart upload: a MAX_UPLOAD image as base64, plus room.
MAX_BODY = 4 * -(-MAX_UPLOAD // 3) + 64 * 1024
MAX_SEED = 2**32 - 1  # = img2img.inference.MAX_SEED (torch keeps 32 bits; torch-free here)
FAST_SIZE = 256
DEFAULT_MODEL = os.environ.get("IMG2IMG_DEFAULT_MODEL", "pix2pix/night2day")
EXAMPLES_DIR = Path(os.environ.get("IMG2IMG_EXAMPLES_DIR", ROOT / "examples"))
OUTPUT_DIR = Path(tempfile.gettempdir()) / "img2img-outputs"
TMP_TTL_S = int(os.environ.get("IMG2IMG_TMP_TTL", 3600))  # uploads and results kept this long

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
            from img2img.inference import Translator

            _translator = Translator(max_models=int(os.environ.get("IMG2IMG_MAX_MODELS", 4)))
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


class BodyCap:
    """ASGI middleware: a request body over `limit` bytes gets 413 before Gradio reads it.

    Gradio reads an event's JSON whole, parses it and keeps its values in the session before
    any event code runs: six refused 119 MB inline images still took the server from 0.8 to
    3.3 GB. Its multipart upload route (max_file_size, checked as it streams) is exempt.
    """

    def __init__(self, app, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].rstrip("/").endswith("/gradio_api/upload"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:  # the HTTP server passes on no more than is declared
            if declared.isdigit() and int(declared) <= self.limit:
                return await self.app(scope, receive, send)
            return await self._refuse(receive, send)
        if b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            return await self.app(scope, receive, send)  # no body
        messages, seen = [{"more_body": True}], 0  # chunked: read it here, up to the cap
        while messages[-1].get("more_body"):
            messages.append(await receive())
            seen += len(messages[-1].get("body", b""))
            if seen > self.limit:
                return await self._refuse(receive, send)
        replay = iter(messages[1:])

        async def replayed():
            return next(replay, None) or await receive()

        return await self.app(scope, replayed, send)

    async def _refuse(self, receive, send) -> None:
        # Read the rest (bounded, nothing kept) so that the client gets the answer rather
        # than a broken pipe while it is still sending.
        drained, message = 0, {"more_body": True}
        while message.get("more_body") and drained < 16 * self.limit:
            message = await receive()
            drained += len(message.get("body", b""))
        body = json.dumps(
            {"detail": f"Request too large: images are limited to {MAX_UPLOAD // 2**20} MB."}
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------- catalog view


def model_choices() -> list[tuple[str, str]]:
    """(label, id) pairs, grouped by task, for the model picker."""
    choices = []
    for task, entries in grouped().items():
        for e in entries:
            soon = "" if is_available(e) else " (not yet published)"
            choices.append((f"{task} · {e.label}{soon}", e.id))
    return choices


def model_card(model_id: str) -> str:
    e = get_entry(model_id)
    source = e.sources[0].describe() if e.sources else f"set {e.env_var} (trained with train.py)"
    lines = [
        f"**{e.label}** · `{e.id}` · {e.family}",
        f"- Expects: {e.expects}",
        f"- Trained on: {e.dataset}",
        f"- Weights: {source}",
        f"- License: {e.license}",
    ]
    if e.reverse:
        lines.append(f"- Reverse direction: `{e.reverse}`")
    if e.uses_batchnorm:
        lines.append("- BatchNorm uses each photo's own statistics (as the official results)")
    return "\n".join(lines)


def _model_views_js() -> tuple[str, str]:
    """The picker's events, run in the browser: there is nothing of them to call on the
    server (Gradio refuses an event without a backend function), so the UI exposes no
    internal API beyond its translate event. Returns (on model change, on swap)."""
    views = {
        e.id: {
            "card": model_card(e.id),
            "pair": e.reverse is not None,
            "pix2pix": e.family == "pix2pix",  # pix2pix nets have dropout
            "reverse": e.reverse or e.id,
        }
        for e in load_catalog().values()
    }
    table = json.dumps(views, ensure_ascii=True)
    change = f"""(id) => {{
        const m = {table}[id];
        if (!m) return [];
        const show = (visible, rest) => ({{__type__: "update", visible, ...rest}});
        return [m.card, show(m.pair), show(m.pair, {{value: false}}), show(m.pix2pix)];
    }}"""
    swap = f"(id) => ({table}[id] || {{reverse: id}}).reverse"
    return change, swap


# ---------------------------------------------------------------------------- translation


def _decode(upload) -> Image.Image:
    if upload is None:
        raise gr.Error("Upload a photo first (drop a file, paste, or use the webcam).")
    from img2img.processing import open_image, working_size

    img = open_image(upload, max_pixels=MAX_PIXELS)
    if max(img.size) > MAX_SIDE:  # outputs never exceed MAX_SIDE: keep responses light
        img = img.resize(working_size(img.size, MAX_SIDE), Image.LANCZOS)
    return img


def _load(model_id: str, progress: gr.Progress) -> float:
    """Load (downloading if needed) and return the seconds it took (0 when cached)."""
    t = translator()
    if t.is_loaded(model_id):
        return 0.0
    progress(0, desc=f"Loading {model_id} (first use)")
    start = time.perf_counter()
    t.load(model_id)
    return time.perf_counter() - start


@gpu
def _run(model_id: str, img: Image.Image, size: int | None, seed: int | None) -> Image.Image:
    return translator().translate(model_id, [img], size=size, seed=seed)[0]


def _save_png(img: Image.Image) -> str:
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
    path = folder / "img2img.png"
    img.save(path, format="PNG")
    return str(path)


def _path_roots() -> list[tuple[str, str]]:
    """Server folders an error message may name, each with the placeholder sent instead,
    longest first (the HF cache lies in HF_HOME, which may lie in the home folder)."""
    from huggingface_hub import constants

    from img2img.catalog import weights_dir
    from img2img.download import cache_dir

    roots = {
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
    pairs = {}
    for name, path in roots.items():
        for spelling in (str(path.absolute()), str(path.resolve())):
            pairs.setdefault(spelling.rstrip("/"), name)
    return sorted(pairs.items(), key=lambda p: -len(p[0]))


# Whatever absolute path is left: keep its last part (not inside URLs or placeholders).
_ABSOLUTE = re.compile(r"(?<![\w:/.<>~-])/(?:[^\s/'\"`]+/)+")


def public_message(text: str) -> str:
    """`text` without absolute server paths: it goes to API clients (the log keeps all)."""
    for path, name in _path_roots():
        if path:
            text = text.replace(path, name)
    return _ABSOLUTE.sub("…/", text)


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


def _translate(upload, model_id, resolution, seed, round_trip, progress):
    """Shared by the UI and the API: returns (input, output, reconstruction, status)."""
    import torch

    try:
        img = _decode(upload)
        entry = get_entry(model_id)
        load_s = _load(model_id, progress)
        if round_trip and entry.reverse:
            load_s += _load(entry.reverse, progress)
        size = FAST_SIZE if resolution == "fast" else None
        progress(0.5, desc="Translating")
        start = time.perf_counter()
        out = _run(model_id, img, size, seed)
        back = _run(entry.reverse, out, size, seed) if round_trip and entry.reverse else None
        run_s = time.perf_counter() - start
    except Img2ImgError as e:
        raise gr.Error(public_message(str(e))) from e
    except torch.OutOfMemoryError as e:
        raise gr.Error("Out of memory: try the fast 256 px resolution.") from e
    t = translator()
    status = (
        f"{out.width}×{out.height} px in **{run_s:.2f} s** on `{t.device}` "
        f"({t.plan.describe()})"
        + (f" · model loaded in {load_s:.1f} s" if load_s >= 0.05 else "")
        + (f" · seed {seed}" if seed is not None else "")
    )
    return img, out, back, status


def translate_ui(
    upload,
    model_id,
    resolution,
    vary,
    seed,
    round_trip,
    progress=TRACK_PROGRESS,
):
    seed = _seed(0 if seed is None else seed, none_below_zero=False) if vary else None
    img, out, back, status = _translate(upload, model_id, resolution, seed, round_trip, progress)
    try:
        download = _save_png(out)
    except OSError:  # e.g. the server's disk is full: show the result, skip the file
        download = None
        status += " · PNG download unavailable (server storage is full)"
    return (img, out), gr.update(value=back, visible=back is not None), download, status


def translate(image, model_id, resolution="fast", seed=-1, progress=TRACK_PROGRESS):
    """API: translate `image` with catalog model `model_id`; returns the PNG.

    image: a file of at most 20 MB and 50 megapixels (an upload, or a base64 data URL);
    resolution: "fast" (256 px working size) or "full" (the photo's own size, capped);
    seed: -1 for the deterministic output, or a whole number from 0 to 2^32 - 1 for a seeded
    dropout variation (pix2pix); anything else is refused.
    """
    seed = _seed(seed, none_below_zero=True)
    return _translate(image, model_id, resolution, seed, False, progress)[1]


# ---------------------------------------------------------------------------- layout


def example_rows(catalog, default: str) -> list[list[str]]:
    """[photo, model id] per example: examples/examples.json names each file's model (and
    licence); other images in the folder pick no model. Missing folder: no examples."""
    if not EXAMPLES_DIR.is_dir():
        return []
    record = EXAMPLES_DIR / "examples.json"
    models = {}
    if record.is_file():
        models = {e["file"]: e["model"] for e in json.loads(record.read_text(encoding="utf-8"))}
    rows = []
    for p in sorted(EXAMPLES_DIR.iterdir()):
        if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"}:
            model_id = models.get(p.name)
            rows.append([str(p), model_id if model_id in catalog else default])
    return rows


def build_demo() -> gr.Blocks:
    catalog = load_catalog()
    default = DEFAULT_MODEL if DEFAULT_MODEL in catalog else next(iter(catalog))
    resolutions = [("Fast · 256 px", "fast"), (f"Full size · up to {MAX_SIDE} px", "full")]
    cleanup = (max(1, TMP_TTL_S // 4), TMP_TTL_S)  # Gradio prunes its upload/result cache
    with gr.Blocks(title="img2img · pix2pix & CycleGAN", delete_cache=cleanup) as demo:
        gr.Markdown(
            "# img2img\nTranslate a photo with the original **pix2pix** and **CycleGAN** "
            "generators: night → day, satellite ↔ map, labels → facade, horse ↔ zebra, "
            "summer ↔ winter, photo ↔ painting. Your photo keeps its aspect ratio and size."
        )
        with gr.Row():
            with gr.Column():
                image = raw_image(
                    label="Photo",
                    sources=["upload", "webcam", "clipboard"],
                    type="filepath",
                    image_mode=None,
                    format="png",
                    elem_id="input-image",
                )
                model = gr.Dropdown(model_choices(), value=default, label="Model", elem_id="model")
                card = gr.Markdown(model_card(default), elem_id="model-card")
                pair = get_entry(default).reverse is not None
                with gr.Row():
                    swap = gr.Button("⇄ Reverse direction", size="sm", visible=pair)
                    round_trip = gr.Checkbox(label="Round trip A → B → A", visible=pair)
                resolution = gr.Radio(resolutions, value="fast", label="Resolution")
                with gr.Row(visible=get_entry(default).family == "pix2pix") as variation:
                    vary = gr.Checkbox(label="Dropout variation (pix2pix)")
                    seed = seed_number(0, minimum=0, maximum=MAX_SEED, label="Seed")
                go = gr.Button("Translate", variant="primary", elem_id="go")
            with gr.Column():
                slider = gr.ImageSlider(label="Before / after", format="png", elem_id="slider")
                back = gr.Image(
                    label="Round trip: back to A",
                    format="png",
                    visible=False,
                    interactive=False,
                    elem_id="round-trip",
                )
                download = gr.DownloadButton("Download PNG", elem_id="download")
                status = gr.Markdown(elem_id="status")
        rows = example_rows(catalog, default)
        if rows:
            gr.Examples(
                rows,
                inputs=[image, model],
                cache_examples=False,  # no weights needed to build the page
                api_visibility="private",
                label="Examples (each picks its model; sources and licences: examples/LICENSES.md)",
            )
        on_change_js, on_swap_js = _model_views_js()
        model.change(None, model, [card, swap, round_trip, variation], js=on_change_js)
        swap.click(None, model, model, js=on_swap_js)
        go.click(
            translate_ui,
            [image, model, resolution, vary, seed, round_trip],
            [slider, back, download, status],
            api_visibility="private",
        )
        # The documented API: (image, model_id[, resolution, seed]) -> PNG.
        api_resolution = gr.Radio(resolutions, value="fast", label="Resolution", visible=False)
        api_seed = seed_number(-1, label="Seed (-1: none; 0 .. 2^32 - 1)", visible=False)
        api_out = gr.Image(format="png", type="pil", visible=False)
        gr.Button(visible=False).click(
            translate, [image, model, api_resolution, api_seed], api_out, api_name="translate"
        )
    concurrency = int(os.environ.get("IMG2IMG_CONCURRENCY", 2))
    return demo.queue(
        default_concurrency_limit=concurrency,
        max_size=int(os.environ.get("IMG2IMG_QUEUE_SIZE", 16)),
    )


def launch_kwargs() -> dict:
    """No file access beyond Gradio's own: block the repo, weights and caches explicitly;
    no request body over MAX_BODY (but uploads, capped at MAX_UPLOAD by Gradio itself)."""
    from huggingface_hub import constants
    from starlette.middleware import Middleware

    blocked = [ROOT, Path(constants.HF_HOME), Path.home() / ".cache", Path("/etc")]
    return dict(
        max_file_size=MAX_UPLOAD,
        blocked_paths=[str(p) for p in blocked],
        show_error=False,
        theme=gr.themes.Soft(),
        app_kwargs={"middleware": [Middleware(BodyCap)]},
    )


demo = build_demo()

if __name__ == "__main__":
    # Serve the page first, then load torch and pick the device while the visitor uploads.
    demo.launch(prevent_thread_lock=True, **launch_kwargs())
    ready = translator()
    print(f"* Inference ready on {ready.device} ({ready.plan.describe()})", flush=True)
    demo.block_thread()
