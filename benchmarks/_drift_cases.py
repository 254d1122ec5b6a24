"""The drift benchmark's cases and their data, drawn the same way in both virtual environments.

Imports numpy only: `bench_drift.py` (the project's venv) and `_drift_peers.py` (the peers' venv,
older numpy) draw every trial from ``SeedSequence([seed, case index, trial])``, and both print a
checksum of the first trial so that a run shows the two saw the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEED = 20261207
ALPHA = 0.05
CATEGORIES = 50
CATEGORY_P = (1 / np.arange(1, CATEGORIES + 1)) / (1 / np.arange(1, CATEGORIES + 1)).sum()
"""50 categories with Zipf-like probabilities (p_i proportional to 1/i; the rarest has 0.44%)."""
COLUMNS = 8
EMBEDDING_DIM = 384


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    kind: str  # "numeric" | "categorical" | "correlation" | "embedding"
    n: int
    shift: float = 0.0
    """numeric: mean shift in sigma; categorical: probability mass moved from c00 to c49;
    correlation: the correlation of the first two columns in the current window; embedding:
    mean shift along one random unit direction in units of the embeddings' spread (the root
    mean square distance from their mean, sqrt(384) here) — or, for "per-coordinate" cases, in
    units of one coordinate's sigma."""
    drifted: bool = False
    per_coordinate: bool = False


TABLE = [  # the table, left to right
    Case("fa100k", "FA N(0,1) n=100k", "numeric", 100_000),
    Case("fa1m", "FA n=1M", "numeric", 1_000_000),
    Case("fa_cat", "FA 50 categories n=100k", "categorical", 100_000),
    Case("s002", "0.02σ n=100k", "numeric", 100_000, 0.02, True),
    Case("s005", "0.05σ", "numeric", 100_000, 0.05, True),
    Case("s01", "0.1σ", "numeric", 100_000, 0.1, True),
]
MULTIVARIATE = [
    Case("corr_fa", "8 columns, unchanged, n=5,000", "correlation", 5000),
    Case("corr", "8 columns, corr(f0, f1) 0 -> 0.6, n=5,000", "correlation", 5000, 0.6, True),
    Case("emb_fa", "384-d embeddings, unchanged, n=2,000", "embedding", 2000),
    Case("emb", "384-d, 0.1 spread along one direction, n=2,000", "embedding", 2000, 0.1, True),
    Case(
        "emb_coord",
        "384-d, 0.1 coordinate sigma along one direction, n=2,000",
        "embedding",
        2000,
        0.1,
        True,
        per_coordinate=True,
    ),
]
CALIBRATION = [  # inferwatch and the exact test only: more trials, more sizes
    Case("fa1k", "numeric N(0,1), unchanged, n=1k", "numeric", 1000),
    Case("fa100k", "numeric N(0,1), unchanged, n=100k", "numeric", 100_000),
    Case("fa1m", "numeric N(0,1), unchanged, n=1M", "numeric", 1_000_000),
    Case("fa_cat1k", "50 categories, unchanged, n=1k", "categorical", 1000),
    Case("fa_cat", "50 categories, unchanged, n=100k", "categorical", 100_000),
    Case("fa_cat1m", "50 categories, unchanged, n=1M", "categorical", 1_000_000),
    Case("s002", "numeric, 0.02σ shift, n=100k", "numeric", 100_000, 0.02, True),
    Case("s001_1m", "numeric, 0.01σ shift, n=1M", "numeric", 1_000_000, 0.01, True),
]
CASES = {c.key: c for c in TABLE + MULTIVARIATE + CALIBRATION}
_INDEX = {key: i for i, key in enumerate(CASES)}


def rng_for(case: Case, trial: int, seed: int = SEED) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _INDEX[case.key], trial]))


def draw(case: Case, trial: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(baseline, current) of one trial: 1-D floats, 1-D category codes, or (n, d) rows."""
    rng = rng_for(case, trial, seed)
    if case.kind == "numeric":
        return rng.standard_normal(case.n), rng.standard_normal(case.n) + case.shift
    if case.kind == "categorical":
        p = CATEGORY_P.copy()
        base = rng.choice(CATEGORIES, size=case.n, p=p)
        p[0] -= case.shift
        p[-1] += case.shift
        return base, rng.choice(CATEGORIES, size=case.n, p=p)
    if case.kind == "correlation":
        base = rng.standard_normal((case.n, COLUMNS))
        current = rng.standard_normal((case.n, COLUMNS))
        rho = case.shift
        current[:, 1] = rho * current[:, 0] + np.sqrt(1 - rho**2) * current[:, 1]
        return base, current
    direction = rng.standard_normal(EMBEDDING_DIM)
    direction /= np.linalg.norm(direction)
    spread = 1.0 if case.per_coordinate else np.sqrt(EMBEDDING_DIM)
    base = rng.standard_normal((case.n, EMBEDDING_DIM))
    current = rng.standard_normal((case.n, EMBEDDING_DIM)) + case.shift * spread * direction
    return base, current


def checksum(case: Case, seed: int = SEED) -> str:
    """A fingerprint of the first trial's data."""
    base, current = draw(case, 0, seed)
    return f"{float(np.sum(base[:1000])):.6f}/{float(np.sum(current[-1000:])):.6f}"
