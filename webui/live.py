"""The Live tab: the webcam, translated as it streams.

How frames flow (Gradio 6's stream event): the browser grabs a JPEG of the camera every
LIVE_EVERY seconds and POSTs it to the event's stream route; the server calls `live_frame`
with the newest frame once the previous call returns. A frame that arrives while another is
computing replaces any frame still waiting, so when the model is slower than the camera the
stale frames are dropped, never queued: memory is one waiting frame per stream, and the
picture lags by at most one frame. serving.StreamFrames counts what the browser sent, which
gives the dropped count the status line shows beside the frames translated per second and
the model's milliseconds per frame.

Each frame is computed at FAST_SIZE (256) on the long side, as the Photo tab's Fast path, and
shown at that size (scaled by the browser). Normalisation statistics run across the frames
(img2img.media.live: an exponential moving mean, started afresh for each stream and each
change of model), so the picture does not flicker with the camera's noise. The translated
frame goes back inline as a JPEG data URL: no file per frame in Gradio's cache, no second
request. A frame that cannot be read or translated is counted and said in the status; the
stream goes on.

A stream lasts at most IMG2IMG_LIVE_SECONDS (default 120; Gradio's time_limit, shown as a
bar under the camera), and at most IMG2IMG_LIVE_STREAMS (default 2) run at once (their own
concurrency group: a stream does not hold a Photo or Video slot); Stop ends it and the
server's work with it. On ZeroGPU each frame is one short @spaces.GPU call (docs/deploy.md).
"""

from __future__ import annotations

import base64
import io
import os

import gradio as gr
from gradio.context import LocalContext
from gradio.data_classes import ImageData

from . import describe
from .inputs import MAX_PIXELS, photo_or_error, raw_image
from .media import _clip_model, model_picker, wire_model_picker
from .messages import as_dict, failure_text, failures
from .picker import label_of
from .runtime import CUSTOM, FAST_SIZE, engine, gpu, translator
from .serving import StreamFrames

