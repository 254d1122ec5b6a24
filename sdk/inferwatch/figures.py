"""matplotlib figures as inline SVG, and the page around them: HTML reports that work offline
(drift, incidents).

>>> svg(lambda fig: fig.subplots().plot([1, 2, 3]), salt="plot-1")
'<svg ...'
"""

from __future__ import annotations

import html
import io
import warnings
from collections.abc import Callable
from typing import Any

MISSING_MATPLOTLIB = "HTML reports need matplotlib: pip install matplotlib (or 'inferwatch[drift]')"


def require_matplotlib() -> None:
    """Raise an ImportError naming matplotlib, with what to install, if it is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(MISSING_MATPLOTLIB, name="matplotlib") from exc


def svg(draw: Callable[[Any], None], salt: str) -> str:
    """The figure ``draw`` fills, as an ``<svg>`` element to paste into HTML.

    Text stays text (small, selectable); ``salt`` makes the element ids unique per plot and
    stable across runs; no metadata (dates) is written, so a report is reproducible.
    """
    import matplotlib
    from matplotlib.figure import Figure

    settings: Any = {
        "svg.fonttype": "none",  # real text: small, selectable, any script the browser knows
        "svg.hashsalt": salt,
        "text.parse_math": False,  # a "$" in a label is text, not TeX
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    with matplotlib.rc_context(settings), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig = Figure()
        draw(fig)
        out = io.StringIO()
        no_metadata = {"Date": None, "Creator": None, "Format": None, "Type": None}
        fig.savefig(out, format="svg", metadata=no_metadata)
    text = out.getvalue()
    return text[text.index("<svg") :]  # drop the XML declaration and DOCTYPE: inline in HTML


def page(title: str, css: str, body: str) -> str:
    """One self-contained HTML page: ``body`` (escaped by the caller) under ``title``. Its
    Content-Security-Policy lets nothing be fetched and no script run; styles are inline."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{css}</style></head><body>\n"
        f"{body}\n</body></html>\n"
    )
