"""Multivariate drift: a kernel two-sample test (MMD) on the profiles' row samples.

>>> result = mmd_test(baseline_rows, current_rows, permutations=399, labels=["a", "b"])
>>> result.p_value, result.projection["component"]

Column-by-column tests cannot see a change in how features move together (two features whose
correlation goes from 0 to 0.6 keep their marginals), nor test a column of embeddings. The
test here compares the joint distributions of the sampled rows:

1. rows with a missing value are left out; every column is standardised with the pooled mean
   and standard deviation; the pooled rows are rotated onto their principal components and at
   most :data:`COMPONENTS` are kept (dimensionality reduction before a two-sample test detects
   best: Rabanser et al., "Failing Loudly", 2019);
2. the statistic is the squared maximum mean discrepancy (MMD) between the two sides with the
   sum of two kernels, computed on explicit features (so its cost is linear in the rows): a
   Gaussian kernel whose bandwidth is the median distance between pooled rows
   (:data:`FEATURES` random Fourier features), which sees any change of the joint
   distribution, and a second-order polynomial kernel on the standardised components (each
   component and its square), which sees a change of means, variances or correlations
   soonest;
3. its null distribution comes from permuting the side labels: standardisation, components and
   bandwidth are computed on the pooled rows, which a permutation leaves unchanged, so the
   permutation p-value is exact. Permutations stop once :data:`EXCEEDANCES` of them reach the
   observed statistic (Besag and Clifford's sequential p-value, exceedances / permutations):
   an unchanged window costs a few dozen permutations, a drifted one all of them.

Each comparison costs O(rows x (columns + features x permutations)): with 2,048 rows a
side, under a second on two cores (see docs/benchmarks.md). The principal component on which
the two sides differ most (largest one-dimensional KS statistic) is reported as
``projection`` and plotted in the HTML report.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

COMPONENTS = 32
FEATURES = 256
MIN_ROWS = 20
MAX_PERMUTATIONS = 2999
EXCEEDANCES = 20
_CHUNK = 64
_BANDWIDTH_ROWS = 500


@dataclass
class MultivariateDrift:
    """The multivariate test of a report: the numeric features together (``report.multivariate``)
    or one vector feature."""

    columns: list[str]
    test: str | None = None  # "mmd"
    statistic: float | None = None  # squared MMD
    p_value: float | None = None
    p_adjusted: float | None = None
    effect: float | None = None  # MMD (the square root of the statistic)
    drifted: bool = False
    n_baseline: int = 0
    n_current: int = 0
    permutations: int = 0
    components: int = 0
    projection: dict[str, Any] | None = None
    seconds: float = 0.0
    note: str | None = None


def permutations_for(tests: int, alpha: float) -> int:
    """Permutations that let the test reach Benjamini–Hochberg's smallest threshold,
    alpha / tests, with room to spare (at least 199, at most MAX_PERMUTATIONS)."""
    wanted = math.ceil(2 * max(tests, 1) / max(alpha, 1e-9)) - 1
    return int(min(MAX_PERMUTATIONS, max(199, wanted)))


def mmd_test(
    x: np.ndarray, y: np.ndarray, permutations: int, labels: Sequence[str] | None = None
) -> MultivariateDrift:
    """Test whether the rows of ``x`` and ``y`` (2-D, same columns) share one distribution."""
    start = time.perf_counter()
    out = MultivariateDrift(list(labels) if labels is not None else [])
    notes: list[str] = []
    x, y = complete_rows(x, notes, "baseline"), complete_rows(y, notes, "current")
    out.n_baseline, out.n_current = len(x), len(y)
    basis = principal_components(x, y) if min(len(x), len(y)) >= MIN_ROWS else None
    if basis is None:
        if min(len(x), len(y)) < MIN_ROWS:
            notes.append(f"fewer than {MIN_ROWS} complete sampled rows on a side: no test")
        else:
            notes.append("every column is constant: no test")
        return _done(out, notes, start)
    px, py = basis.project(x), basis.project(y)
    out.components = px.shape[1]
    pooled = np.vstack([px, py])
    # Random features and permutations drawn for these rows: from a seed made of them, so that
    # the same profiles give the same p-value and no two comparisons share their draws.
    rng = np.random.default_rng(zlib.crc32(pooled.tobytes()))
    features = np.hstack([_fourier_features(pooled, rng), _moment_features(pooled)])
    weights = np.concatenate([np.full(len(x), 1 / len(x)), np.full(len(y), -1 / len(y))])
    weights = weights.astype(np.float32)
    observed = float(np.sum((weights @ features) ** 2))
    out.p_value, out.permutations = _permutation_p_value(
        observed, weights, features, permutations, rng
    )
    out.test, out.statistic, out.effect = "mmd", observed, math.sqrt(max(observed, 0.0))
    out.projection = basis.discrepancy(px, py, labels)
    return _done(out, notes, start)


def _permutation_p_value(
    observed: float,
    weights: np.ndarray,
    features: np.ndarray,
    permutations: int,
    rng: np.random.Generator,
) -> tuple[float, int]:
    """(p-value, permutations run): sequential, stopping at EXCEEDANCES exceedances."""
    exceed = 0
    for done in range(0, permutations, _CHUNK):
        count = min(_CHUNK, permutations - done)
        shuffled = rng.permuted(np.tile(weights, (count, 1)), axis=1)
        hits = np.flatnonzero(np.sum((shuffled @ features) ** 2, axis=1) >= observed)
        if exceed + len(hits) >= EXCEEDANCES:
            run = done + int(hits[EXCEEDANCES - exceed - 1]) + 1
            return EXCEEDANCES / run, run
        exceed += len(hits)
    return (1 + exceed) / (1 + permutations), permutations


def _done(out: MultivariateDrift, notes: list[str], start: float) -> MultivariateDrift:
    out.note = "; ".join(notes) or None
    out.seconds = time.perf_counter() - start
    return out


def complete_rows(rows: np.ndarray, notes: list[str] | None = None, side: str = "") -> np.ndarray:
    """The rows without a missing value (how many were left out goes to `notes`)."""
    rows = np.asarray(rows, dtype=np.float64)
    keep = np.isfinite(rows).all(axis=1)
    dropped = len(rows) - int(np.count_nonzero(keep))
    if dropped:
        if notes is not None:
            notes.append(f"{dropped} sampled {side} rows with a missing value left out")
        rows = rows[keep]
    return rows


@dataclass
class Basis:
    """Pooled standardisation and principal components of two sides' rows."""

    mean: np.ndarray
    scale: np.ndarray
    axes: np.ndarray  # (components, columns), unit rows

    def project(self, rows: np.ndarray) -> np.ndarray:
        projected: np.ndarray = ((rows - self.mean) / self.scale) @ self.axes.T
        return projected

    def discrepancy(
        self, px: np.ndarray, py: np.ndarray, labels: Sequence[str] | None
    ) -> dict[str, Any]:
        """The components on which the sides differ most (largest KS statistic), first the
        largest; with the largest loadings of the first."""
        d = np.array([_ks_statistic(px[:, j], py[:, j]) for j in range(px.shape[1])])
        order = [int(j) for j in np.argsort(-d, kind="stable")]
        top = order[0]
        loadings: dict[str, float] = {}
        if labels is not None:
            weights = self.axes[top]
            for j in np.argsort(-np.abs(weights), kind="stable")[:5]:
                if abs(weights[j]) >= 0.05:
                    loadings[str(labels[j])] = float(weights[j])
        return {
            "component": top + 1,
            "statistic": float(d[top]),
            "next": order[1] + 1 if len(order) > 1 else None,
            "std_baseline": float(px[:, top].std()),
            "std_current": float(py[:, top].std()),
            "loadings": loadings,
        }


