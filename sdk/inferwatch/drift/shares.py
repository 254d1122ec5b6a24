"""Data-quality drift as tests: the null share and the categories of a column.

>>> test = null_share(baseline.columns["age"], current.columns["age"])
>>> test.baseline, test.current, test.p_value            # 0.0, 0.05, 1.2e-110

A pipeline bug often looks like drift: a join that starts returning nulls, a default value, a
new spelling of a category. These tests put such changes in the same Benjamini–Hochberg family
as the distribution tests, so that a significant one marks the column drifted:

* ``null_share``: the share of rows without a usable value (null, NaN, and for numbers ±inf;
  for a vector feature, a row with any of them), two-sided;
* ``cardinality`` (categorical columns with exact counts): the share of the current values in
  categories the baseline never had, against the share that chance alone puts there — and the
  same the other way round for categories that vanished; two one-sided tests,
  Bonferroni-combined. Given the pooled count m of a category, with no drift all its m values
  fall on the current side with probability (n₂/N)^m, independently of the other categories;
  the null distribution of the share is simulated from that (2,000 draws, from a seed made of
  the counts), and below 0.5% it is bounded with Chernoff's inequality. A rare category seen
  on one side only is what sampling does; a default value that takes 5% of the rows is not.

The null share is a two-proportion test: Fisher's exact test when an expected count is below
5, the pooled z-test otherwise. The effect size of both is Cohen's h, 2·|asin √p₁ − asin √p₂|
(the two shares; for categories, the observed share and the one chance explains), which
``min_effect`` applies to as it does to the distribution tests' effect sizes.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

from inferwatch.drift.profile import ColumnProfile

Alternative = Literal["two-sided", "greater", "less"]
SIMULATIONS = 2000
_TAIL_COUNT = 10


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
    if base.max_error or cur.max_error or not base.valid_count or not cur.valid_count:
        return None
    c1, c2 = base.counts(), cur.counts()
    n1, n2 = base.valid_count, cur.valid_count
    new = sum(v for k, v in c2.items() if k not in c1)
    gone = sum(v for k, v in c1.items() if k not in c2)
    if not new and not gone:
        return None
    pooled = np.array([c1.get(k, 0) + c2.get(k, 0) for k in {**c1, **c2}], dtype=np.float64)
    rng = np.random.default_rng(zlib.crc32(np.sort(pooled).tobytes()) ^ n1 ^ (n2 << 20))
    p_new, chance_new = one_side_only(pooled, n2 / (n1 + n2), new, rng)
    p_gone, chance_gone = one_side_only(pooled, n1 / (n1 + n2), gone, rng)
    if p_new <= p_gone:
        expected, seen = chance_new / n2, new / n2
        what = f"new categories hold {seen:.1%} of current values"
    else:
        expected, seen = chance_gone / n1, gone / n1
        what = f"vanished categories held {seen:.1%} of baseline values"
    return ShareTest(
        "cardinality",
        expected,
        seen,
        min(1.0, 2 * min(p_new, p_gone)),
        cohens_h(expected, seen),
        f"{what} (by chance {expected:.1%})",
    )


def one_side_only(
    pooled: np.ndarray, share: float, observed: float, rng: np.random.Generator
) -> tuple[float, float]:
    """(p-value, expected value) of the number of values in categories found on one side only,
    that side holding `share` of all values: a category of pooled count m is there alone with
    probability share**m."""
    if observed <= 0:
        return 1.0, 0.0
    alone = share**pooled
    keep = alone > 1e-12  # the others (common categories) are never on one side alone
    counts, alone = pooled[keep], alone[keep]
    expected = float(counts @ alone)
    if not len(counts):
        return 0.0, 0.0
    draws = (rng.random((SIMULATIONS, len(counts))) < alone) @ counts
    exceed = int(np.count_nonzero(draws >= observed))
    if exceed >= _TAIL_COUNT:
        return (1 + exceed) / (1 + SIMULATIONS), expected
    return min(_TAIL_COUNT / (1 + SIMULATIONS), _chernoff(counts, alone, observed)), expected


def _chernoff(counts: np.ndarray, alone: np.ndarray, observed: float) -> float:
    """An upper bound of P(sum of counts[i] * Bernoulli(alone[i]) >= observed)."""
    from scipy.optimize import minimize_scalar

    def log_bound(t: float) -> float:
        terms = np.logaddexp(np.log1p(-alone), np.log(alone) + t * counts)
        return float(terms.sum() - t * observed)

    best = minimize_scalar(log_bound, bounds=(0.0, 50.0 / max(1.0, counts.min())), method="bounded")
    return float(min(1.0, math.exp(min(0.0, best.fun))))


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
