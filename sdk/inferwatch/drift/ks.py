"""The two-sample Kolmogorov–Smirnov test of `compare`: exact when it can be, calibrated when not.

>>> result = ks_test(baseline.columns["amount"], current.columns["amount"], base_values, None)
>>> result.statistic, result.p_value, result.method     # 0.0081, 3.2e-05, "sketch"

* **exact**: when every finite value of both sides is known — the profile's row sample holds
  all its rows, or the KLL sketch has not compacted yet — the test is scipy's ``ks_2samp`` on
  those values: the test a user would run on the raw data.
* **sketch**: otherwise, D is taken between the two sides' CDFs at 256 points (the pooled
  quantiles), each side the mean of its two independent KLL sketches (or its exact values).
  Under the null, D is the largest deviation of a Brownian bridge (the sampling error) plus
  the sketches' own rank error. Half the difference of a column's two sketches has the same
  distribution as the error of their mean (both are half a sum of two independent, symmetric
  errors), so the null is simulated: 1,000 bridges at the same points plus that half
  difference with random signs. The p-value is the share of simulations at least as large as
  D; below 1% (fewer than 10 exceedances) it is read off a Kolmogorov tail scaled to the
  simulations' 95th percentile, so that strong drifts keep p-values small enough for
  Benjamini–Hochberg over many tests. The simulations are drawn anew for each comparison,
  from a seed made of the compared CDFs (a fixed set of bridges would shift every
  comparison's false-alarm rate the same way; a seed from the data keeps a report
  reproducible). Profiles feed the sketches their values in a random order, which makes the
  sketch error a sum of many independent compaction errors.
* **sketch, bounded**: a side without a second sketch (a profile of format 1) falls back to
  the old conservative test: D shrunk by both sketches' a-priori rank-error bound.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import datasketches as ds
import numpy as np

from inferwatch.drift.profile import ColumnProfile

GRID = 256
SIMULATIONS = 1000
_TAIL_COUNT = 10
_TAIL_QUANTILE = 0.95


@dataclass(frozen=True)
class KSResult:
    statistic: float
    p_value: float
    method: str  # "exact" | "sketch" | "sketch, bounded"


def ks_test(
    base: ColumnProfile,
    cur: ColumnProfile,
    base_values: np.ndarray | None,
    cur_values: np.ndarray | None,
) -> KSResult:
    """Test two numeric columns; ``*_values`` are their complete finite values, when known."""
    a = _Side(base, base_values)
    b = _Side(cur, cur_values)
    if a.values is not None and b.values is not None:
        from scipy.stats import ks_2samp

        result = ks_2samp(a.values, b.values)
        return KSResult(float(result.statistic), float(result.pvalue), "exact")
    points, index = _grid(a, b)
    fa, fb = a.cdf(points), b.cdf(points)
    d = float(np.max(np.abs(fa - fb))) if len(points) else 0.0
    if a.unknown_error or b.unknown_error:
        eps = a.error_bound() + b.error_bound()
        return KSResult(d, ks_pvalue(max(0.0, d - eps), a.n, b.n), "sketch, bounded")
    seed = zlib.crc32(np.concatenate([fa, fb, [a.n, b.n]]).tobytes())
    errors = (a.half_difference(points), b.half_difference(points))
    null = _null(index, *errors, a.n, b.n, np.random.default_rng(seed))
    return KSResult(d, _p_value(d, null), "sketch")


class _Side:
    """One side of the test: its exact sorted values, or its sketches."""

    def __init__(self, col: ColumnProfile, values: np.ndarray | None) -> None:
        self.n = col.n
        self.kll, self.twin = col.kll, col.kll_twin
        if values is None and not col.kll.is_estimation_mode():
            values = np.array([item for item, _weight in col.kll], dtype=np.float64)
        self.values = None if values is None or len(values) != col.n else np.sort(values)

    @property
    def unknown_error(self) -> bool:
        return self.values is None and self.twin is None

    def cdf(self, points: np.ndarray) -> np.ndarray:
        if self.values is not None:
            return np.asarray(np.searchsorted(self.values, points, side="right") / len(self.values))
        out = np.asarray(self.kll.get_cdf(points))[:-1]
        if self.twin is not None:
            out = (out + np.asarray(self.twin.get_cdf(points))[:-1]) / 2
        return out

    def half_difference(self, points: np.ndarray) -> np.ndarray:
        """Half the difference of the two sketches' CDFs: a draw of the error of their mean."""
        if self.values is not None or self.twin is None:
            return np.zeros(len(points))
        a = np.asarray(self.kll.get_cdf(points))[:-1]
        return np.asarray((a - np.asarray(self.twin.get_cdf(points))[:-1]) / 2)

    def quantiles(self, probs: np.ndarray) -> np.ndarray:
        if self.values is not None:
            return np.asarray(np.quantile(self.values, probs))
        return np.asarray(self.kll.get_quantiles(probs))

    def error_bound(self) -> float:
        if self.values is not None:
            return 0.0
        return float(ds.kll_doubles_sketch.get_normalized_rank_error(self.kll.k, False))