def principal_components(x: np.ndarray, y: np.ndarray) -> Basis | None:
    """The pooled basis of two sides' complete rows (None when every column is constant)."""
    pooled = np.vstack([x, y])
    mean, scale = pooled.mean(axis=0), pooled.std(axis=0)
    varying = scale > 1e-12 * np.maximum(1.0, np.abs(mean))
    if not varying.any():
        return None
    scale = np.where(varying, scale, 1.0)
    z = (pooled - mean) / scale
    z[:, ~varying] = 0.0
    _u, s, vt = np.linalg.svd(z, full_matrices=False)
    rank = int(np.count_nonzero(s > s[0] * 1e-9)) if len(s) else 0
    axes = vt[: max(1, min(COMPONENTS, rank))]
    # A component's sign is arbitrary: make its largest loading positive (stable plots).
    signs = np.sign(axes[np.arange(len(axes)), np.argmax(np.abs(axes), axis=1)])
    return Basis(mean, scale, axes * signs[:, None])


def _fourier_features(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random Fourier features of a Gaussian kernel of median-distance bandwidth."""
    subset = rows[rng.permutation(len(rows))[:_BANDWIDTH_ROWS]]
    squared = np.sum(subset**2, axis=1)
    distances = squared[:, None] + squared[None, :] - 2 * subset @ subset.T
    positive = distances[distances > 1e-12]
    bandwidth = math.sqrt(float(np.median(positive))) if len(positive) else 1.0
    omega = rng.standard_normal((rows.shape[1], FEATURES)) / bandwidth
    phase = rng.uniform(0.0, 2 * math.pi, FEATURES)
    features: np.ndarray = (math.sqrt(2 / FEATURES) * np.cos(rows @ omega + phase)).astype(
        np.float32
    )
    return features


def _moment_features(rows: np.ndarray) -> np.ndarray:
    """Each principal component, standardised, and its square: the features of a second-order
    polynomial kernel, which sees a change of variance or correlation far sooner than a
    Gaussian kernel of median bandwidth. Scaled so that, together, they weigh as much as the
    Fourier features (a total variance of about 1 each)."""
    scale = rows.std(axis=0)
    z = rows / np.where(scale > 0, scale, 1.0)
    moments = np.hstack([z, (z**2 - 1) / math.sqrt(2)])
    weighted: np.ndarray = (moments / math.sqrt(moments.shape[1])).astype(np.float32)
    return weighted


def _ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    fa = np.searchsorted(a, points, side="right") / len(a)
    fb = np.searchsorted(b, points, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))
