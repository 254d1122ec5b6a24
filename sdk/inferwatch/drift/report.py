"""A drift report for people: the test table, the verdict, and a self-contained HTML page.

>>> report = compare(baseline, current)
>>> write_html("drift.html", report, baseline, current)

The HTML page works offline and is safe to pass around: CSS and SVG plots are inline, nothing
is fetched, no script runs (a Content-Security-Policy forbids both), and every string that came
from the data (column names, category values, notes, file names) is escaped. The plots come
from the profiles' sketches, so a report on a billion rows costs the same as one on a thousand:
numeric features as shared-bin histograms and CDFs of the KLL sketches, categorical ones as the
top categories' shares side by side with new and vanished categories marked. The multivariate
test and vector features are plotted from the row samples: both sides along the principal
component on which they differ most, and against the next one.

Plotting needs matplotlib (an optional dependency, imported only here); the table and JSON
helpers do not.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inferwatch import errors, figures
from inferwatch.drift.compare import ColumnDrift, DriftReport, multivariate_line
from inferwatch.drift.multivariate import MultivariateDrift, complete_rows, principal_components
from inferwatch.drift.profile import ColumnProfile, Profile

TABLE_COLUMNS = (
    *("column", "kind", "test", "n_baseline", "n_current", "statistic", "p_value"),
    *("p_adjusted", "effect", "psi", "js", "wasserstein", "drifted", "note"),
)
"""The per-feature test table's columns, in order (table, CSV and HTML)."""

MISSING_MATPLOTLIB = "the HTML report needs matplotlib: pip install 'inferwatch[drift]'"
_TOP_CATEGORIES = 12
_BINS = 30
_LABEL_CHARS = 32
_COLORS = {"baseline": "#4c72b0", "current": "#dd8452"}
_MORE = 20  # unseen/vanished categories listed by name at most
_SCATTER_POINTS = 400  # per side: enough to see a shape, small enough for an inline SVG


# ---- table and JSON -----------------------------------------------------------------------------
def table_rows(report: DriftReport) -> list[dict[str, Any]]:
    """One row per feature with the :data:`TABLE_COLUMNS` (``drifted`` a bool)."""
    rows = []
    for c in report:
        rows.append(
            {
                "column": c.column,
                "kind": c.kind,
                "test": c.test,
                "n_baseline": c.n_baseline,
                "n_current": c.n_current,
                "statistic": c.statistic,
                "p_value": c.p_value,
                "p_adjusted": c.p_adjusted,
                "effect": c.effect,
                "psi": c.distances.get("psi"),
                "js": c.distances.get("js"),
                "wasserstein": c.distances.get("wasserstein"),
                "drifted": c.drifted,
                "note": c.note,
            }
        )
    return rows


def verdict(report: DriftReport) -> str:
    """One line: which features drifted, under which false-discovery control."""
    drifted = list(report.drifted_columns)
    mv = report.multivariate
    if mv is not None and mv.drifted:
        drifted.append(f"the {len(mv.columns)} numeric features together")
    what = f"drifted: {', '.join(drifted)}" if drifted else "no drift"
    tested = sum(c.p_value is not None for c in report)
    line = f"{what} ({tested} of {len(report)} features tested"
    if mv is not None and mv.p_value is not None:
        line += " and the numeric ones together"
    line += f", Benjamini–Hochberg at alpha={report.alpha:g}"
    if report.min_effect is not None:
        line += f", min_effect={report.min_effect:g}"
    return line + ")"


def report_dict(report: DriftReport) -> dict[str, Any]:
    """``report.to_dict()`` with non-finite numbers as None, so it is valid JSON."""
    return _finite(report.to_dict())  # type: ignore[no-any-return]


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# ---- HTML ---------------------------------------------------------------------------------------
def write_html(
    path: str | Path,
    report: DriftReport,
    baseline: Profile,
    current: Profile,
    **options: Any,
) -> None:
    """Write :func:`render_html` to ``path`` (UTF-8)."""
    Path(path).write_text(render_html(report, baseline, current, **options), encoding="utf-8")


