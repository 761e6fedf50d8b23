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
import os  # noqa: E402
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
MAX_UPLOAD = "20mb"
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


def on_model_change(model_id: str):
    e = get_entry(model_id)
    pair, pix2pix = e.reverse is not None, e.family == "pix2pix"  # pix2pix nets have dropout
    return (
        model_card(model_id),
        gr.update(visible=pair),
        gr.update(visible=pair, value=False),
        gr.update(visible=pix2pix),
    )


def reverse_model(model_id: str) -> str:
    return get_entry(model_id).reverse or model_id


# ---------------------------------------------------------------------------- translation


def _decode(upload) -> Image.Image:
    if upload is None:
        raise gr.Error("Upload a photo first (drop a file, paste, or use the webcam).")
    from img2img.processing import open_image, working_size

    img = open_image(upload)
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
        raise gr.Error(str(e)) from e
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
    seed = int(seed or 0) if vary else None
    img, out, back, status = _translate(upload, model_id, resolution, seed, round_trip, progress)
    try:
        download = _save_png(out)
    except OSError:  # e.g. the server's disk is full: show the result, skip the file
        download = None
        status += " · PNG download unavailable (server storage is full)"
    return (img, out), gr.update(value=back, visible=back is not None), download, status


def translate(image, model_id, resolution="fast", seed=-1, progress=TRACK_PROGRESS):
    """API: translate `image` with catalog model `model_id`; returns the PNG.

    resolution: "fast" (256 px working size) or "full" (the photo's own size, capped);
    seed: -1 for the deterministic output, >= 0 for a seeded dropout variation (pix2pix).
    """
    seed = None if seed is None or seed < 0 else int(seed)
    return _translate(image, model_id, resolution, seed, False, progress)[1]


# ---------------------------------------------------------------------------- layout


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
                    seed = gr.Number(0, precision=0, minimum=0, label="Seed")
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
        examples = (
            sorted(
                p
                for p in EXAMPLES_DIR.glob("*")
                if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"}
            )
            if EXAMPLES_DIR.is_dir()
            else []
        )
        if examples:
            gr.Examples([[str(p)] for p in examples], inputs=[image], cache_examples=False)
        model.change(
            on_model_change, model, [card, swap, round_trip, variation], api_visibility="private"
        )
        swap.click(reverse_model, model, model, api_visibility="private")
        go.click(
            translate_ui,
            [image, model, resolution, vary, seed, round_trip],
            [slider, back, download, status],
            api_visibility="private",
        )
        # The documented API: (image, model_id[, resolution, seed]) -> PNG.
        api_resolution = gr.Radio(resolutions, value="fast", label="Resolution", visible=False)
        api_seed = gr.Number(-1, precision=0, label="Seed (-1: none)", visible=False)
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
    """No file access beyond Gradio's own: block the repo, weights and caches explicitly."""
    from huggingface_hub import constants

    blocked = [ROOT, Path(constants.HF_HOME), Path.home() / ".cache", Path("/etc")]
    return dict(
        max_file_size=MAX_UPLOAD,
        blocked_paths=[str(p) for p in blocked],
        show_error=False,
        theme=gr.themes.Soft(),
    )


demo = build_demo()

if __name__ == "__main__":
    # Serve the page first, then load torch and pick the device while the visitor uploads.
    demo.launch(prevent_thread_lock=True, **launch_kwargs())
    ready = translator()
    print(f"* Inference ready on {ready.device} ({ready.plan.describe()})", flush=True)
    demo.block_thread()
