"""How long a job will take here: seconds per megapixel, learnt from this process's own runs.

Why it exists: a Full size photo or a clip can take minutes on a CPU, and a visitor (or a
deployer's limit) should know before the work starts. The networks are fully convolutional,
so their FLOPs, and to first order their time, grow with the pixels computed: one rate per
kind of run, in seconds per megapixel, predicts a job from its size.

A `SpeedBook` keeps one rate per `SpeedKey` (model, plan, device, "whole" or "tiles"):
    observe(key, seconds, megapixels)  after every run: an exponential average (ALPHA) of
                                       seconds / megapixels, so the rate follows the machine
                                       (a warm cache, other load) without jumping on one run
    pin(key, s_per_mp)                 a fixed rate (a deployer's measurement, a test's speed)
    estimate(key, megapixels, guess)   seconds, measured or a first guess: with no run of this
                                       key yet, `guess()` gives a rate (the app's: one small
                                       timed forward, scaled by the pixels the job computes,
                                       times GUESS_MARGIN), and the estimate says it is a guess
`check_job` refuses an estimate over a limit (JobTooLongError) before any work.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .errors import JobTooLongError

ALPHA = 0.5  # weight of the newest run in the average
# A first guess errs long (a job announced too long is harmless): measured with the tiny test
# ResNet, the first tiled run (OpenVINO converting its statistics graphs) took 2.6x the
# unmargined guess, later runs 1.2x.
GUESS_MARGIN = 3.0


@dataclass(frozen=True)
class SpeedKey:
    """What a rate is measured for: the same model may run at different speeds per plan,
    device, and untiled or in windows (overlap and the statistics pass cost extra)."""

    model: str  # a catalog id or a checkpoint key
    plan: str  # ExecPlan.describe()
    device: str
    mode: str = "whole"  # "whole" or "tiles"


@dataclass(frozen=True)
class Estimate:
    seconds: float
    measured: bool  # False: a first guess (no run of this kind measured here yet)

    def words(self) -> str:
        """Like "about 40 s" or "about 2 min", with "(a first guess)" when nothing was measured."""
        text = f"about {duration(self.seconds)}"
        return text if self.measured else text + " (a first guess)"


def duration(seconds: float) -> str:
    """A rounded duration for people: 8 s, 42 s, 2 min, 1 h 5 min."""
    if seconds < 60:
        return f"{max(1, math.ceil(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


class SpeedBook:
    """Seconds per megapixel per SpeedKey (module docstring); thread-safe."""

    def __init__(self, alpha: float = ALPHA) -> None:
        self.alpha = alpha
        self._rates: dict[SpeedKey, float] = {}
        self._pinned: set[SpeedKey] = set()
        self._lock = threading.Lock()

    def observe(self, key: SpeedKey, seconds: float, megapixels: float) -> None:
        """Learn from one run of `megapixels` that took `seconds` (ignored when either is 0)."""
        if seconds <= 0 or megapixels <= 0:
            return
        rate = seconds / megapixels
        with self._lock:
            if key in self._pinned:
                return
            old = self._rates.get(key)
            self._rates[key] = rate if old is None else (1 - self.alpha) * old + self.alpha * rate
            print(f"* speed {key.model} [{key.mode}]: {self._rates[key]:.3g} s/MP", flush=True)

    def pin(self, key: SpeedKey, s_per_mp: float) -> None:
        """Fix the rate of `key` (runs no longer change it)."""
        with self._lock:
            self._rates[key] = float(s_per_mp)
            self._pinned.add(key)

    def rate(self, key: SpeedKey) -> float | None:
        """Seconds per megapixel measured (or pinned) for `key`, None before any run."""
        with self._lock:
            return self._rates.get(key)

    def estimate(
        self, key: SpeedKey, megapixels: float, guess: Callable[[], float] | None = None
    ) -> Estimate | None:
        """Seconds for `megapixels` of `key`'s kind; with no rate yet, from `guess()` (a rate,
        times GUESS_MARGIN); None when neither is known."""
        rate = self.rate(key)
        if rate is not None:
            return Estimate(rate * megapixels, measured=True)
        if guess is None:
            return None
        return Estimate(GUESS_MARGIN * guess() * megapixels, measured=False)


def check_job(estimate: Estimate | None, limit_s: float | None, what_to_do: str) -> None:
    """Refuse (JobTooLongError) a job whose estimate is over `limit_s` (None: no limit)."""
    if estimate is None or limit_s is None or estimate.seconds <= limit_s:
        return
    raise JobTooLongError(
        f"this job would take {estimate.words()}, over this server's limit of "
        f"{duration(limit_s)} (IMG2IMG_MAX_JOB_SECONDS). What you can do: {what_to_do}"
    )
