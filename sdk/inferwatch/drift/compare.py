"""Drift tests between two profiles (or raw data).

Numeric columns get a two-sample Kolmogorov–Smirnov test: exact on the row sample while it
holds every row, otherwise on the KLL sketches with a null distribution that includes the
sketches' own error (:mod:`inferwatch.drift.ks`); plus PSI, Jensen–Shannon and a normalised
Wasserstein distance. Categorical columns get a chi-square test of homogeneity (2×K contingency
table, counts shrunk by the frequent-items error bound when the counts are estimates) and a
Jensen–Shannon distance. Vector features and the numeric features taken together get a kernel
two-sample test on the row samples (:mod:`inferwatch.drift.multivariate`). Null shares and
categories are tested too (:mod:`inferwatch.drift.shares`). All p-values — every column's
tests and the multivariate one — are controlled together with Benjamini–Hochberg at ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from inferwatch.drift.ks import ks_test, sample_values
from inferwatch.drift.multivariate import MultivariateDrift, mmd_test, permutations_for
from inferwatch.drift.profile import TARGETS, ColumnProfile, Profile, render
from inferwatch.drift.shares import ShareTest, cardinality, null_share

_BINS = 10
_EPS = 1e-4
_RARE = 5.0  # chi-square: categories with an expected count below this are pooled


@dataclass
class ColumnDrift:
    column: str
    kind: str | None  # "numeric" | "categorical" | "vector" (None when unknown)
    test: str | None = None  # "ks" | "chi2" | "mmd" | None
    statistic: float | None = None
    p_value: float | None = None
    distances: dict[str, float] = field(default_factory=dict)
    drifted: bool = False
    note: str | None = None
    unseen: list[str] = field(default_factory=list)  # categories new in current
    vanished: list[str] = field(default_factory=list)  # baseline categories absent in current
    p_adjusted: float | None = None  # Benjamini–Hochberg adjusted p-value
    effect: float | None = None  # normalised Wasserstein (numeric), JS (categorical), MMD
    n_baseline: int = 0
    n_current: int = 0
    method: str | None = None  # "exact" | "sketch" | "sketch, bounded" | "permutation"
    shares: list[ShareTest] = field(default_factory=list)  # null share, categories
    projection: dict[str, Any] | None = None  # vector features: see MultivariateDrift
    test_drifted: bool = False
    """The distribution test's own verdict (``drifted`` also counts the share tests)."""


Tested = ColumnDrift | ShareTest | MultivariateDrift
"""A test result of a report (each has ``test``, ``p_value`` and ``effect``)."""


def test_verdict(result: Tested) -> bool:
    """Whether that one test drifted (for a column: its distribution test)."""
    return result.test_drifted if isinstance(result, ColumnDrift) else result.drifted


