"""The page's layout: the tagline, the Photo tab's two columns, the example rows' files, and
the /translate endpoint's documentation (components only; app.py wires the events)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import gradio as gr
from gradio.utils import get_function_description

from img2img.checkpoints.catalog import get_entry

from .inputs import MAX_SEED, raw_image, seed_number
from .media import FULL_MP
from .own_model import custom_inputs
from .picker import model_card, model_choices
from .runtime import ALLOW_CUSTOM, DEFAULT_MODEL, ROOT

EXAMPLES_DIR = Path(os.environ.get("IMG2IMG_EXAMPLES_DIR", ROOT / "examples"))


def document_api(fn, inputs: list, output) -> None:
    """Parameter descriptions in /gradio_api/info and view_api(): Gradio reads them from each
    input component's schema (additional_description), not from the docstring, so the
    docstring's Args are copied there; the output gets its Returns line."""
    _, params, returns = get_function_description(fn)
    for component, text in zip(inputs, params.values(), strict=False):
        schema = {**component.api_info_as_input(), "additional_description": text}
        component.api_info_as_input = lambda schema=schema: schema
    schema = {**output.api_info_as_output(), "description": " ".join(returns)}
    output.api_info_as_output = lambda: schema


TAGLINE = (
    "# img2img\nPhotos and short videos through the original **pix2pix** and **CycleGAN** "
    "generators: night → day, satellite ↔ map, labels → facade, horse ↔ zebra, summer ↔ "
    "winter, photo ↔ painting."
)


# On a phone the result is below the controls: bring it into view once it is there.
SHOW_RESULT = """() => { if (window.innerWidth < 768)
    document.querySelector('#slider')?.scrollIntoView({behavior: 'smooth', block: 'start'}); }"""


CSS = """
#tagline h1 { margin: 0 0 0.2em 0; }
#tagline p { margin: 0; }
#status details { margin-top: 0.3em; }
#model-picked, #clip-model-picked, #live-model-picked { display: none; }
@media (max-width: 640px) {
  #model-picked, #clip-model-picked, #live-model-picked {
    display: block; font-size: 0.9em; margin-top: -0.4em;
  }
}
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


def controls_column(default: str) -> dict:
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
    # allow_custom_value: Gradio checks a value against the choices the page was built with,
    # and one of your models added to weights/custom/ since then is listed by the refresh; the
    # handlers check every value themselves (an unknown id gets "did you mean ...").
    c["model"] = gr.Dropdown(
        model_choices(live=False),
        value=default,
        label="Model",
        elem_id="model",
        allow_custom_value=True,
    )
    # On a phone the picker's one-line box cuts the label (and its mark): it is repeated in
    # full under it (CSS shows it on narrow screens only; photo.PICKED_JS fills it).
    c["picked"] = gr.Markdown("", elem_id="model-picked")
    with gr.Group(visible=False, elem_id="custom-box") as c["custom_box"]:
        if ALLOW_CUSTOM:  # else an empty, hidden group: nothing of it reaches the page
            c.update(custom_inputs())
    resolutions = [("Fast · 256 px", "fast"), (f"Full size · up to {FULL_MP:g} MP", "full")]
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


def result_column() -> dict:
    c = {}
    c["slider"] = gr.ImageSlider(
        label="Before / after",
        format="png",
        type="filepath",
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
