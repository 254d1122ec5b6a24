"""The numeric drift test is as sharp as the exact test and calibrated (inferwatch.drift.ks).

Statistical tests with fixed seeds, kept small; the full figures (200 trials per case, 1M rows,
the peers) are in benchmarks/bench_drift.py. The KLL sketches flip their own coins, so runs
differ slightly: the thresholds leave room for that and still fail on a miscalibrated test.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from inferwatch.drift import Profile, compare

CATS = np.array([f"c{i:02d}" for i in range(50)], dtype=object)
ZIPF = (1 / np.arange(1, 51)) / (1 / np.arange(1, 51)).sum()


def _p_value(a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float, str]:
    report = compare(Profile.build({"x": a}, seed=seed), Profile.build({"x": b}, seed=seed + 1))
    col = report["x"]
    assert col.p_value is not None and col.method is not None
    return col.p_value, col.method


def test_small_windows_get_the_exact_test() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=1500), rng.normal(0.1, 1, 1200)
    p, method = _p_value(a, b, 0)
    assert method == "exact"
    assert p == pytest.approx(stats.ks_2samp(a, b).pvalue, rel=1e-12)


def test_sketch_p_values_are_uniform_under_the_null() -> None:
    """20,000 rows a side: past the row sample (2,048) and the exact sketch (k = 1,000)."""
    rng = np.random.default_rng(2)
    ps, methods = [], set()
    for trial in range(200):
        p, method = _p_value(rng.normal(size=20_000), rng.normal(size=20_000), 2 * trial)
        ps.append(p)
        methods.add(method)
    assert methods == {"sketch"}
    assert stats.kstest(ps, "uniform").pvalue > 0.01
    assert np.mean(np.array(ps) <= 0.05) <= 0.09  # 200 trials at 5%: 10 expected


def test_false_alarms_at_1k_and_100k() -> None:
    rng = np.random.default_rng(3)
    for n, trials in ((1000, 200), (100_000, 100)):
        alarms = 0
        for _ in range(trials):
            a, b = rng.normal(size=n), rng.normal(size=n)
            alarms += compare(Profile.build({"x": a}), Profile.build({"x": b})).drifted
            codes_a, codes_b = rng.choice(CATS, n, p=ZIPF), rng.choice(CATS, n, p=ZIPF)
            alarms += compare({"c": codes_a}, {"c": codes_b}).drifted
        # a numeric and a categorical comparison a trial, each at 5%: more than 9% of them
        # has a probability below 0.5% for a calibrated test
        assert alarms <= 0.09 * 2 * trials, (n, alarms)


def test_power_at_two_hundredths_of_a_sigma_and_100k() -> None:
    """The exact KS test finds a 0.02 sigma shift at 100k rows a side ~97% of the time; the
    sketch test must stay close to it (the old bound-shrunk test found 17%)."""
    rng = np.random.default_rng(4)
    trials, found = 30, 0
    for _ in range(trials):
        a, b = rng.normal(size=100_000), rng.normal(0.02, 1, 100_000)
        report = compare(Profile.build({"x": a}), Profile.build({"x": b}))
        found += report["x"].drifted
    assert report["x"].method == "sketch"
    assert found >= 25  # 90% would expect 27; fewer than 25 has probability 0.1% at 96%


def test_profiles_of_format_1_still_compare(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """tests/data/profile_v1.iwp was saved by the release before this format."""
    from pathlib import Path

    old = Profile.load(Path(__file__).parent / "data" / "profile_v1.iwp")
    assert old.sample is None and old.columns["amount"].kll_twin is None
    rng = np.random.default_rng(5)
    n = 50_000
    current = Profile.build(
        {
            "amount": rng.lognormal(3.0, 1.0, n),
            "age": rng.normal(40, 12, n).round(),
            "country": rng.choice(["de", "fr", "us", "br"], n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    report = compare(old, current)
    assert report["amount"].method == "sketch, bounded" and not report.drifted
    assert "format 1" in (report["amount"].note or "")
    assert report.multivariate is not None and report.multivariate.p_value is None
    assert "format 1" in (report.multivariate.note or "")
    # loaded, merged and saved again, it is a profile of the current format
    resaved = Profile.from_bytes(old.merge(old).to_bytes())
    assert resaved.n_rows == 2 * old.n_rows and resaved.columns["amount"].kll_twin is None