LIVE_EVERY = float(os.environ.get("IMG2IMG_LIVE_EVERY", 0.05))  # s between frames sent
LIVE_SECONDS = int(os.environ.get("IMG2IMG_LIVE_SECONDS", 120))  # one stream's time limit
LIVE_STREAMS = int(os.environ.get("IMG2IMG_LIVE_STREAMS", 2))  # streams computed at once
JPEG_QUALITY = 85
GPU_FRAME_S = 5  # ZeroGPU reservation of one frame: the forward is milliseconds
# What the camera is asked for: enough for a 256 px working size, light to encode and send.
CAMERA = {"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}
FRAMES_IN = StreamFrames()  # counted by app.py's CountFrames middleware
START = "Press **Record** under the camera to start; **Stop** ends the stream."


class LiveSession:
    """One stream's state, kept in the session (gr.State): the model, its running
    statistics (opaque here: the engine's), and the meter."""

    def __init__(self, event_id: str | None) -> None:
        self.event_id = event_id
        self.model: tuple | None = None  # (picker value, your model's id) the key is for
        self.key, self.label = "", ""
        self.stats = None  # running normalisation statistics (None: start from this frame)
        self.meter = engine().LiveMeter()
        self.error = ""
        self.last = None  # the last frame translated, shown again while frames are refused


@gpu(duration=GPU_FRAME_S)
def _run_frame(key: str, img, stats, size: int):
    """One frame (and its statistics in and out): a pure call, so that on ZeroGPU it can
    run in the GPU worker process, one short reservation per frame."""
    return engine().translate_frame(translator(), key, img, stats, size=size)


def _stream_event_id(session_hash: str | None) -> str | None:
    """The id of the stream event this session is running. Gradio sets the event id in the
    handler's context (LocalContext.event_id) for a stream's first frame only (later frames
    come from the stream route's request body, which has none), so it is looked up among
    the queue's running events: Gradio internals (Blocks._queue.active_jobs, Event.streaming,
    Event.session_hash, Event._id), as webui/cancel.py reads them; None if they moved."""
    queue = getattr(LocalContext.blocks.get(None), "_queue", None)
    for job in getattr(queue, "active_jobs", None) or ():
        for event in job or ():
            if getattr(event, "session_hash", None) == session_hash and getattr(
                event, "streaming", False
            ):
                return getattr(event, "_id", None)
    return LocalContext.event_id.get(None)


def _session(state, request) -> LiveSession:
    """This stream's session: the one in the gr.State if it is this stream's, else a new
    one (each stream starts with its own statistics and counts)."""
    event_id = _stream_event_id(getattr(request, "session_hash", None))
    if isinstance(state, LiveSession) and state.event_id == event_id:
        return state
    return LiveSession(event_id)


def _pick(session: LiveSession, model_id: str, custom) -> None:
    """The session's model, resolved once per change of the picker (the catalog's checks
    read files: too slow for every frame); new statistics with a new model."""
    mine = as_dict(custom) if model_id == CUSTOM else None
    chosen = (model_id, mine["id"] if mine else None)
    if chosen == session.model:
        return
    session.model = None  # until it resolves: a refused model is asked again next frame
    key, label, _ = _clip_model(model_id, custom)
    if key != session.key:
        session.stats = None  # statistics fit one model only
    session.model, session.key, session.label = chosen, key, label


def _decode(frame):
    """The camera's frame (raw_upload's bytes of its data URL) as an image, capped."""
    if photo_or_error(frame) is None:
        raise gr.Error("no camera frame came with this request")
    return engine().open_image(frame, max_pixels=MAX_PIXELS)


def _status(session: LiveSession) -> str:
    m, t = session.meter, translator()
    line = (
        f"**{m.fps:.1f} frames/s** · model {m.model_ms:.0f} ms/frame · "
        f"{m.dropped} dropped · {m.frames} translated of {m.sent_count} sent"
    )
    line += f" · {m.bad} refused" if m.bad else ""
    where = f"{describe.md(session.label or 'Live')} at {FAST_SIZE} px on `{t.device}`"
    where += f" ({t.plan.describe()})"
    return f"{line}\n\n{where}" + (f"\n\n{session.error}" if session.error else "")


def live_frame(frame, model_id, custom, state, request: gr.Request = None):
    """The stream event: the newest camera frame translated, the status, the session."""
    session = _session(state, request)
    try:
        _pick(session, model_id, custom)
        session.meter.sent(FRAMES_IN.sent(session.event_id))
        done = _run_frame(session.key, _decode(frame), session.stats, FAST_SIZE)
    except failures() as e:
        session.meter.refused()
        subject = session.label or (label_of(model_id) if model_id else "Live")
        session.error = describe.error_markdown(failure_text(e), subject)
        # The last good frame, not gr.update(): a property update makes Gradio keep a fresh
        # copy of the component for the session, without _inline_jpeg.
        return session.last, _status(session), session
    session.stats, session.error, session.last = done.stats, "", done.image
    session.meter.translated(done.seconds)
    return done.image, _status(session), session


def live_ended(state):
    """After a stream (Stop, the time limit, or the page gone): its figures, in the status
    and in the server's log."""
    if not isinstance(state, LiveSession):
        return START
    m = state.meter
    print(
        f"* Live stream {str(state.event_id)[:8]} ended: {m.frames} frames translated, "
        f"{m.dropped} dropped, {m.bad} refused; last {m.fps:.1f} frames/s, "
        f"{m.model_ms:.0f} ms/frame",
        flush=True,
    )
    return f"**Stopped.** {_status(state)}"


def _inline_jpeg(value):
    """Output postprocess: the frame as a JPEG data URL, sent inline with the event's message
    (stock gr.Image writes every frame to Gradio's cache, then the browser fetches it)."""
    if value is None:
        return None
    buffer = io.BytesIO()
    value.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return ImageData(url=f"data:image/jpeg;base64,{encoded}", mime_type="image/jpeg")


def live_tab(default: str) -> dict:
    """The Live tab's components (built inside a gr.Tab) and its events."""
    c = {}
    with gr.Row(equal_height=False):
        with gr.Column():
            c["live_cam"] = raw_image(
                label="Camera",
                sources=["webcam"],
                streaming=True,
                webcam_options=gr.WebcamOptions(constraints=CAMERA),
                height=300,
                elem_id="live-cam",
            )
            model_picker(c, "live", default)
        with gr.Column():
            c["live_out"] = gr.Image(
                label="Live result", interactive=False, height=360, elem_id="live-out"
            )
            c["live_out"].postprocess = _inline_jpeg  # an instance override, as raw_image
            c["live_status"] = gr.Markdown(START, elem_id="live-status")
            c["live_state"] = gr.State(None)
    _events(c)
    return c


def _events(c: dict) -> None:
    inputs = [c["live_cam"], c["live_model"], c["live_custom"], c["live_state"]]
    stream = c["live_cam"].stream(
        live_frame,
        inputs,
        [c["live_out"], c["live_status"], c["live_state"]],
        stream_every=LIVE_EVERY,
        time_limit=LIVE_SECONDS,
        concurrency_limit=LIVE_STREAMS,
        concurrency_id="live",
        show_progress="hidden",
        api_visibility="private",
    )
    quiet = dict(api_visibility="private", queue=False, show_progress="hidden")
    stream.then(live_ended, c["live_state"], c["live_status"], **quiet)
    wire_model_picker(c, "live")
