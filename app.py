"""img2img: the Gradio app. UI only; the work is done by img2img.inference.Translator.

Run `python app.py` (http://127.0.0.1:7860) or deploy as a Hugging Face Space (the README's
front matter). Three tabs, each one module with its components and events: Photo
(webui/photo.py: the picker, Fast / Full size, round trip, examples, your own model, the
/translate API), Video (webui/media.py) and Live (webui/live.py: the webcam as it
streams). The torch side is reached through one door, webui/engine.py, imported once in
its own thread right after launch (runtime.engine()).
Environment (the parts' docstrings have the rest):
    IMG2IMG_DEFAULT_MODEL, IMG2IMG_MAX_SIDE, IMG2IMG_MAX_MODELS, IMG2IMG_TMP_TTL,
    IMG2IMG_ALLOW_CUSTOM, IMG2IMG_MAX_CHECKPOINT_MB           webui/runtime.py
    IMG2IMG_MAX_FULL_MP, IMG2IMG_MAX_VIDEO_SECONDS / _MB / _MP  webui/media.py
    IMG2IMG_LIVE_SECONDS, IMG2IMG_LIVE_STREAMS, IMG2IMG_LIVE_EVERY  webui/live.py
    IMG2IMG_CONCURRENCY     requests processed at once (default 2) / IMG2IMG_QUEUE_SIZE (16)
    IMG2IMG_EXAMPLES_DIR    example inputs (default examples/; its examples.json names the
                            model each one pre-selects)
    IMG2IMG_MCP             0 turns off the MCP server (on by default: /gradio_api/mcp/, the
                            /translate endpoint as the tool `translate`; needs gradio[mcp])
plus the catalog's IMG2IMG_WEIGHTS_DIR, IMG2IMG_REPO_<ID>, IMG2IMG_HUB_NAMESPACE, HF_*.
On ZeroGPU (SPACES_ZERO_GPU=true; webui.runtime imports `spaces` before anything imports
torch) the default model and its reverse are put on cuda before launch (so `spaces` packs
them), each request is one @spaces.GPU call whose duration is computed from its work, and
torch.compile is refused (ZeroGPU does not support it).

Adding a tab: a module in webui/ built like webui/media.video_tab (its components and
events in one function, or create_ui + create_event_handlers like webui/photo.py), one
`with gr.Tab(...)` block in build_demo, and its model picker (if any) in `pickers`.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import gradio as gr
from huggingface_hub import constants
from starlette.middleware import Middleware

from img2img import Img2ImgError
from img2img.checkpoints.catalog import get_entry, load_catalog
from webui import photo
from webui.inputs import MAX_BODY, MAX_SEED, MAX_UPLOAD, TOO_LARGE
from webui.layout import CSS, TAGLINE
from webui.live import FRAMES_IN, live_tab
from webui.media import MAX_VIDEO_BYTES, video_tab
from webui.photo import _no_progress, translate, translate_ui
from webui.picker import model_choices, picked_js
from webui.runtime import (
    ALLOW_CUSTOM,
    DEFAULT_MODEL,
    MAX_CHECKPOINT_MB,
    ROOT,
    TMP_TTL_S,
    ZERO_GPU,
    translator,
)
from webui.serving import BodyCap, CountFrames

# Examples are cached at first use, per process: a restart with other weights starts afresh.
os.environ.setdefault("GRADIO_EXAMPLES_CACHE", tempfile.mkdtemp(prefix="img2img-examples-"))
__all__ = [
    "MAX_SEED",
    "MAX_UPLOAD",
    "_no_progress",
    "demo",
    "launch_kwargs",
    "mcp_server",
    "model_choices",
    "translate",
    "translate_ui",
    "translator",
]


def build_demo() -> gr.Blocks:
    catalog = load_catalog()
    default = DEFAULT_MODEL if DEFAULT_MODEL in catalog else next(iter(catalog))
    cleanup = (max(1, TMP_TTL_S // 4), TMP_TTL_S)  # Gradio prunes its upload/result cache
    with gr.Blocks(title="img2img · pix2pix & CycleGAN", delete_cache=cleanup) as demo:
        gr.Markdown(TAGLINE, elem_id="tagline")
        with gr.Tabs():
            with gr.Tab("Photo", id="photo"):
                c = photo.create_ui(default, catalog, demo)
            with gr.Tab("Video", id="video") as video_page:
                video = video_tab(default)
            with gr.Tab("Live", id="live") as live_page:
                live = live_tab(default)
        # The other pickers' full labels for phones, with the marks the page has by now.
        video_page.select(None, None, video["clip_picked"], js=picked_js("#clip-model"))
        live_page.select(None, None, live["live_picked"], js=picked_js("#live-model"))
        # Refreshed with the Photo tab's availability marks.
        pickers = [video["clip_model"], live["live_model"]]
        photo.create_event_handlers(c, pickers)
        photo.api(c)
    concurrency = int(os.environ.get("IMG2IMG_CONCURRENCY", 2))
    return demo.queue(
        default_concurrency_limit=concurrency,
        max_size=int(os.environ.get("IMG2IMG_QUEUE_SIZE", 16)),
    )


def mcp_server() -> bool:
    """MCP on unless IMG2IMG_MCP=0; without the `mcp` package (gradio[mcp]) the page is
    served alone, and the log says why."""
    if os.environ.get("IMG2IMG_MCP", "1").strip() == "0":
        return False
    if importlib.util.find_spec("mcp") is None:
        print("* MCP server off: the mcp package is missing (pip install 'gradio[mcp]')")
        return False
    return True


def launch_kwargs() -> dict:
    """No file access beyond Gradio's own: block the repo, weights and caches explicitly.
    Uploads may be as large as a checkpoint when visitors can load their own model; photos
    keep their own cap (_raw_upload), and other request bodies are capped at MAX_BODY."""
    blocked = [ROOT, Path(constants.HF_HOME), Path.home() / ".cache", Path("/etc")]
    upload = max(MAX_UPLOAD, MAX_VIDEO_BYTES, MAX_CHECKPOINT_MB * 10**6 if ALLOW_CUSTOM else 0)
    cap = Middleware(BodyCap, limit=MAX_BODY, message=TOO_LARGE)
    frames = Middleware(CountFrames, frames=FRAMES_IN)  # the Live tab's dropped frames
    return dict(
        max_file_size=upload,
        blocked_paths=[str(p) for p in blocked],
        show_error=False,
        theme=gr.themes.Soft(),
        css=CSS,
        app_kwargs={"middleware": [cap, frames]},
        mcp_server=mcp_server(),
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
