"""img2img/speed.py: the speed book's average, pins and first guesses, and the refusal of a
job estimated over the limit (the app's side: tests/test_browser_jobs.py)."""

from __future__ import annotations

import pytest

from img2img import JobTooLongError, Translator
from img2img.speed import GUESS_MARGIN, Estimate, SpeedBook, SpeedKey, check_job, duration

KEY = SpeedKey("cyclegan/horse2zebra", "openvino", "cpu", "tiles")


def test_rates_are_an_exponential_average_per_key():
    book = SpeedBook(alpha=0.5)
    assert book.rate(KEY) is None and book.estimate(KEY, 4.0) is None
    book.observe(KEY, 10.0, 2.0)  # 5 s/MP
    book.observe(KEY, 14.0, 2.0)  # 7 s/MP -> (5 + 7) / 2
    assert book.rate(KEY) == pytest.approx(6.0)
    assert book.estimate(KEY, 10.0) == Estimate(pytest.approx(60.0), measured=True)
    other = SpeedKey(KEY.model, KEY.plan, KEY.device, "whole")
    assert book.rate(other) is None  # untiled runs are another kind
    book.observe(KEY, 0.0, 2.0)  # nothing learnt from a run that measured nothing
    assert book.rate(KEY) == pytest.approx(6.0)


def test_a_first_guess_errs_long_and_says_so():
    book = SpeedBook()
    guessed = book.estimate(KEY, 2.0, guess=lambda: 1.5)
    assert guessed == Estimate(pytest.approx(GUESS_MARGIN * 3.0), measured=False)
    assert guessed.words().endswith("(a first guess)")
    book.observe(KEY, 1.0, 1.0)
    assert book.estimate(KEY, 2.0, guess=lambda: 1 / 0).measured  # measured: no guess


def test_a_pinned_rate_stays():
    book = SpeedBook()
    book.pin(KEY, 100.0)
    book.observe(KEY, 1.0, 1.0)
    assert book.estimate(KEY, 0.5).seconds == pytest.approx(50.0)


@pytest.mark.parametrize(
    "seconds,text", [(0.2, "1 s"), (8.1, "9 s"), (42, "42 s"), (130, "2 min"), (3900, "1 h 5 min")]
)
def test_durations_read_as_people_say_them(seconds, text):
    assert duration(seconds) == text


def test_a_job_over_the_limit_is_refused_with_what_to_do():
    check_job(Estimate(30.0, True), 600, "x")
    check_job(Estimate(3000.0, True), None, "x")  # no limit
    check_job(None, 1, "x")  # nothing known: nothing refused
    with pytest.raises(JobTooLongError, match=r"about 2 min, over .* limit of 1 s .* do: use Fast"):
        check_job(Estimate(120.0, True), 1, "use Fast")


def test_the_engine_guesses_from_one_small_forward_and_learns(fixtures, monkeypatch):
    """webui.engine's estimate with the tiny ResNet: a first guess from one timed 256 px
    forward (tiles: times the windows' overlap and the statistics pass), then measured."""
    from webui import engine

    monkeypatch.setattr(engine, "speed", SpeedBook())
    t = Translator(device="cpu", plan="eager", loader=lambda _: _tiny(fixtures))
    size = (1200, 900)
    assert engine.estimate(t, "tiny", "tiles", size, guess=False) is None  # before loading
    guess = engine.estimate(t, "tiny", "tiles", size, guess=True)
    assert not guess.measured and guess.seconds > 0
    fast = engine.speed.rate(SpeedKey("tiny", t.plan.describe(), "cpu", "fast"))
    assert fast is not None  # the probe itself was measured, as a Fast run
    assert guess.seconds > GUESS_MARGIN * fast * 1.08  # windows overlap: more than the image
    engine.observe(t, "tiny", "tiles", 2.16, size)  # 2 s/MP
    assert engine.estimate(t, "tiny", "tiles", size, guess=True) == Estimate(
        pytest.approx(2.16), measured=True
    )


def _tiny(fixtures):
    from img2img import load_generator

    return load_generator(fixtures / "junyanz_resnet9_instance_ngf8.pth")
