"""Data-quality drift as tests: the null share and the categories of a column.

>>> test = null_share(baseline.columns["age"], current.columns["age"])
>>> test.baseline, test.current, test.p_value            # 0.0, 0.05, 1.2e-110

A pipeline bug often looks like drift: a join that starts returning nulls, a default value, a
new spelling of a category. These tests put such changes in the same Benjamini–Hochberg family
as the distribution tests, so that a significant one marks the column drifted:

* ``null_share``: the share of rows without a usable value (null, NaN, and for numbers ±inf;
  for a vector feature, a row with any of them), two-sided;
* ``cardinality`` (categorical columns with exact counts): the share of the current values in
  categories the baseline never had, against the share the baseline itself leaves unseen — its
  singletons (Good–Turing's estimate of the mass of unseen categories); and the same the other
  way round for categories that vanished. Two one-sided tests, Bonferroni-combined.

Each is a two-proportion test: Fisher's exact test when an expected count is below 5, the
pooled z-test otherwise. The effect size is Cohen's h, 2·|asin √p₁ − asin √p₂|, which
``min_effect`` applies to as it does to the distribution tests' effect sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from inferwatch.drift.profile import ColumnProfile

Alternative = Literal["two-sided", "greater", "less"]


@dataclass
class ShareTest:
    """One share test of a column: the shares, the p-value and whether it drifted."""

    test: str  # "null_share" | "cardinality"
    baseline: float
    current: float
    p_value: float
    effect: float  # Cohen's h
    description: str
    p_adjusted: float | None = None
    drifted: bool = False


def null_share(base: ColumnProfile, cur: ColumnProfile) -> ShareTest | None:
    """The test of the null share (None when neither side has a null)."""
    x1, x2 = base.count - base.valid_count, cur.count - cur.valid_count
    if x1 == 0 and x2 == 0:
        return None
    p1, p2 = x1 / base.count, x2 / cur.count
    return ShareTest(
        "null_share",
        p1,
        p2,
        two_proportions(x1, base.count, x2, cur.count),
        cohens_h(p1, p2),
        f"null share {p1:.1%} -> {p2:.1%}",
    )


def cardinality(base: ColumnProfile, cur: ColumnProfile) -> ShareTest | None:
    """New or vanished categories beyond what sampling explains (None: nothing to test, or the
    counts are estimates)."""
    if base.max_error or cur.max_error:
        return None
    c1, c2 = base.counts(), cur.counts()
    n1, n2 = base.valid_count, cur.valid_count
    new = [k for k in c2 if k not in c1]
    gone = [k for k in c1 if k not in c2]
    if not new and not gone:
        return None
    new_share, gone_share = sum(c2[k] for k in new), sum(c1[k] for k in gone)
    unseen1 = sum(1 for v in c1.values() if v == 1)  # the baseline's singletons
    unseen2 = sum(1 for v in c2.values() if v == 1)
    p_new = two_proportions(unseen1, n1, new_share, n2, "greater") if new else 1.0
    p_gone = two_proportions(unseen2, n2, gone_share, n1, "greater") if gone else 1.0
    if p_new <= p_gone:
        expected, seen = unseen1 / n1, new_share / n2
        what = f"new categories hold {seen:.1%} of current values"
    else:
        expected, seen = unseen2 / n2, gone_share / n1
        what = f"vanished categories held {seen:.1%} of baseline values"
    return ShareTest(
        "cardinality",
        expected,
        seen,
        min(1.0, 2 * min(p_new, p_gone)),
        cohens_h(expected, seen),
        f"{what} (by chance {expected:.1%})",
    )


def two_proportions(
    x1: int, n1: int, x2: int, n2: int, alternative: Alternative = "two-sided"
) -> float:
    """p-value of x1/n1 = x2/n2 against `alternative` (for "greater": x2/n2 > x1/n1)."""
    from scipy.stats import fisher_exact, norm

    pooled = (x1 + x2) / (n1 + n2)
    expected = min(n * share for n in (n1, n2) for share in (pooled, 1 - pooled))
    if expected < 5:
        # rows: the two sides; "greater" asks whether side 2's odds are higher, which in
        # fisher_exact's terms is side 1's odds being lower.
        table = [[x1, n1 - x1], [x2, n2 - x2]]
        side = {"two-sided": "two-sided", "greater": "less", "less": "greater"}[alternative]
        return float(fisher_exact(table, alternative=side).pvalue)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x2 / n2 - x1 / n1) / se
    if alternative == "two-sided":
        return float(2 * norm.sf(abs(z)))
    return float(norm.sf(z) if alternative == "greater" else norm.cdf(z))


def cohens_h(p1: float, p2: float) -> float:
    """Cohen's h effect size of two proportions (0 to π)."""
    return abs(2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2)))