def render_html(
    report: DriftReport,
    baseline: Profile,
    current: Profile,
    *,
    title: str = "Drift report",
    labels: tuple[str, str] = ("baseline", "current"),
) -> str:
    """The report as one HTML page: verdict, test table, and a plot per feature.

    ``baseline`` and ``current`` are the profiles ``report`` was computed from (plots come from
    their sketches); ``labels`` name the two sides (e.g. file names). Raises ImportError when
    matplotlib is missing.
    """
    _require_matplotlib()
    sections = [
        _feature_html(
            i,
            col,
            baseline.columns.get(col.column),
            current.columns.get(col.column),
            _vector_rows(col.column, baseline, current) if col.kind == "vector" else None,
        )
        for i, col in enumerate(report)
    ]
    multivariate = ""
    if report.multivariate is not None:
        multivariate = _multivariate_html(report.multivariate, baseline, current)
    e = html.escape
    state = "drift" if report.drifted else "ok"
    sides = "".join(
        f"<dt>{e(side)}</dt><dd>{e(label)}: {p.n_rows:,} rows, {len(p.columns)} columns</dd>"
        for side, label, p in zip(("baseline", "current"), labels, (baseline, current), strict=True)
    )
    return figures.page(
        title,
        _CSS,
        f'<header><h1>{e(title)}</h1><p class="verdict {state}">{e(verdict(report))}</p>'
        f"<dl>{sides}</dl></header>\n"
        f"<section><h2>Tests</h2>{_tests_table(report)}</section>\n{multivariate}"
        f"<section><h2>Features</h2>\n{''.join(sections)}</section>\n"
        f"<footer>{_LEGEND}</footer>",
    )


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(MISSING_MATPLOTLIB, name="matplotlib") from exc


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _tests_table(report: DriftReport) -> str:
    head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in TABLE_COLUMNS)
    body = []
    for i, row in enumerate(table_rows(report)):
        cells = []
        for c in TABLE_COLUMNS:
            value = row[c]
            if c == "column":
                cells.append(f'<td><a href="#feature-{i}">{html.escape(value)}</a></td>')
            elif c == "drifted":
                cells.append('<td class="flag">DRIFT</td>' if value else "<td></td>")
            elif c in ("note", "kind", "test"):
                cells.append(f'<td class="text">{html.escape(_fmt(value))}</td>')
            else:
                cells.append(f"<td>{_fmt(value)}</td>")
        css = ' class="drifted"' if row["drifted"] else ""
        body.append(f"<tr{css}>{''.join(cells)}</tr>")
    return (
        f'<table class="tests"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def _multivariate_html(mv: MultivariateDrift, baseline: Profile, current: Profile) -> str:
    """The multivariate test: its line, its figures and the component it found."""
    e = html.escape
    badge = ' <span class="flag">DRIFT</span>' if mv.drifted else ""
    rows = [
        ("features", ", ".join(mv.columns)),
        ("test", f"{mv.test} ({mv.permutations:,} permutations)" if mv.test else None),
        ("sampled rows", f"{mv.n_baseline:,} baseline, {mv.n_current:,} current"),
        ("principal components", mv.components or None),
        ("statistic (MMD²)", mv.statistic),
        ("p-value", mv.p_value),
        ("p adjusted", mv.p_adjusted),
        ("effect (MMD)", mv.effect),
        ("seconds", mv.seconds),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{e(_fmt(v))}</td></tr>" for k, v in rows)
    parts = [f'<section id="multivariate"><h2>Numeric features together{badge}</h2>']
    parts.append(f"<p>{e(multivariate_line(mv))}</p>")
    if mv.projection is not None and baseline.sample is not None and current.sample is not None:
        x, y = baseline.sample.matrix(mv.columns), current.sample.matrix(mv.columns)
        parts.append(_projection_html("multivariate", x, y, mv.projection))
    parts.append(f'<table class="stats">{table}</table></section>\n')
    return "".join(parts)


def _vector_rows(name: str, baseline: Profile, current: Profile) -> tuple[Any, Any] | None:
    samples = [p.sample.vectors.get(name) if p.sample else None for p in (baseline, current)]
    return None if samples[0] is None or samples[1] is None else (samples[0], samples[1])


def _projection_html(key: str, x: Any, y: Any, projection: dict[str, Any]) -> str:
    try:
        svg = _svg(key, lambda fig: _projection_figure(fig, x, y, projection))
    except Exception as exc:
        errors.contained.error("drift.report", exc)
        return f'<p class="none">{html.escape(f"the plot failed: {exc!r}")}</p>'
    return f'<div class="plot">{svg}</div>'


def _feature_html(
    index: int,
    drift: ColumnDrift,
    base: ColumnProfile | None,
    cur: ColumnProfile | None,
    vectors: tuple[Any, Any] | None = None,
) -> str:
    e = html.escape
    badge = ' <span class="flag">DRIFT</span>' if drift.drifted else ""
    parts = [f'<article id="feature-{index}"><h3>{e(drift.column)}{badge}</h3>']
    if drift.note:
        parts.append(f'<p class="note">{e(drift.note)}</p>')
    if vectors is not None and drift.projection is not None:
        parts.append(_projection_html(f"feature-{index}", *vectors, drift.projection))
        parts.append(_stats_table(base, cur))
        return "".join(parts) + "</article>\n"
    try:
        svg, why_not = _plot(index, base, cur, drift)
    except Exception as exc:
        errors.contained.error("drift.report", exc)
        svg, why_not = None, f"the plot failed: {exc!r}"
    parts.append(f'<div class="plot">{svg}</div>' if svg else f'<p class="none">{e(why_not)}</p>')
    for what, names in (("new in current", drift.unseen), ("absent from current", drift.vanished)):
        if names:
            shown = ", ".join(e(repr(n)) for n in names[:_MORE])
            more = f" and {len(names) - _MORE} more" if len(names) > _MORE else ""
            parts.append(f'<p class="categories">Categories {what}: {shown}{more}</p>')
    parts.append(_stats_table(base, cur))
    return "".join(parts) + "</article>\n"


def _stats_table(base: ColumnProfile | None, cur: ColumnProfile | None) -> str:
    sides = [("baseline", base), ("current", cur)]
    kinds = {c.kind for _, c in sides if c is not None}
    stats: list[tuple[str, Any]] = [
        ("kind", lambda c: c.kind),
        ("dtype", lambda c: c.dtype),
        ("rows", lambda c: c.count),
        ("nulls", lambda c: c.null_count),
    ]
    if "numeric" in kinds:
        stats += [
            ("infinite", lambda c: c.inf_count if c.kind == "numeric" else None),
            ("min", lambda c: c.min),
            ("median", lambda c: c.quantile(0.5) if c.kind == "numeric" else None),
            ("max", lambda c: c.max),
            ("mean", lambda c: c.mean if c.n else None),
            ("std", lambda c: c.std),
        ]
    if "categorical" in kinds:
        stats.append(("distinct", lambda c: c.distinct))
    head = "<tr><th></th>" + "".join(f"<th>{s}</th>" for s, _ in sides) + "</tr>"
    rows = []
    for label, get in stats:
        cells = "".join(
            f"<td>{html.escape(_fmt(get(c))) if c is not None else 'missing'}</td>"
            for _, c in sides
        )
        rows.append(f"<tr><th>{label}</th>{cells}</tr>")
    return f'<table class="stats">{head}{"".join(rows)}</table>'


# ---- plots --------------------------------------------------------------------------------------
def _plot(
    index: int, base: ColumnProfile | None, cur: ColumnProfile | None, drift: ColumnDrift
) -> tuple[str | None, str]:
    """(inline SVG, "") or (None, why there is no plot)."""
    sides = [(s, c) for s, c in (("baseline", base), ("current", cur)) if c is not None]
    usable = [(s, c) for s, c in sides if c.valid_count > 0]
    if not usable:
        return None, "nothing to plot: no valid values on either side"
    kinds = {c.kind for _, c in usable}
    if len(kinds) > 1:
        return None, "no shared plot: the feature is numeric on one side, categorical on the other"
    if kinds == {"vector"}:
        return None, "no plot: the vector feature was not tested"
    if kinds == {"numeric"}:
        return _svg(index, lambda fig: _numeric_figure(fig, usable)), ""
    return _svg(index, lambda fig: _categorical_figure(fig, usable, drift)), ""


def _svg(index: int | str, draw: Any) -> str:
    return figures.svg(draw, salt=f"inferwatch-{index}")


def _numeric_figure(fig: Any, sides: Sequence[tuple[str, ColumnProfile]]) -> None:
    """Shares over shared bins (the central 99% of both sides), and the two CDFs."""
    fig.set_size_inches(8.0, 2.6)
    # Fixed margins (tick labels are numbers): constrained layout would double the time.
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.2, top=0.9, wspace=0.2)
    hist, cdf = fig.subplots(1, 2, width_ratios=[3, 2])
    lo = min(c.kll.get_quantile(0.005) for _, c in sides)
    hi = max(c.kll.get_quantile(0.995) for _, c in sides)
    if not hi > lo:  # a constant feature: a window around the value
        lo, hi = (
            min(float(c.min or 0.0) for _, c in sides),
            max(float(c.max or 0.0) for _, c in sides),
        )
        pad = max(abs(lo), abs(hi), 1.0) * 0.05 if hi == lo else 0.0
        lo, hi = lo - pad, hi + pad
    edges = np.linspace(lo, hi, _BINS + 1)
    outside = []
    for side, col in sides:
        pmf = np.asarray(col.kll.get_pmf(edges), dtype=float)  # below, bins..., above
        shares = pmf[1:-1]
        color = _COLORS[side]
        if side == "baseline":
            hist.stairs(shares, edges, fill=True, color=color, alpha=0.35, label=side)
        else:
            hist.stairs(shares, edges, color=color, linewidth=1.6, label=side)
        if pmf[0] + pmf[-1] > 0.0005:
            outside.append(f"{side}: {pmf[0]:.1%} below, {pmf[-1]:.1%} above")
        q = np.linspace(0.0, 1.0, 201)
        cdf.plot(col.kll.get_quantiles(q), q, color=color, drawstyle="steps-post", label=side)
    hist.set_ylabel("share of values")
    hist.set_title("distribution (shared bins)", loc="left")
    hist.legend(frameon=False)
    if outside:
        hist.set_xlabel("outside the plotted range: " + "; ".join(outside), fontsize=7)
    cdf.set_ylim(0, 1)
    cdf.set_title("cumulative share", loc="left")


def _projection_figure(fig: Any, x: Any, y: Any, projection: dict[str, Any]) -> None:
    """Both sides along the component on which they differ most, and against the next one."""
    x, y = complete_rows(x), complete_rows(y)
    basis = principal_components(x, y)
    if basis is None:
        raise ValueError("no principal components")
    px, py = basis.project(x), basis.project(y)
    first = int(projection["component"]) - 1
    nxt = projection.get("next")
    fig.set_size_inches(8.0, 2.8)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.2, top=0.88, wspace=0.25)
    hist, scatter = fig.subplots(1, 2, width_ratios=[3, 2])
    both = np.concatenate([px[:, first], py[:, first]])
    lo, hi = (float(q) for q in np.quantile(both, [0.005, 0.995]))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, _BINS + 1)
    for side, values in (("baseline", px[:, first]), ("current", py[:, first])):
        color = _COLORS[side]
        shares = np.histogram(np.clip(values, edges[0], edges[-1]), edges)[0] / len(values)
        if side == "baseline":
            hist.stairs(shares, edges, fill=True, color=color, alpha=0.35, label=side)
        else:
            hist.stairs(shares, edges, color=color, linewidth=1.6, label=side)
    title = f"along principal component {first + 1} (KS {projection['statistic']:.3f})"
    hist.set_title(title, loc="left")
    hist.set_ylabel("share of sampled rows")
    hist.legend(frameon=False)
    if nxt is None:
        scatter.set_axis_off()
        return
    second = int(nxt) - 1
    for side, values in (("baseline", px), ("current", py)):
        shown = values[:_SCATTER_POINTS]
        scatter.scatter(shown[:, first], shown[:, second], s=3, alpha=0.4, color=_COLORS[side])
    scatter.set_xlabel(f"PC {first + 1}")
    scatter.set_ylabel(f"PC {second + 1}")
    scatter.set_title("sampled rows", loc="left")


