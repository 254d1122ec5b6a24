"""Drift in more than one dimension: the numeric features together, and vector features.

Small statistical tests with fixed seeds (the benchmark runs the full cases): a correlation
that appears between two features whose marginals do not change, and a mean shift of
embeddings along one random direction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from inferwatch.drift import Profile, compare
from inferwatch.drift.report import render_html

NAMES = [f"f{i}" for i in range(8)]


def _correlated(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    x = rng.normal(size=(n, len(NAMES)))
    x[:, 1] = rho * x[:, 0] + np.sqrt(1 - rho**2) * x[:, 1]  # both stay N(0, 1)
    return x


def _embeddings(
    rng: np.random.Generator, n: int, shift: float, direction: np.ndarray
) -> np.ndarray:
    """384-d embeddings; `shift` in units of their spread (the root mean square distance from
    their mean, sqrt(384) here), along `direction`."""
    return rng.normal(size=(n, 384)) + shift * np.sqrt(384) * direction


def test_a_new_correlation_with_unchanged_marginals_is_found() -> None:
    rng = np.random.default_rng(11)
    found = alarms = 0
    for trial in range(12):
        base = Profile.build(_correlated(rng, 5000, 0.0), columns=NAMES, seed=trial)
        same = Profile.build(_correlated(rng, 5000, 0.0), columns=NAMES, seed=100 + trial)
        moved = Profile.build(_correlated(rng, 5000, 0.6), columns=NAMES, seed=200 + trial)
        mv = compare(base, moved).multivariate
        assert mv is not None and mv.test == "mmd" and mv.columns == NAMES
        found += mv.drifted
        alarms += compare(base, same).drifted
    assert found == 12 and alarms <= 2  # 12 null trials at 5%: 3 or more has p = 2%
    assert mv.projection is not None
    top = sorted(mv.projection["loadings"], key=lambda k: -abs(mv.projection["loadings"][k]))
    assert set(top[:2]) == {"f0", "f1"}  # the component that differs is f0 + f1


def test_embeddings_shifted_along_one_direction_are_found() -> None:
    rng = np.random.default_rng(12)
    found = alarms = 0
    for trial in range(6):
        direction = rng.normal(size=384)
        direction /= np.linalg.norm(direction)
        base = Profile.build({"emb": _embeddings(rng, 2000, 0.0, direction)}, seed=trial)
        same = Profile.build({"emb": _embeddings(rng, 2000, 0.0, direction)}, seed=50 + trial)
        moved = Profile.build({"emb": _embeddings(rng, 2000, 0.1, direction)}, seed=90 + trial)
        report = compare(base, moved)
        col = report["emb"]
        assert (col.kind, col.test, col.method) == ("vector", "mmd", "permutation")
        found += col.drifted
        alarms += compare(base, same)["emb"].drifted
    assert found == 6 and alarms <= 1
    page = render_html(report, base, moved)  # the feature's plot: its sampled vectors
    article = page.split('id="feature-0"')[1]
    assert article.count("<svg") == 1 and "along principal component" in article


def test_vector_features_from_arrays_dataframes_and_merges() -> None:
    rng = np.random.default_rng(13)
    emb = rng.normal(size=(300, 16))
    emb[5] = np.nan
    frame = pd.DataFrame({"x": rng.normal(size=300), "emb": list(emb)})
    frame.loc[7, "emb"] = None
    from_frame = Profile.build(frame)
    from_array = Profile.build({"x": frame["x"].to_numpy(), "emb": emb})
    col = from_frame.columns["emb"]
    assert (col.kind, col.dim, col.count, col.null_count) == ("vector", 16, 300, 2)
    assert from_array.columns["emb"].null_count == 1
    assert from_frame.sample is not None and from_frame.sample.vectors["emb"].shape == (300, 16)
    wide = Profile.build({"emb": rng.normal(size=(100, 1024))})
    assert wide.sample is not None and wide.sample.vectors["emb"].shape == (100, 64)
    merged = Profile.from_bytes(wide.merge(wide).to_bytes())
    assert merged.columns["emb"].count == 200 and merged.sample is not None
    assert merged.sample.vector_dims == {"emb": 1024}
    with pytest.raises(ValueError, match="16 dimensions in one profile and 1024"):
        from_array.merge(wide)
    with pytest.raises(ValueError, match="row 2 has shape"):
        Profile.build({"emb": [[1.0, 2.0], [3.0, 4.0], [5.0]]})


def test_multivariate_needs_two_numeric_features_and_reports_why_not() -> None:
    rng = np.random.default_rng(14)
    one = compare({"x": rng.normal(size=500)}, {"x": rng.normal(size=500)})
    assert one.multivariate is None
    unsampled = Profile.build(rng.normal(size=(500, 2)), sample_rows=0)
    report = compare(unsampled, Profile.build(rng.normal(size=(500, 2))))
    assert report.multivariate is not None and report.multivariate.p_value is None
    assert "no row sample in the baseline profile" in (report.multivariate.note or "")
    nan_rows = rng.normal(size=(500, 2))
    nan_rows[:100, 0] = np.nan
    report = compare(rng.normal(size=(500, 2)), nan_rows)
    assert report.multivariate is not None and report.multivariate.n_current == 400
    assert "100 sampled current rows with a missing value left out" in report.multivariate.note


def test_the_report_plots_the_direction_that_differs() -> None:
    rng = np.random.default_rng(15)
    base = Profile.build(_correlated(rng, 3000, 0.0), columns=NAMES)
    cur = Profile.build(_correlated(rng, 3000, 0.7), columns=NAMES)
    report = compare(base, cur)
    page = render_html(report, base, cur)
    assert 'id="multivariate"' in page and "along principal component" in page
    assert page.count("<svg") == len(NAMES) + 1
    assert "the 8 numeric features together" in page  # in the verdict
    text = str(report)
    assert "multivariate (8 numeric features together): DRIFT" in text
    assert report.to_dict()["multivariate"]["test"] == "mmd"