@dataclass
class DriftReport:
    columns: dict[str, ColumnDrift]
    alpha: float
    min_effect: float | None = None
    multivariate: MultivariateDrift | None = None
    """The numeric features tested together; None with fewer than two of them."""

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
        """Some column drifted, or the numeric features together did."""
        mv = self.multivariate
        return bool(self.drifted_columns) or (mv is not None and mv.drifted)

    def to_dict(self) -> dict[str, Any]:
        mv = self.multivariate
        return {
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "drifted": self.drifted,
            "drifted_columns": self.drifted_columns,
            "columns": {name: asdict(c) for name, c in self.columns.items()},
            "multivariate": None if mv is None else asdict(mv),
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
        verdict = f"drifted: {', '.join(self.drifted_columns)}" if self.drifted_columns else ""
        notes = [f"{verdict or 'no drift'} (Benjamini–Hochberg at alpha={self.alpha})"]
        if self.multivariate is not None:
            notes.append(multivariate_line(self.multivariate))
        if self.min_effect is not None:
            notes.append(f"min_effect={self.min_effect}")
        return render(cols, rows, notes)


def multivariate_line(mv: MultivariateDrift) -> str:
    """One line on the multivariate test: its verdict, p-value and strongest projection."""
    what = f"multivariate ({len(mv.columns)} numeric features together)"
    if mv.p_value is None:
        return f"{what}: not tested ({mv.note})"
    line = f"{what}: {'DRIFT' if mv.drifted else 'no drift'}, {mv.test} p={mv.p_value:.3g}"
    if mv.p_adjusted is not None:
        line += f" (adjusted {mv.p_adjusted:.3g})"
    if mv.projection:
        loads = ", ".join(f"{k} {v:+.2f}" for k, v in mv.projection["loadings"].items())
        line += f"; most different along PC{mv.projection['component']}"
        line += f" ({loads})" if loads else ""
    return line + (f"; {mv.note}" if mv.note else "")


def compare(
    baseline: Any,
    current: Any,
    *,
    alpha: float = 0.05,
    min_effect: float | None = None,
    columns: list[str] | None = None,
) -> DriftReport:
    """Compare two windows column by column; profiles or raw data on either side.

    >>> report = compare(Profile.load("baseline.iwp"), today_df)
    >>> report.drifted_columns, report.multivariate.p_value

    A column is ``drifted`` when the Benjamini–Hochberg-adjusted p-value of its distribution
    test, or of its null-share or category test, is at most ``alpha`` and, if ``min_effect``
    is given, that test's effect size (normalised Wasserstein distance for numeric columns,
    Jensen–Shannon distance for categorical ones, MMD for vectors, Cohen's h for shares) is
    at least ``min_effect``. With at least two numeric features on both sides,
    ``report.multivariate`` tests them together, in the same Benjamini–Hochberg family. Bad
    input (missing, empty, all-null or differently typed columns) is reported in ``note``.
    """
    base = baseline if isinstance(baseline, Profile) else Profile.build(baseline)
    cur = current if isinstance(current, Profile) else Profile.build(current)
    names = list(columns) if columns is not None else _union(base.columns, cur.columns)
    permutations = permutations_for(len(names) + 1, alpha)
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
            results[name] = _compare_column(name, base, cur, permutations)
        except Exception as exc:  # a report, never an exception
            results[name] = ColumnDrift(name, None, note=f"comparison failed: {exc!r}")
    multivariate = _multivariate(base, cur, names, permutations)
    _decide(results, multivariate, alpha, min_effect)
    return DriftReport(results, alpha, min_effect, multivariate)


def _union(a: dict[str, ColumnProfile], b: dict[str, ColumnProfile]) -> list[str]:
    return list(a) + [c for c in b if c not in a]


def _compare_column(name: str, base_p: Profile, cur_p: Profile, permutations: int) -> ColumnDrift:
    base, cur = base_p.columns.get(name), cur_p.columns.get(name)
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
    if base.kind != cur.kind:
        out.kind = None
        out.note = f"type changed: {base.kind} ({base.dtype}) in baseline, "
        out.note += f"{cur.kind} ({cur.dtype}) in current"
        return out
    out.shares = [t for t in (null_share(base, cur), _cardinality(base, cur)) if t is not None]
    for side, col in (("baseline", base), ("current", cur)):
        if col.valid_count == 0:
            what = "null/NaN/inf" if col.kind == "numeric" else "null"
            out.note = f"all {col.count} values are {what} in {side}"
            return out
    notes = _quality_notes(base, cur)
    if base.kind == "numeric":
        _numeric(
            base,
            cur,
            out,
            notes,
            sample_values(base_p, name, base),
            sample_values(cur_p, name, cur),
        )
    elif base.kind == "vector":
        _vector(name, base_p, cur_p, out, notes, permutations)
    else:
        _categorical(base, cur, out, notes)
    out.note = "; ".join(notes) or None
    return out


def _cardinality(base: ColumnProfile, cur: ColumnProfile) -> ShareTest | None:
    return cardinality(base, cur) if base.kind == "categorical" else None


def _quality_notes(base: ColumnProfile, cur: ColumnProfile) -> list[str]:
    notes = []
    for side, col in (("baseline", base), ("current", cur)):
        if col.mixed_types:
            notes.append(f"mixed types in {side} ({', '.join(col.mixed_types)}), compared as str")
        if col.kind == "numeric" and col.n and col.min == col.max:
            notes.append(f"constant in {side} ({col.min:g})")
    if cur.inf_count and not base.inf_count:
        notes.append(f"{cur.inf_count} infinite values in current")
    return notes


# ---- numeric --------------------------------------------------------------------------------
def _numeric(
    base: ColumnProfile,
    cur: ColumnProfile,
    out: ColumnDrift,
    notes: list[str],
    base_values: np.ndarray | None,
    cur_values: np.ndarray | None,
) -> None:
    k1, k2 = base.kll, cur.kll
    ks = ks_test(base, cur, base_values, cur_values)
    out.test, out.statistic, out.p_value, out.method = "ks", ks.statistic, ks.p_value, ks.method
    if ks.method == "sketch, bounded":
        notes.append("a profile of format 1: KS statistic shrunk by the sketch error bound")

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


# ---- vectors and the numeric features together --------------------------------------------------
def _vector(
    name: str, base_p: Profile, cur_p: Profile, out: ColumnDrift, notes: list[str], perms: int
) -> None:
    samples = [
        p.sample.vectors.get(name) if p.sample is not None else None for p in (base_p, cur_p)
    ]
    if samples[0] is None or samples[1] is None:
        notes.append("a profile without a row sample: the vectors are not tested")
        return
    result = mmd_test(samples[0], samples[1], perms)
    out.test, out.method = result.test, "permutation" if result.test else None
    out.statistic, out.p_value, out.effect = result.statistic, result.p_value, result.effect
    out.projection = result.projection
    out.distances = {} if result.effect is None else {"mmd": result.effect}
    if result.note:
        notes.append(result.note)


def _multivariate(
    base: Profile, cur: Profile, names: list[str], permutations: int
) -> MultivariateDrift | None:
    """The numeric features of both sides tested together (None: fewer than two)."""
    numeric = [
        n
        for n in names
        if n not in TARGETS
        and all(
            p.columns.get(n) is not None and p.columns[n].kind == "numeric" for p in (base, cur)
        )
    ]
    if len(numeric) < 2:
        return None
    missing = [side for side, p in (("baseline", base), ("current", cur)) if p.sample is None]
    if missing:
        note = f"no row sample in the {' and '.join(missing)} profile (built with sample_rows=0"
        note += ", or of format 1)"
        return MultivariateDrift(numeric, note=note)
    assert base.sample is not None and cur.sample is not None
    sampled = [n for n in numeric if n in base.sample.columns and n in cur.sample.columns]
    if len(sampled) < 2:
        return MultivariateDrift(numeric, note="fewer than two numeric features in the row samples")
    try:
        return mmd_test(
            base.sample.matrix(sampled), cur.sample.matrix(sampled), permutations, sampled
        )
    except Exception as exc:  # a report, never an exception
        return MultivariateDrift(sampled, note=f"comparison failed: {exc!r}")


# ---- decision -------------------------------------------------------------------------------
def _decide(
    results: dict[str, ColumnDrift],
    multivariate: MultivariateDrift | None,
    alpha: float,
    min_effect: float | None,
) -> None:
    """Benjamini–Hochberg over every p-value; a test drifts when its adjusted p-value is at most
    alpha and its effect at least min_effect."""
    family: list[Tested] = [c for c in results.values() if c.p_value is not None]
    family += [t for c in results.values() for t in c.shares]
    if multivariate is not None and multivariate.p_value is not None:
        family.append(multivariate)
    if not family:
        return
    from scipy.stats import false_discovery_control

    ps = np.clip(np.array([t.p_value for t in family], dtype=float), 0.0, 1.0)
    adjusted = false_discovery_control(ps, method="bh")
    for test, adj in zip(family, adjusted, strict=True):
        test.p_adjusted = float(adj)
        big_enough = min_effect is None or (test.effect is not None and test.effect >= min_effect)
        test.drifted = bool(adj <= alpha and big_enough)
    for col in results.values():
        notes = [col.note] if col.note else []
        if col.p_adjusted is not None and col.p_adjusted <= alpha and not col.drifted:
            notes.append(f"significant but effect {col.effect:.3g} < min_effect {min_effect}")
        for share in col.shares:
            if share.drifted:
                notes.append(f"{share.description}: drifted (p_adj={share.p_adjusted:.2g})")
            elif abs(share.current - share.baseline) > 0.01:
                notes.append(share.description)
        col.test_drifted = col.drifted
        col.drifted = col.drifted or any(share.drifted for share in col.shares)
        col.note = "; ".join(notes) or None
    mv = multivariate
    if mv is not None and mv.p_adjusted is not None and mv.p_adjusted <= alpha and not mv.drifted:
        extra = f"significant but effect {mv.effect:.3g} < min_effect {min_effect}"
        mv.note = f"{mv.note}; {extra}" if mv.note else extra