def _categorical_figure(
    fig: Any, sides: Sequence[tuple[str, ColumnProfile]], drift: ColumnDrift
) -> None:
    """Shares of the top categories side by side; new and vanished ones marked."""
    from matplotlib.patches import Patch

    shares = {}
    for side, col in sides:
        shares[side] = {k: v / col.valid_count for k, v in col.counts().items()}
    names = sorted(
        {k for s in shares.values() for k in s},
        key=lambda k: (-max(s.get(k, 0.0) for s in shares.values()), k),
    )
    top = names[:_TOP_CATEGORIES]
    rest = {side: max(0.0, 1.0 - sum(s.get(k, 0.0) for k in top)) for side, s in shares.items()}
    other = len(names) > len(top) or max(rest.values()) > 0.005
    rows: list[str | None] = [*top, None] if other else list(top)  # None: all other categories
    unseen, vanished = set(drift.unseen), set(drift.vanished)
    fig.set_size_inches(8.0, 0.9 + 0.3 * len(rows))
    fig.set_layout_engine("constrained")  # room for category labels of any length
    ax = fig.subplots()
    y = np.arange(len(rows))
    height = 0.8 / len(sides)
    for i, (side, _col) in enumerate(sides):
        values = [rest[side] if r is None else shares[side].get(r, 0.0) for r in rows]
        color = _COLORS[side]
        bars = ax.barh(y + (i - (len(sides) - 1) / 2) * height, values, height, color=color)
        for bar, r in zip(bars, rows, strict=True):
            if r in unseen:  # hatched: a category the baseline never had
                bar.set(facecolor="white", edgecolor=color, hatch="///")
    labels = []
    for r in rows:
        mark = " [new]" if r in unseen else " [gone]" if r in vanished else ""
        labels.append("(other categories)" if r is None else _short(r) + mark)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("share of non-null values")
    handles = [Patch(color=_COLORS[side], label=side) for side, _col in sides]
    fig.legend(handles=handles, frameon=False, loc="outside upper right", ncols=len(sides))
    ax.set_title("top categories", loc="left")


