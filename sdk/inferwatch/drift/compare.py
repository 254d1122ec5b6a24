"""Drift tests between two profiles (or raw data), computed from the sketches.

Numeric columns get a two-sample Kolmogorov–Smirnov test whose statistic is shrunk by the KLL
sketches' rank-error bounds before the p-value is taken (so sketch error cannot raise false
alarms), plus PSI, Jensen–Shannon and a normalised Wasserstein distance. Categorical columns get a
chi-square test of homogeneity (2×K contingency table, counts shrunk by the frequent-items error
bound when the counts are estimates) and a Jensen–Shannon distance. The p-values of all columns
are controlled together with Benjamini–Hochberg at ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import datasketches as ds
import numpy as np

from inferwatch.drift.profile import ColumnProfile, Profile, render

_GRID = np.linspace(0.0, 1.0, 2001)
_BINS = 10
_EPS = 1e-4
_RARE = 5.0  # chi-square: categories with an expected count below this are pooled


@dataclass
class ColumnDrift:
    column: str
    kind: str | None  # "numeric" | "categorical" (None when unknown)
    test: str | None = None  # "ks" | "chi2" | None
    statistic: float | None = None
    p_value: float | None = None
    distances: dict[str, float] = field(default_factory=dict)
    drifted: bool = False
    note: str | None = None
    unseen: list[str] = field(default_factory=list)  # categories new in current
    vanished: list[str] = field(default_factory=list)  # baseline categories absent in current
    p_adjusted: float | None = None  # Benjamini–Hochberg adjusted p-value
    effect: float | None = None  # normalised Wasserstein (numeric) or JS (categorical)
    n_baseline: int = 0
    n_current: int = 0


@dataclass
class DriftReport:
    columns: dict[str, ColumnDrift]
    alpha: float
    min_effect: float | None = None

    def __getitem__(self, column: str) -> ColumnDrift:
        return self.columns[column]

    def __contains__(self, column: object) -> bool:
        return column in self.columns

    def __iter__(self) -> Iterator[ColumnDrift]:
        return iter(self.columns.values())

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, c in self.columns.items() if c.drifted]

    @property
    def drifted(self) -> bool:
        return bool(self.drifted_columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "drifted": self.drifted,
            "drifted_columns": self.drifted_columns,
            "columns": {name: asdict(c) for name, c in self.columns.items()},
        }

    def __str__(self) -> str:
        rows = []
        for c in self.columns.values():
            rows.append(
                {
                    "column": c.column,
                    "kind": c.kind,
                    "test": c.test,
                    "statistic": c.statistic,
                    "p_value": c.p_value,
                    "p_adj": c.p_adjusted,
                    **c.distances,
                    "drifted": "DRIFT" if c.drifted else "",
                    "note": c.note,
                }
            )
        cols = ["column", "kind", "test", "statistic", "p_value", "p_adj", "psi", "js"]
        cols += ["wasserstein", "drifted", "note"]
        verdict = f"drifted: {', '.join(self.drifted_columns)}" if self.drifted else "no drift"
        notes = [f"{verdict} (Benjamini–Hochberg at alpha={self.alpha})"]
        if self.min_effect is not None:
            notes.append(f"min_effect={self.min_effect}")
        return render(cols, rows, notes)


def compare(
    baseline: Any,
    current: Any,
    *,
    alpha: float = 0.05,
    min_effect: float | None = None,
    columns: list[str] | None = None,
) -> DriftReport:
    """Compare two windows column by column; profiles or raw data on either side.

    A column is ``drifted`` when its Benjamini–Hochberg-adjusted p-value is at most ``alpha``
    and, if ``min_effect`` is given, its effect size (normalised Wasserstein distance for numeric
    columns, Jensen–Shannon distance for categorical ones) is at least ``min_effect``. Bad input
    (missing, empty, all-null or differently typed columns) is reported in ``note``.
    """
    base = baseline if isinstance(baseline, Profile) else Profile.build(baseline)
    cur = current if isinstance(current, Profile) else Profile.build(current)
    names = list(columns) if columns is not None else _union(base.columns, cur.columns)
    results: dict[str, ColumnDrift] = {}
    for name in names:
        if base.format_version != cur.format_version:
            results[name] = ColumnDrift(
                name,
                None,
                note=f"profiles have different format versions "
                f"({base.format_version} vs {cur.format_version}); rebuild them",
            )
            continue
        try:
            results[name] = _compare_column(name, base.columns.get(name), cur.columns.get(name))
        except Exception as exc:  # a report, never an exception
            results[name] = ColumnDrift(name, None, note=f"comparison failed: {exc!r}")
    _decide(results, alpha, min_effect)
    return DriftReport(results, alpha, min_effect)


def _union(a: dict[str, ColumnProfile], b: dict[str, ColumnProfile]) -> list[str]:
    return list(a) + [c for c in b if c not in a]


def _compare_column(
    name: str, base: ColumnProfile | None, cur: ColumnProfile | None
) -> ColumnDrift:
    if base is None or cur is None:
        present = base or cur
        side = "baseline" if base is None else "current"
        kind = present.kind if present is not None else None
        return ColumnDrift(name, kind, note=f"column missing from {side}")
    out = ColumnDrift(name, base.kind, n_baseline=base.valid_count, n_current=cur.valid_count)
    for side, col in (("baseline", base), ("current", cur)):
        if col.count == 0:
            out.note = f"{side} window is empty"
            return out
        if col.valid_count == 0:
            what = "null/NaN/inf" if col.kind == "numeric" else "null"
            out.note = f"all {col.count} values are {what} in {side}"
            return out
    if base.kind != cur.kind:
        out.kind = None
        out.note = f"type changed: {base.kind} ({base.dtype}) in baseline, "
        out.note += f"{cur.kind} ({cur.dtype}) in current"
        return out
    notes = _quality_notes(base, cur)
    if base.kind == "numeric":
        _numeric(base, cur, out, notes)
    else:
        _categorical(base, cur, out, notes)
    out.note = "; ".join(notes) or None
    return out


def _quality_notes(base: ColumnProfile, cur: ColumnProfile) -> list[str]:
    notes = []
    for side, col in (("baseline", base), ("current", cur)):
        if col.mixed_types:
            notes.append(f"mixed types in {side} ({', '.join(col.mixed_types)}), compared as str")
        if col.kind == "numeric" and col.n and col.min == col.max:
            notes.append(f"constant in {side} ({col.min:g})")
    rates = [c.null_count / c.count for c in (base, cur)]
    if abs(rates[1] - rates[0]) > 0.01:
        notes.append(f"null rate {rates[0]:.1%} -> {rates[1]:.1%}")
    if cur.inf_count and not base.inf_count:
        notes.append(f"{cur.inf_count} infinite values in current")
    return notes


# ---- numeric --------------------------------------------------------------------------------
def _rank_error(col: ColumnProfile) -> float:
    if not col.kll.is_estimation_mode():
        return 0.0
    return float(ds.kll_doubles_sketch.get_normalized_rank_error(col.kll.k, False))


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    """Asymptotic two-sample KS p-value with a half-lattice-step continuity correction.

    D of two exact samples moves in steps of at least 1/max(n1, n2); evaluating the Kolmogorov
    limit at D - 0.5/max(n1, n2) keeps the false-alarm rate at or just below alpha for small n.
    """
    from scipy.stats import kstwobign

    en = n1 * n2 / (n1 + n2)
    d = d - 0.5 / max(n1, n2)
    if d <= 0:
        return 1.0
    return float(min(1.0, kstwobign.sf(d * math.sqrt(en))))


def _numeric(base: ColumnProfile, cur: ColumnProfile, out: ColumnDrift, notes: list[str]) -> None:
    k1, k2 = base.kll, cur.kll
    points = np.unique(np.concatenate([k1.get_quantiles(_GRID), k2.get_quantiles(_GRID)]))
    f1 = np.asarray(k1.get_cdf(points, True)[:-1])
    f2 = np.asarray(k2.get_cdf(points, True)[:-1])
    d = float(np.max(np.abs(f1 - f2))) if len(points) else 0.0
    eps = _rank_error(base) + _rank_error(cur)
    out.test = "ks"
    out.statistic = d
    out.p_value = ks_pvalue(max(0.0, d - eps), base.n, cur.n)

    # PSI / JS on baseline-quantile bins
    edges = np.unique(k1.get_quantiles(np.linspace(0, 1, _BINS + 1)[1:-1]))
    p = np.asarray(k1.get_pmf(edges), dtype=float)
    q = np.asarray(k2.get_pmf(edges), dtype=float)
    p, q = np.clip(p, _EPS, None), np.clip(q, _EPS, None)
    p, q = p / p.sum(), q / q.sum()
    psi = float(np.sum((q - p) * np.log(q / p)))

    mid = (np.arange(1000) + 0.5) / 1000
    diff = float(np.mean(np.abs(np.asarray(k1.get_quantiles(mid)) - k2.get_quantiles(mid))))
    scale = next((s for s in (base.std, cur.std) if s), None)
    if scale is None:
        scale = max(abs(base.mean), abs(cur.mean)) or 1.0
    out.distances = {"psi": psi, "js": _js(p, q), "wasserstein": diff / scale}
    out.effect = out.distances["wasserstein"]


def _js(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1])."""
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))


