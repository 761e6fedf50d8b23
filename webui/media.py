"""Big pictures and moving pictures in the app: full-size photos in tiles, and short videos.

Full size: a photo whose long side is over IMG2IMG_MAX_SIDE is computed at its own
resolution, in one piece when the untiled forward fits the memory budget, else in overlapping
windows (img2img.media.tiles.translate_full, statistics shared across the image), up to
IMG2IMG_MAX_FULL_MP megapixels (default 13: a 12 MP phone photo); a larger one is downscaled
to that, and the status says so. Tiled, memory is bounded by the window.

Video: a clip of at most IMG2IMG_MAX_VIDEO_SECONDS (default 10), IMG2IMG_MAX_VIDEO_MB
(default 50) and IMG2IMG_MAX_VIDEO_MP megapixels per frame (default 2.1: 1080p) is
translated frame by frame (img2img.media.video: statistics shared across frames, audio copied,
same frame count and timestamps, turned upright, yuv420p) into an MP4. The caps are checked
from the container's header before a frame is decoded, and the length cap again by the decode
loop (a header may declare no duration, or lie). On ZeroGPU the whole clip is one @spaces.GPU
call whose duration comes from its frames; a clip whose estimate is over MAX_GPU_SECONDS is
refused up front.

Both long paths stop when the client has gone (cancel.client_gone, asked per frame and per
batch of tiles); nothing is written then.
"""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path

import gradio as gr

from img2img import Cancelled, VideoLimitError
from img2img.checkpoints.catalog import get_entry

from . import cancel, describe
from .messages import as_dict, failure_text, failures
from .own_model import custom_inputs, load_custom
from .picker import is_stored, label_of, model_choices, picked_js, refuse_unpublished
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

FULL_MP = float(os.environ.get("IMG2IMG_MAX_FULL_MP", 13))
MAX_FULL_PIXELS = int(FULL_MP * 1e6)
MAX_VIDEO_SECONDS = float(os.environ.get("IMG2IMG_MAX_VIDEO_SECONDS", 10))
MAX_VIDEO_BYTES = int(float(os.environ.get("IMG2IMG_MAX_VIDEO_MB", 50)) * 2**20)
MAX_VIDEO_PIXELS = int(float(os.environ.get("IMG2IMG_MAX_VIDEO_MP", 2.1)) * 1e6)
# ZeroGPU reservation: a fixed part (the transfer, cuDNN's tuning of the shape, the encoder
# start) plus seconds per megapixel of frames computed; a generous guess, never measured
# on ZeroGPU (no GPU was lent while this was written), and refused above MAX_GPU_SECONDS.
GPU_FIXED_S, GPU_S_PER_MP, MAX_GPU_SECONDS = 15, 1.0, 120
TRACK_PROGRESS = gr.Progress(track_tqdm=True)


# ---------------------------------------------------------------------------- full size


def full_size(size: tuple[int, int]) -> tuple[tuple[int, int], bool]:
    """(size to compute at, tiled?) for the "Full size" option: whole up to MAX_SIDE, else
    tiles at the photo's own size, downscaled only above MAX_FULL_PIXELS."""
    w, h = size
    if max(w, h) <= MAX_SIDE:
        return size, False
    if w * h <= MAX_FULL_PIXELS:
        return size, True
    scale = math.sqrt(MAX_FULL_PIXELS / (w * h))
    return (max(1, int(w * scale)), max(1, int(h * scale))), True


# ---------------------------------------------------------------------------- video