def _short(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


_LEGEND = (
    "Numeric features: two-sample Kolmogorov–Smirnov test, exact on the row sample while it "
    "holds every row, else on the KLL sketches with their error in the null distribution; "
    "effect = normalised Wasserstein distance. Categorical features: chi-square test of "
    "homogeneity; effect = Jensen–Shannon distance. Vector features and the numeric features "
    "together: MMD with a permutation null on the row samples; effect = MMD. Null shares and "
    "categories: two-proportion tests; effect = Cohen's h. p adjusted = Benjamini–Hochberg "
    "over all tests; a feature drifted when one of its tests is at most alpha (and its effect "
    "at least min_effect, when given). Plots are drawn from the sketches and the row samples."
)

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1100px;padding:0 1rem;color:#222}
h1{font-size:1.5rem;margin:0 0 .5rem}h2{font-size:1.2rem;margin-top:2rem}
h3{font-size:1.05rem;margin:0 0 .4rem;overflow-wrap:anywhere}
.verdict{font-weight:600;padding:.5rem .8rem;border-radius:4px}
.verdict.ok{background:#e6f4ea}.verdict.drift{background:#fde7e4}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dd{margin:0}
table{border-collapse:collapse;font-size:12px}
th,td{padding:.25rem .5rem;border-bottom:1px solid #ddd;text-align:right;vertical-align:top}
th{background:#f4f4f4}td.text{text-align:left}td:first-child,th:first-child{text-align:left}
table.tests{width:100%;display:block;overflow-x:auto}
tr.drifted{background:#fff4f2}.flag{color:#b3261e;font-weight:700}
article{border-top:1px solid #ccc;padding:1rem 0}
.note{color:#7a4b00;background:#fff8e1;padding:.3rem .6rem;border-radius:4px}
.none{color:#666;font-style:italic}.categories{overflow-wrap:anywhere}
.plot svg{max-width:100%;height:auto}
footer{margin-top:2rem;color:#555;font-size:12px}
"""