# ---- categorical ----------------------------------------------------------------------------
def _categorical(
    base: ColumnProfile, cur: ColumnProfile, out: ColumnDrift, notes: list[str]
) -> None:
    from scipy.stats import chi2_contingency

    c1, c2 = base.counts(), cur.counts()
    e1, e2 = base.max_error, cur.max_error
    cats = sorted(set(c1) | set(c2))
    if e1 or e2:  # estimated counts: keep the categories clearly above the error bound
        cats = [c for c in cats if c1.get(c, 0) > 2 * e1 or c2.get(c, 0) > 2 * e2]
    a = np.array([c1.get(c, 0) for c in cats], dtype=float)
    b = np.array([c2.get(c, 0) for c in cats], dtype=float)
    n1, n2 = base.valid_count, cur.valid_count
    # Every count is off by at most e (an untracked item's true count is at most e, too).
    bound = np.full(len(cats), e1 / n1 + e2 / n2)
    if e1 or e2:  # the untracked remainder goes to one "other" cell; its error adds up
        a, b = np.append(a, max(0.0, n1 - a.sum())), np.append(b, max(0.0, n2 - b.sum()))
        bound = np.append(bound, len(cats) * (e1 / n1 + e2 / n2))
        notes.append(f"category counts are estimates (±{e1} baseline, ±{e2} current)")
    # With estimated counts, an untracked category may still have up to e occurrences: only
    # report it when its share on the other side is above that.
    out.unseen = [c for c in c2 if c not in c1 and (c2[c] - e2) / n2 > e1 / n1]
    out.vanished = [c for c in c1 if c not in c2 and (c1[c] - e1) / n1 > e2 / n2]
    if out.unseen:
        notes.append(f"{len(out.unseen)} unseen categories in current")
    if out.vanished:
        notes.append(f"{len(out.vanished)} baseline categories absent from current")

    p, q = a / max(a.sum(), 1.0), b / max(b.sum(), 1.0)
    out.distances = {"js": _js(p, q)}
    out.effect = out.distances["js"]

    # Shrink each cell's share difference by its error bound, so that sketch error cannot
    # raise false alarms, and rebuild a table with the same margins.
    d = np.sign(p - q) * np.maximum(0.0, np.abs(p - q) - bound)
    pool = (a + b) / (a.sum() + b.sum())
    n1, n2 = int(a.sum()), int(b.sum())
    a, b = n1 * (pool + d * n2 / (n1 + n2)), n2 * (pool - d * n1 / (n1 + n2))
    a, b = np.maximum(a, 0.0), np.maximum(b, 0.0)  # rounding leaves -1e-13 in one-sided cells
    # Pool rare categories so the chi-square approximation holds.
    rare = pool * min(n1, n2) < _RARE
    if rare.any():
        a = np.append(a[~rare], a[rare].sum())
        b = np.append(b[~rare], b[rare].sum())
    keep = (a + b) > 0
    table = np.vstack([a[keep], b[keep]])
    if table.shape[1] < 2:
        notes.append("fewer than two (non-rare) categories: no chi-square test")
        return
    stat, pval, _dof, _exp = chi2_contingency(table, correction=False)
    out.test, out.statistic, out.p_value = "chi2", float(stat), float(pval)


# ---- decision -------------------------------------------------------------------------------
def _decide(results: dict[str, ColumnDrift], alpha: float, min_effect: float | None) -> None:
    tested = [c for c in results.values() if c.p_value is not None]
    if not tested:
        return
    from scipy.stats import false_discovery_control

    ps = np.clip(np.array([c.p_value for c in tested], dtype=float), 0.0, 1.0)
    adjusted = false_discovery_control(ps, method="bh")
    for col, adj in zip(tested, adjusted, strict=True):
        col.p_adjusted = float(adj)
        big_enough = min_effect is None or (col.effect is not None and col.effect >= min_effect)
        col.drifted = bool(adj <= alpha and big_enough)
        if adj <= alpha and not big_enough:
            extra = f"significant but effect {col.effect:.3g} < min_effect {min_effect}"
            col.note = f"{col.note}; {extra}" if col.note else extra