def raw_video(**kwargs) -> gr.Video:
    """gr.Video whose preprocess hands our code the uploaded path, after the byte cap (no
    conversion: Gradio's own would call ffmpeg; PyAV reads every container we accept)."""
    component = gr.Video(**kwargs)

    def preprocess(payload):
        if payload is None:
            return None
        if not payload.path or not os.path.isfile(payload.path):
            raise gr.Error("Upload the clip as a file (mp4, mov, mkv, webm or avi).")
        if (size := os.path.getsize(payload.path)) > MAX_VIDEO_BYTES:
            raise gr.Error(
                f"The clip is {size / 2**20:.1f} MB, over the {MAX_VIDEO_BYTES / 2**20:.0f} MB "
                "limit (IMG2IMG_MAX_VIDEO_MB)."
            )
        return payload.path

    component.preprocess = preprocess  # an instance override, as in inputs.raw_image
    return component


def _check_clip(clip: str | None):
    """The clip's header, refused before decoding when it breaks a cap."""
    if not clip:
        raise gr.Error("Upload a short clip first (mp4, mov, mkv, webm or avi).")
    info = engine().probe_video(clip)  # VideoError for a corrupt or unsupported file
    name = Path(clip).name
    if info.seconds > MAX_VIDEO_SECONDS:
        raise gr.Error(
            f"{name} lasts {info.seconds:.1f} s, over this app's {MAX_VIDEO_SECONDS:g} s limit. "
            "What you can do: trim it, or use the command line (`img2img translate clip.mp4`)"
        )
    if info.width * info.height > MAX_VIDEO_PIXELS:
        raise gr.Error(
            f"{name} frames are {info.width}x{info.height}, over this app's "
            f"{MAX_VIDEO_PIXELS / 1e6:g} MP limit. What you can do: downscale it first"
        )
    return info


def _work_size(info, resolution: str) -> int:
    return FAST_SIZE if resolution == "fast" else min(MAX_SIDE, max(info.width, info.height))


def _clip_seconds(size: int, frames: int, aspect: float) -> int:
    """ZeroGPU seconds for one clip, from the megapixels its frames compute."""
    w = size if aspect >= 1 else size * aspect
    h = size / aspect if aspect >= 1 else size
    return math.ceil(GPU_FIXED_S + GPU_S_PER_MP * frames * w * h / 1e6)


def clip_gpu_seconds(key: str, clip: str, dst: str, size: int, frames: int, aspect: float) -> int:
    """@spaces.GPU's duration for _run_clip (called with _run_clip's arguments)."""
    return _clip_seconds(size, frames, aspect)


@gpu(duration=clip_gpu_seconds)
def _run_clip(key: str, clip: str, dst: str, size: int, frames: int, aspect: float):
    """The whole clip in one GPU reservation: decode, translate, encode, as a stream; the
    decode loop holds it to MAX_VIDEO_SECONDS and stops it when the client has gone."""
    return engine().translate_video(
        translator(),
        key,
        clip,
        dst,
        size=size,
        max_seconds=MAX_VIDEO_SECONDS,
        should_stop=cancel.should_stop(getattr(_stop, "flag", None)),
        codec="h264",  # what every browser plays (the CLI keeps the input's codec)
    )


def _clip_model(model_id: str, custom) -> tuple[str, str, str]:
    """(Translator key, label, file-name part) of the Video tab's model: a catalog id, one of
    your models kept on disk, or your own model loaded in this tab (refused until it is)."""
    if model_id == CUSTOM:
        custom = as_dict(custom)
        if not ALLOW_CUSTOM or not custom:
            raise gr.Error(
                "your own model is not loaded yet. What you can do: give a Hub repo id or "
                "upload a checkpoint file, then press Load my model"
            )
        return custom["key"], f"Your model ({custom['name']})", "own"
    if is_stored(model_id):
        return model_id, label_of(model_id), model_id.replace("/", "-")
    entry = get_entry(model_id)
    refuse_unpublished(entry)
    return entry.id, entry.label, entry.id.replace("/", "-")


_stop = threading.local()  # the Stop flag of the clip this thread translates


