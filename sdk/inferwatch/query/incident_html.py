"""The incident report as one offline HTML page: a timeline plot per slice, and the tables.

>>> write_html("incident.html", iw.query.open().incident(since="1h"))

Like the drift report, the page is self-contained and safe to pass around: CSS and SVG plots are
inline, nothing is fetched and no script runs (a Content-Security-Policy forbids both), and every
string that came from the data (tags, log messages, status messages) is escaped. Each timeline
shows the requests per bucket (bars), the outcome rate (line) and the change point (a dashed
line) where one was found. Needs matplotlib.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferwatch import figures
from inferwatch.query.render import cell

if TYPE_CHECKING:
    from inferwatch.query.incident import Incident
    from inferwatch.query.timeline import ChangePoint, Timeline

_BARS, _LINE, _CHANGE = "#c9d6e8", "#c0392b", "#555555"
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1100px;padding:0 1rem;color:#222}
h1{font-size:1.5rem;margin:0 0 .5rem}h2{font-size:1.2rem;margin-top:2rem}
h3{font-size:1.05rem;margin:1rem 0 .4rem;overflow-wrap:anywhere}
.verdict{font-weight:600;padding:.5rem .8rem;border-radius:4px;background:#fde7e4}
.verdict.calm{background:#e6f4ea}
table{border-collapse:collapse;font-size:12px;display:block;overflow-x:auto}
th,td{padding:.25rem .5rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top;
white-space:pre-wrap;overflow-wrap:anywhere}
th{background:#f4f4f4;white-space:nowrap}.plot svg{max-width:100%;height:auto}
.notes{color:#7a4b00;font-size:12px}
"""


def write_html(path: str | Path, report: Incident) -> None:
    """Write `render_html` of ``report`` to ``path`` (UTF-8)."""
    Path(path).write_text(render_html(report), encoding="utf-8")


def render_html(report: Incident) -> str:
    """The report as one HTML page (see the module docstring). Raises ImportError without
    matplotlib."""
    figures.require_matplotlib()
    e = html.escape
    title = f"Incident: {report.outcome}, {report.since} .. {report.until}"
    started = report.started_at
    verdict = f"started at {started}" if started else "no start found in the window"
    slices = "".join(
        f"<h3>{e(s.row['slice'])}</h3><p>{e(s.change.verdict)}</p>"
        f'<div class="plot">{_plot(s.timeline, s.change, report.outcome, i + 1)}</div>'
        for i, s in enumerate(report.slices)
    )
    parts = [
        f"<h2>1. When did it start?</h2><p>All requests: {e(report.change.verdict)}</p>",
        f'<div class="plot">{_plot(report.overall, report.change, report.outcome, 0)}</div>',
        "<h2>2. Where?</h2>",
        _table(*report.slice_table(), []),
        slices,
        "<h2>3. What do the logs of those requests say?</h2>",
        _table(report.top_messages.columns, report.top_messages.rows, report.top_messages.notes),
        "<h2>4. Examples</h2>",
        _table(report.examples.columns, report.examples.rows, report.examples.notes),
        "<h2>5. Did the inputs drift?</h2>",
        _table(report.inputs.columns, report.inputs.rows, report.inputs.notes),
        _table(report.drift_events.columns, report.drift_events.rows, report.drift_events.notes),
        "<h2>Notes</h2>",
        "<ul class=notes>" + "".join(f"<li>{e(n)}</li>" for n in report.notes) + "</ul>",
    ]
    calm = "" if started else " calm"
    header = (
        f'<header><h1>{e(title)}</h1><p class="verdict{calm}">{e(verdict)}: '
        f"{report.requests:,} requests, {report.outcomes:,} {e(report.outcome)}, buckets of "
        f"{report.every_s:g} s</p></header>\n"
    )
    return figures.page(title, _CSS, header + "\n".join(parts))


def _table(columns: Sequence[str], rows: Sequence[dict[str, Any]], notes: Sequence[str]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(cell(row.get(c)))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    listed = "".join(f"<li>{e(n)}</li>" for n in notes)
    table = f"<table><tr>{head}</tr>{body}</table>"
    return table + (f"<ul class=notes>{listed}</ul>" if notes else "")


def _plot(found: Timeline, change: ChangePoint, outcome: str, index: int) -> str:
    """Requests per bucket (bars) and the outcome rate (line) of a one-series timeline."""
    (series,) = found.series.values() if found.series else ([],)
    if not series:
        return "<p>no requests in the window</p>"
    rate = [r[f"{outcome}_rate"] for r in series]
    requests = [r["requests"] for r in series]
    # HH:MM:SS, with the milliseconds when buckets are shorter than a second.
    labels = [r["bucket"][11 : 23 if found.every_ns < 1_000_000_000 else 19] for r in series]

    def draw(fig: Any) -> None:
        fig.set_size_inches(9.0, 2.6)
        fig.subplots_adjust(left=0.07, right=0.93, bottom=0.22, top=0.92)
        ax = fig.subplots()
        x = list(range(len(series)))
        ax.bar(x, requests, color=_BARS, width=0.9, label="requests")
        ax.set_ylabel("requests")
        right = ax.twinx()
        right.plot(x, [float("nan") if v is None else v for v in rate], color=_LINE,
                   marker=".", label=f"{outcome} rate")  # fmt: skip
        right.set_ylabel(f"{outcome} rate")
        right.set_ylim(0, max(1e-9, *(v for v in rate if v is not None)) * 1.1)
        right.spines["right"].set_visible(True)
        if change.bucket is not None:
            right.axvline(change.bucket - 0.5, color=_CHANGE, linestyle="--", label="start")
        step = max(1, -(-len(x) // 6))
        ax.set_xticks(x[::step], labels[::step])
        ax.set_xlabel("bucket start (UTC)")
        right.legend(loc="upper left", frameon=False)

    return figures.svg(draw, salt=f"incident-{index}")
