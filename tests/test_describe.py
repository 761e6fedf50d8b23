"""Error messages keep their advice (issue 11): explain() splits a library message into a
headline, what to do and what was tried; the app's Markdown escapes every part of it."""

from __future__ import annotations

from helpers.catalog import RESNET

from webui import describe
from webui.explain import explain

# The message a newcomer got for a Berkeley model: its toast stopped at `<urlopen error ...>`
# (rendered as an HTML tag), and "What you can do" never showed.
BERKELEY = (
    f"weights for {RESNET.id} are not available. Tried: local folder /srv/app/weights/"
    f"{RESNET.id}: not present | URL http://efrosgans.eecs.berkeley.edu/cyclegan/x.pth: "
    "DownloadError: http://efrosgans.eecs.berkeley.edu/cyclegan/x.pth: failed after 3 "
    "attempts (0 bytes kept to resume): <urlopen error [Errno -3] Temporary failure in name "
    f"resolution>. What you can do: put a checkpoint file in /srv/app/weights/{RESNET.id}/; "
    f"or set {RESNET.env_var}=namespace/repo to a Hub repo in our format."
)


def test_explain_splits_headline_steps_and_details():
    ex = explain(BERKELEY)
    assert ex.headline == f"Weights for {RESNET.id} are not available."
    assert ex.steps == (
        f"Put a checkpoint file in /srv/app/weights/{RESNET.id}/.",
        f"Set {RESNET.env_var}=namespace/repo to a Hub repo in our format.",
    )
    assert len(ex.details) == 2 and "<urlopen error [Errno -3]" in ex.details[1]


def test_error_markdown_escapes_and_keeps_everything():
    text = describe.error_markdown(BERKELEY, RESNET.label)
    assert "<urlopen" not in text and "&lt;urlopen error [Errno -3]" in text
    assert text.index("What to do:") < text.index("<details>")  # advice first, then details
    assert "Put a checkpoint file in" in text and RESNET.env_var.replace("_", "\\_") in text
    assert text.startswith(f"**⚠️ {describe.md(RESNET.label)}: Weights for")


def test_long_messages_get_a_short_headline_and_lose_nothing():
    long = "unknown model id 'x'; did you mean a/b? valid ids: " + ", ".join(["c/d"] * 40)
    ex = explain(long)
    assert ex.headline == "Unknown model id 'x'; did you mean a/b?"
    assert ex.details == (long[0].upper() + long[1:] + ".",)
    assert explain("photo.png is not an image we can read").headline.startswith("photo.png")


def test_markdown_escape_keeps_text_literal_and_urls_plain():
    assert describe.md("<b>x</b> a_b*c") == "&lt;b&gt;x&lt;/b&gt; a\\_b\\*c"
    assert describe.md("see http://h/a_b.pth.") == "see `http://h/a_b.pth`\\."
