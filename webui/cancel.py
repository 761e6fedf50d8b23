"""Work whose client has gone stops: the check that the library's long loops ask.

How Gradio 6 tells a running event that its client has gone: each browser tab (or
gradio_client) reads its events' messages over one server-sent-events stream per session,
`GET /gradio_api/queue/data`. Gradio sees that stream's client disconnect at its next message
(a progress update: several a second while we compute), or within its 10 s poll, and calls
`Queue.clean_events(session_hash)`, which marks each of that session's running events
`alive = False`. That flag is all it does for a running event: Gradio stops a generator
between two yields on it and cancels nothing else, so a plain function (ours: one long call
into the library) runs to its end. `request.is_disconnected()` cannot tell either: a queued
event's gr.Request wraps the `/queue/join` POST, answered long before.

So the library's loops take a `should_stop` callable (per video frame, per batch of tiles),
and `client_gone()` gives one that reads the `alive` flag of the event this thread runs.
Gradio sets the event's id and the Blocks in context variables for the handler's thread; these
are Gradio internals (`LocalContext`, `Blocks._queue.active_jobs`, `Event.alive`), read only
here, and tests/test_app_disconnect.py fails if an upgrade moves them. Outside an event (a
test calling a handler, a ZeroGPU worker process) the check never says stop.

A Stop button is the other way a job ends early. Gradio's `cancels=[event]` cancels the
event's asyncio task and drops its outputs, but the function running in a worker thread is
"allowed to finish" (Gradio's docs): so each job registers a flag per (session, tab)
(`start_job`), the Stop event sets it (`ask_stop`), and `should_stop` reads it beside
`client_gone` at every tile batch and frame.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from gradio.context import LocalContext


def client_gone() -> Callable[[], bool] | None:
    """A check that says True once the client of the event running in this thread has gone
    (and logs that once); None outside a Gradio event."""
    event = _running_event()
    if event is None:
        return None
    logged = []

    def gone() -> bool:
        if event.alive:
            return False
        if not logged:
            logged.append(True)
            print(f"* the client of event {event._id} has gone: stopping its work", flush=True)
        return True

    return gone


def _running_event():
    """Gradio's Event for this thread's event (by the id in its context), if any."""
    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    queue = getattr(blocks, "_queue", None)
    if event_id is None or queue is None:
        return None
    for job in getattr(queue, "active_jobs", None) or ():
        for event in job or ():
            if getattr(event, "_id", None) == event_id and hasattr(event, "alive"):
                return event
    return None


_jobs: dict[tuple[str, str], threading.Event] = {}  # (session, tab) -> its running job's flag
_jobs_lock = threading.Lock()


def start_job(session: str | None, tab: str) -> threading.Event:
    """A fresh stop flag for the job this session starts in `tab` (replacing any older one)."""
    flag = threading.Event()
    if session:
        with _jobs_lock:
            _jobs[(session, tab)] = flag
    return flag


def end_job(session: str | None, tab: str, flag: threading.Event) -> None:
    with _jobs_lock:
        if session and _jobs.get((session, tab)) is flag:
            del _jobs[(session, tab)]


def ask_stop(session: str | None, tab: str) -> bool:
    """Stop the job running for `session` in `tab`; False when it has none."""
    with _jobs_lock:
        flag = _jobs.get((session, tab)) if session else None
    if flag is None:
        return False
    print(f"* Stop asked for the {tab} job of session {session[:8]}: stopping its work", flush=True)
    flag.set()
    return True


def should_stop(flag: threading.Event | None) -> Callable[[], bool] | None:
    """The check a job's loops ask: its Stop flag was set, or its client has gone."""
    gone = client_gone()
    if flag is None:
        return gone
    return lambda: flag.is_set() or (gone is not None and gone())