def _grid(a: _Side, b: _Side) -> tuple[np.ndarray, np.ndarray]:
    """The points where D is taken (the pooled quantiles at (i + 0.5) / GRID), and the index of
    each point's pooled rank on that grid (several for ties)."""
    fine = np.linspace(0.0, 1.0, 4 * GRID + 1)
    candidates = np.unique(np.concatenate([a.quantiles(fine), b.quantiles(fine)]))
    pooled = _pooled(a, b, candidates)
    probs = (np.arange(GRID) + 0.5) / GRID
    points = np.unique(np.interp(probs, pooled, candidates))
    ranks = _pooled(a, b, points)
    index = np.clip(np.rint(ranks * GRID - 0.5), 0, GRID - 1).astype(np.intp)
    return points, index


def _pooled(a: _Side, b: _Side, points: np.ndarray) -> np.ndarray:
    return np.asarray((a.n * a.cdf(points) + b.n * b.cdf(points)) / (a.n + b.n))


_RANKS = (np.arange(GRID) + 0.5) / GRID
_STEPS = np.sqrt(np.diff(np.concatenate([[0.0], _RANKS, [1.0]])))


def _bridges(rng: np.random.Generator) -> np.ndarray:
    """SIMULATIONS Brownian bridges at the grid's ranks (i + 0.5) / GRID, float32."""
    walk = rng.standard_normal((SIMULATIONS, GRID + 1), dtype=np.float32)
    walk *= _STEPS.astype(np.float32)
    np.cumsum(walk, axis=1, out=walk)
    bridges: np.ndarray = walk[:, :GRID] - _RANKS.astype(np.float32) * walk[:, GRID:]
    return bridges


def _null(
    index: np.ndarray,
    error_a: np.ndarray,
    error_b: np.ndarray,
    n1: int,
    n2: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """SIMULATIONS draws of D under the null: the sampling bridge plus the sketch error."""
    signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(SIMULATIONS, 2))
    draws = np.take(_bridges(rng), index, axis=1)
    draws *= np.float32(math.sqrt(1 / n1 + 1 / n2))
    for sign, error in zip(signs.T, (error_a, error_b), strict=True):
        if error.any():
            draws += sign[:, None] * error.astype(np.float32)
    null: np.ndarray = np.abs(draws, out=draws).max(axis=1)
    return null


def _p_value(d: float, null: np.ndarray) -> float:
    from scipy.stats import kstwobign

    exceed = int(np.count_nonzero(null >= d))
    if exceed >= _TAIL_COUNT:
        return (1 + exceed) / (1 + len(null))
    # The far tail: the Kolmogorov distribution scaled to the simulations' 99th percentile.
    scale = float(kstwobign.ppf(_TAIL_QUANTILE)) / float(np.quantile(null, _TAIL_QUANTILE))
    return min(_TAIL_COUNT / (1 + len(null)), float(kstwobign.sf(d * scale)))


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


def sample_values(profile: Any, name: str, col: ColumnProfile) -> np.ndarray | None:
    """The column's complete finite values from the profile's row sample, when it holds them."""
    sample = getattr(profile, "sample", None)
    if sample is None or not sample.complete:
        return None
    values = sample.column(name)
    return values if values is not None and len(values) == col.n else None
