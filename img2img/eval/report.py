"""The static results page of `img2img evaluate --report DIR`.

DIR/index.html shows one row per test image: thumbnails (input | output | target, as the
classic repo's results page) and that image's scores, with the means on top. Clicking a
column header sorts by it (a few lines of inline JavaScript; no external assets, so the
folder can be zipped, served or opened from disk). Thumbnails are DIR/images/NNNN_*.png.
Each score column's tooltip states its direction, read from the metric table (metrics.py).
Test images that could not be read are listed under the table, with the reason. DIR is made
at the first thumbnail, and `discard` takes back what a failed run wrote.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from PIL import Image

from ..atomic import Folders, write_text
from ..errors import OutputError
from .metrics import METRICS

THUMB = 256  # longest thumbnail side, in pixels

_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
th, td { padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: right; }
th { cursor: pointer; background: #f4f4f4; position: sticky; top: 0; user-select: none; }
th.sorted-asc::after { content: " \\25B2"; } th.sorted-desc::after { content: " \\25BC"; }
td.name, th.name { text-align: left; } td img { display: block; max-width: 256px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dt { font-weight: 600; } dd { margin: 0; }
"""

# Sort rows by the clicked column: numbers numerically (data-v), names as text.
_SCRIPT = """
document.querySelectorAll("th[data-k]").forEach(th => th.addEventListener("click", () => {
  const body = document.querySelector("tbody"), asc = !th.classList.contains("sorted-asc");
  document.querySelectorAll("th").forEach(h => h.classList.remove("sorted-asc", "sorted-desc"));
  th.classList.add(asc ? "sorted-asc" : "sorted-desc");
  const key = r => { const c = r.children[th.cellIndex]; return c.dataset.v ?? c.textContent; };
  const rows = [...body.rows].sort((a, b) => {
    const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
    const d = isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
    return asc ? d : -d;
  });
  rows.forEach(r => body.appendChild(r));
}));
"""


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "∞" if value > 0 else "–" if math.isnan(value) else "-∞"
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.2f}"


def _text(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


class Report:
    """Collects rows (thumbnails written at once) and writes index.html at the end."""

    def __init__(
        self,
        folder: Path,
        columns: tuple[str, ...] = ("input", "output"),
        folders: Folders | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.columns = columns  # thumbnail kinds, e.g. ("input", "output", "target")
        self.folders = folders or Folders()  # made on the first add
        self.rows: list[tuple[str, list[str], dict[str, float]]] = []
        self.written: list[Path] = []

    def discard(self) -> None:
        """Remove the files written so far and the folders made for them."""
        for path in self.written:
            path.unlink(missing_ok=True)
        self.folders.remove_empty()

    def add(self, name: str, images: dict[str, Image.Image], scores: dict[str, float]) -> None:
        """One test image: its thumbnails (keys of `columns`) and its per-image scores."""
        files = []
        try:
            self.folders.make(self.folder / "images")
            for kind in self.columns:
                rel = f"images/{len(self.rows):04d}_{kind}.png"
                thumb = images[kind].copy()
                thumb.thumbnail((THUMB, THUMB), Image.BICUBIC)
                self.written.append(self.folder / rel)
                thumb.save(self.folder / rel, format="PNG")
                files.append(rel)
        except OSError as e:
            raise OutputError(f"--report {self.folder} cannot be written: {e.strerror or e}") from e
        self.rows.append((name, files, scores))

    def write(
        self,
        title: str,
        means: dict[str, float],
        settings: dict[str, object],
        skipped: list[dict[str, str]] = (),
    ) -> Path:
        """DIR/index.html; returns its path. `skipped`: {name, reason} of unread images."""
        metrics = sorted({k for _, _, s in self.rows for k in s}, key=list(means).index)
        head = ['<th class="name" data-k="name">image</th>']
        head += [f"<th>{c}</th>" for c in self.columns]
        head += [f'<th data-k="{m}" title="{_better(m)}">{m}</th>' for m in metrics]
        body = [self._row(name, files, scores, metrics) for name, files, scores in self.rows]
        summary = "".join(f"<dt>{html.escape(k)}</dt><dd>{_fmt(v)}</dd>" for k, v in means.items())
        about = "".join(
            f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(_text(v))}</dd>"
            for k, v in settings.items()
        )
        unread = "".join(
            f"<li>{html.escape(s['name'])}: {html.escape(s['reason'])}</li>" for s in skipped
        )
        if unread:
            unread = f"<h2>Skipped ({len(skipped)}: not readable)</h2><ul>{unread}</ul>"
        page = (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><h2>Scores ({len(self.rows)} images)</h2>"
            f"<dl>{summary}</dl><h2>Settings</h2><dl>{about}</dl>"
            f"<p>Click a column header to sort.</p>"
            f"<table><thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody>"
            f"</table>{unread}<script>{_SCRIPT}</script></body></html>\n"
        )
        path = self.folder / "index.html"
        self.written.append(path)
        try:
            self.folders.make(self.folder)
            write_text(path, page)
        except OSError as e:
            raise OutputError(f"--report {self.folder} cannot be written: {e.strerror or e}") from e
        return path

    def _row(
        self, name: str, files: list[str], scores: dict[str, float], metrics: list[str]
    ) -> str:
        cells = [f'<td class="name">{html.escape(name)}</td>']
        cells += [f'<td><img src="{f}" alt="{html.escape(name)} {k}" loading="lazy"></td>'
                  for f, k in zip(files, self.columns, strict=True)]  # fmt: skip
        for m in metrics:
            v = scores.get(m, math.nan)
            key = v if math.isfinite(v) else (1e308 if v > 0 else -1e308) if math.isinf(v) else ""
            cells.append(f'<td data-v="{key}">{_fmt(v)}</td>')
        return f"<tr>{''.join(cells)}</tr>"


def _better(metric: str) -> str:
    """The table's direction; a column not in the table reads as lower is better."""
    return METRICS[metric].direction if metric in METRICS else "lower is better"