def _time_clip(key: str, size: int, frames: int, aspect: float):
    """The clip's estimate from this machine's measured speed (a first guess before any
    clip ran), refused when over IMG2IMG_MAX_JOB_SECONDS; None on ZeroGPU."""
    if ZERO_GPU:
        return None
    t, lib = translator(), engine()
    frame = (size, round(size / aspect)) if aspect >= 1 else (round(size * aspect), size)
    one = lib.estimate(t, key, "fast" if size == FAST_SIZE else "whole", frame, guess=True)
    total = lib.Estimate(one.seconds * frames, one.measured)
    todo = "choose Fast · 256 px, or a shorter clip; or use the command line (`img2img translate`)"
    lib.check_job(total, max_job_seconds(t.device), todo + ", or raise IMG2IMG_MAX_JOB_SECONDS")
    return total


def show_stop():
    return gr.update(visible=True)


def hide_stop():
    return gr.update(visible=False)


def stop_clip(request: gr.Request):
    """The Video tab's Stop: the clip's worker stops before its next frame; nothing kept."""
    cancel.ask_stop(getattr(request, "session_hash", None), "video")
    return None, "**Stopped.** The server stopped computing; nothing of the clip is kept."


def translate_clip(
    clip, model_id, resolution, custom=None, progress=TRACK_PROGRESS, request: gr.Request = None
):
    """The Video tab: (MP4 path or None, status). A failure clears the output."""
    session = getattr(request, "session_hash", None)
    _stop.flag = flag = cancel.start_job(session, "video")
    try:
        key, label, tag = _clip_model(model_id, custom)
        info = _check_clip(clip)
        size = _work_size(info, resolution)
        # No declared length: the most the decode loop lets through.
        frames = info.frames or math.ceil((info.seconds or MAX_VIDEO_SECONDS) * float(info.fps))
        aspect = info.width / info.height
        if ZERO_GPU and _clip_seconds(size, frames, aspect) > MAX_GPU_SECONDS:
            raise gr.Error(
                "this clip needs more GPU time than one request may take here. What you can "
                "do: choose Fast · 256 px, or a shorter clip"
            )
        progress(0, desc=f"Loading {label}")
        translator().load(key)
        estimate = _time_clip(key, size, frames, aspect)
        if estimate is not None:
            progress(0, desc=f"Translating {frames} frames: {estimate.words()}")
        dst = output_folder() / f"{Path(clip).stem[:60]}-{tag}.mp4"
        start = time.perf_counter()
        written = _run_clip(key, clip, str(dst), size, frames, aspect)
        seconds = time.perf_counter() - start
        mode = "fast" if size == FAST_SIZE else "whole"
        engine().observe(
            translator(), key, mode, seconds / max(written.frames, 1), (size, size / aspect)
        )
        summary = _clip_summary(label, model_id, info, written, size, seconds)
        if estimate is not None:
            summary += f"\n\nEstimated {estimate.words()} before it ran."
        return str(dst), summary
    except VideoLimitError as e:  # found while decoding: the header check let it through
        error = gr.Error(f"{e}. What you can do: trim it, or use the command line")
        return None, describe.error_markdown(failure_text(error), label_of(model_id))
    except Cancelled as e:  # Stop (its own event says so), or nobody is left to read it
        print(f"* {e}", flush=True)
        return None, "**Stopped.**" if flag.is_set() else ""
    except failures() as e:
        label = label_of(model_id) if model_id else "Video"
        return None, describe.error_markdown(failure_text(e), label)
    finally:
        cancel.end_job(session, "video", flag)
        _stop.flag = None


def _clip_summary(label: str, model_id: str, info, written, size: int, seconds: float) -> str:
    t = translator()
    audio = "audio copied" if written.audio else "no audio"
    if info.rotation:
        audio += f", turned upright ({info.rotation}° display matrix)"
    return (
        f"**{describe.md(label)}**{'' if model_id == CUSTOM else f' (`{model_id}`)'} · "
        f"{written.frames} frames at "
        f"{float(written.fps):g} fps, {written.width}×{written.height} px, {audio} · "
        f"**{seconds:.1f} s** on `{t.device}` ({t.plan.describe()})\n\n"
        f"Each frame computed at {size} px on the long side, normalised with statistics shared "
        "across frames (no flicker from frame to frame)."
    )


