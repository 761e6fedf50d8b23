"""An error message as a person reads it: a headline, what to do, and the details.

The library writes each failure as one string, and the long ones follow one shape
(hub.resolve, hub.fetch_repo, the catalog's architecture check):

    <what happened>[. Tried: <a> | <b> ...][. What you can do: <x>; <y>; or <z>]

`explain` splits such a message into those parts, so that a UI can show the headline and the
first thing to try and fold the rest away (the app), without losing any of it. Any other
message becomes a headline (its first clause when it is long) with the whole text as details.
Plain text in, plain text out: escaping for HTML or Markdown is the UI's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TRIED = " Tried: "
TODO = "What you can do:"
SHORT = 160  # characters a headline may have before it is cut at its first clause


@dataclass(frozen=True)
class Explanation:
    headline: str  # one sentence, capitalised
    steps: tuple[str, ...] = ()  # what the reader can do, most direct first
    details: tuple[str, ...] = ()  # what was tried, or the full message when it was cut


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".;: ").strip()
    if not text:
        return ""
    first = text.split(" ", 1)[0]
    if first.isalpha() and first.islower():  # not a file name, path or id
        text = text[:1].upper() + text[1:]
    return text if text.endswith(("?", "!")) else text + "."


def _steps(todo: str) -> tuple[str, ...]:
    parts = (re.sub(r"^(or|and)\s+", "", p.strip()) for p in todo.split(";"))
    return tuple(_sentence(p) for p in parts if p.strip(" .;"))


def explain(message: str) -> Explanation:
    """Split a library error message into headline, steps and details (nothing dropped)."""
    text = " ".join(message.split())  # one line: tracebacks never reach here
    body, _, todo = text.partition(TODO)
    head, has_tried, tried = body.partition(TRIED)
    details = tuple(_sentence(t) for t in tried.split(" | ") if t.strip(" .")) if has_tried else ()
    headline = head.strip()
    if len(headline) > SHORT and not details:
        cut = re.search(r"(?<=.{20})(\? |: |\. )", headline) or re.search(r"(?<=.{20}); ", headline)
        if cut:
            details = (_sentence(headline),)
            headline = headline[: cut.start() + (cut.group().startswith("?"))]
    return Explanation(_sentence(headline), _steps(todo), details)
