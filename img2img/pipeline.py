"""The photo pipeline of `img2img translate`: decoding and encoding overlap the forward.

    decode pool (threads) -> chunks of decoded photos -> forward (main thread, batched)
                                                              -> encode + write pool (threads)

The forward sees the same chunks as the serial loop (CHUNK consecutive jobs, minus those that
cannot be read), so every output is byte-identical to it: threads change when work happens,
never what it computes. Decoding and PNG / JPEG encoding run in C with the GIL released
(Pillow), so they use the cores the forward leaves idle between its kernels, and the forward
never waits for a disk.

Bounded memory. While chunk i runs, only chunk i + 1 is decoded ahead: at most
2 x CHUNK decoded photos exist at once (`Counters.decoded_peak`); translated photos wait for
a writer under a semaphore of 2 x CHUNK (`Counters.writes_peak`). `threads=0` is the serial
loop itself (decode, forward, write in turn, in the main thread).

Stopping. The forward runs in the main thread, where a signal raises cli_stop.Stopped: the
queued decodes and writes are dropped, the writes already running finish (each is atomic:
the output appears whole or not at all), and Stopped goes on up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .errors import Img2ImgError

CHUNK = 8  # photos decoded and translated together (the serial loop's chunk)
Job = tuple[Path, Path]  # (input, output)
Record = Callable[[Path, Path, str, float, str | None], None]  # (src, dst, status, s, why)


@dataclass
class Counters:
    """Photos held by the pipeline now and at most (the memory bound's evidence)."""

    decoded: int = 0  # decoded, not yet through the forward
    decoded_peak: int = 0
    writes: int = 0  # translated, not yet written
    writes_peak: int = 0


@dataclass
class Stages:
    """What the pipeline runs: decode(path) -> image (Img2ImgError: unreadable, skipped);
    translate(images) -> an image or why it failed, per image; write(image, target) -> None
    or why it could not be written; record(src, dst, status, seconds, why) once per job."""

    decode: Callable[[Path], Image.Image]
    translate: Callable[[list[Image.Image]], list[Image.Image | str]]
    write: Callable[[Image.Image, Path], str | None]
    record: Record


class PhotoPipeline:
    """Runs jobs through `stages` with `threads` decoders and as many writers (0: serial)."""

    def __init__(self, stages: Stages, threads: int = 2, chunk: int = CHUNK) -> None:
        self.stages, self.threads, self.chunk = stages, threads, chunk
        self.counters = Counters()
        self.max_decoded = 2 * chunk  # the bounds Counters' peaks stay within
        self.max_writes = 2 * chunk
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.max_writes)
        self._stop = threading.Event()

    def run(self, jobs: Sequence[Job]) -> None:
        chunks = [jobs[i : i + self.chunk] for i in range(0, len(jobs), self.chunk)]
        if not chunks:
            return
        if self.threads == 0:
            for chunk in chunks:
                self._forward([(job, self._decode(job)) for job in chunk], None)
            return
        decoders = ThreadPoolExecutor(self.threads, thread_name_prefix="decode")
        writers = ThreadPoolExecutor(self.threads, thread_name_prefix="write")
        try:
            ahead = [(job, decoders.submit(self._decode, job)) for job in chunks[0]]
            for i in range(len(chunks)):
                current = [(job, future.result()) for job, future in ahead]
                nxt = chunks[i + 1] if i + 1 < len(chunks) else []
                ahead = [(job, decoders.submit(self._decode, job)) for job in nxt]
                self._forward(current, writers)  # chunk i + 1 decodes meanwhile
            decoders.shutdown(wait=True)
            writers.shutdown(wait=True)  # every translated photo written
        except BaseException:  # Stopped (a signal, maybe while the last writes run), a bug:
            self._stop.set()  # drop what has not started; no writer outlives run()
            decoders.shutdown(wait=True, cancel_futures=True)
            writers.shutdown(wait=True, cancel_futures=True)  # running writes finish whole
            raise

    # ------------------------------------------------------------------ the three stages

    def _decode(self, job: Job) -> tuple[Image.Image | str, float]:
        """(the decoded photo, or why it is unreadable; when it started)."""
        start = time.perf_counter()
        if self._stop.is_set():
            return "stopped", start
        try:
            img = self.stages.decode(job[0])
        except Img2ImgError as e:
            return str(e), start
        with self._lock:
            self.counters.decoded += 1
            self.counters.decoded_peak = max(self.counters.decoded_peak, self.counters.decoded)
        return img, start

    def _forward(self, decoded: list, writers: ThreadPoolExecutor | None) -> None:
        """Translate one chunk's readable photos together; hand each result to a writer."""
        readable = [(job, img, t0) for job, (img, t0) in decoded if not isinstance(img, str)]
        for (src, dst), (why, t0) in decoded:
            if isinstance(why, str):  # not an image we can read: not attempted
                self.stages.record(src, dst, "skipped", time.perf_counter() - t0, why)
        images = [img for _, img, _ in readable]
        results = self.stages.translate(images) if images else []
        del images
        with self._lock:
            self.counters.decoded -= len(readable)
        for ((src, dst), _, t0), result in zip(readable, results, strict=True):
            if isinstance(result, str):
                why = f"cannot translate it: {result}"
                self.stages.record(src, dst, "failed", time.perf_counter() - t0, why)
                continue
            if writers is None:
                self._write(result, src, dst, t0)
                continue
            self._slots.acquire()  # blocks while 2 x CHUNK results wait for a writer
            with self._lock:
                self.counters.writes += 1
                self.counters.writes_peak = max(self.counters.writes_peak, self.counters.writes)
            future: Future = writers.submit(self._write, result, src, dst, t0, True)
            future.add_done_callback(self._freed)

    def _freed(self, future: Future) -> None:
        if future.cancelled():  # dropped by a stop before it ran
            with self._lock:
                self.counters.writes -= 1
            self._slots.release()

    def _write(self, img: Image.Image, src: Path, dst: Path, t0: float, slot=False) -> None:
        try:
            if self._stop.is_set():
                return
            try:
                problem = self.stages.write(img, dst)
            except Exception as e:  # an encoder's surprise: this input fails, the rest go on
                problem = f"cannot write {dst}: {type(e).__name__}: {e}"
            status = "failed" if problem else "written"
            self.stages.record(src, dst, status, time.perf_counter() - t0, problem)
        finally:
            if slot:
                with self._lock:
                    self.counters.writes -= 1
                self._slots.release()