def video_tab(default: str) -> dict:
    """The Video tab's components (built inside a gr.Tab) and its one event."""
    c = {}
    with gr.Row(equal_height=False):
        with gr.Column():
            c["clip"] = raw_video(
                label=f"Clip (up to {MAX_VIDEO_SECONDS:g} s, {MAX_VIDEO_BYTES // 2**20} MB)",
                sources=["upload"],
                height=300,
                elem_id="clip",
            )
            model_picker(c, "clip", default)
            with gr.Row(equal_height=True):
                sizes = [("Fast · 256 px", "fast"), (f"Own size · up to {MAX_SIDE} px", "full")]
                c["clip_resolution"] = gr.Radio(sizes, value="fast", label="Resolution", scale=2)
                c["clip_go"] = gr.Button("Translate video", variant="primary", elem_id="clip-go")
                c["clip_stop"] = gr.Button(
                    "Stop", variant="stop", visible=False, elem_id="clip-stop"
                )
        with gr.Column():
            c["clip_out"] = gr.Video(
                label="Result", interactive=False, height=360, elem_id="clip-out"
            )
            c["clip_status"] = gr.Markdown(elem_id="clip-status")
    private = dict(api_visibility="private", queue=False, show_progress="hidden")
    shown = c["clip_go"].click(show_stop, None, c["clip_stop"], **private)
    run = shown.then(
        translate_clip,
        [c["clip"], c["clip_model"], c["clip_resolution"], c["clip_custom"]],
        [c["clip_out"], c["clip_status"]],
        api_visibility="private",
    )
    run.then(hide_stop, None, c["clip_stop"], **private)
    stopped = c["clip_stop"].click(
        stop_clip, None, [c["clip_out"], c["clip_status"]], cancels=[run], **private
    )
    stopped.then(hide_stop, None, c["clip_stop"], **private)
    wire_model_picker(c, "clip")
    return c


def model_picker(c: dict, prefix: str, default: str) -> None:
    """The Video and Live tabs' model picker into `c` under `<prefix>_…` keys (elem ids
    `<prefix>-…`): the dropdown (allow_custom_value: as the Photo tab's), the picked label
    repeated for phones (CSS), and "Your own model" (own_model.py) with its state."""
    c[f"{prefix}_model"] = gr.Dropdown(
        model_choices(live=False),
        value=default,
        label="Model",
        elem_id=f"{prefix}-model",
        allow_custom_value=True,
    )
    c[f"{prefix}_picked"] = gr.Markdown("", elem_id=f"{prefix}-model-picked")
    with gr.Group(visible=False, elem_id=f"{prefix}-custom-box") as c[f"{prefix}_custom_box"]:
        if ALLOW_CUSTOM:
            c.update({f"{prefix}_{k}": v for k, v in custom_inputs(f"{prefix}-").items()})
    c[f"{prefix}_custom"] = gr.State(None)


def wire_model_picker(c: dict, prefix: str) -> None:
    """model_picker's events: the own-model box shown for "custom", the phones' label, Load."""
    model = c[f"{prefix}_model"]
    show_box = f"(id) => ({{__type__: 'update', visible: id === '{CUSTOM}'}})"
    model.change(None, model, c[f"{prefix}_custom_box"], js=show_box)
    model.change(None, None, c[f"{prefix}_picked"], js=picked_js(f"#{prefix}-model"))
    if ALLOW_CUSTOM:
        mine, dropout = gr.JSON(None, visible=False), gr.Checkbox(visible=False)
        c[f"{prefix}_load"].click(
            load_custom,
            [c[f"{prefix}_repo"], c[f"{prefix}_checkpoint"]],
            [c[f"{prefix}_custom_info"], c[f"{prefix}_custom"], mine, dropout],
            api_visibility="private",
        )
