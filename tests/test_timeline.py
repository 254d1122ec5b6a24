"""The change point of a timeline: a planted start is found within one bucket; a series without a
change says so; and on many simulated series without a change the false-alarm rate stays within
the stated ``alpha``."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")

from inferwatch.query.timeline import (
    DEFAULT_ALPHA,
    MIN_BEFORE,
    change_point,
    every_seconds,
)


def series(
    rng: np.random.Generator, buckets: int, start: int | None, before: float, after: float
) -> tuple[list[int], list[int]]:
    """Requests per bucket (Poisson around 80, some empty) and outcomes: rate ``before`` up to
    bucket ``start``, ``after`` from it."""
    requests = rng.poisson(80, buckets)
    requests[rng.random(buckets) < 0.05] = 0  # quiet buckets happen
    rates = np.full(buckets, before)
    if start is not None:
        rates[start:] = after
    return requests.tolist(), rng.binomial(requests, rates).tolist()


def planted(
    before: float, after: float, trials: int, seed: int = 16
) -> list[tuple[int, int | None]]:
    """(planted start, start found) of ``trials`` series of 20-90 buckets."""
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(trials):
        buckets = int(rng.integers(20, 90))
        start = int(rng.integers(MIN_BEFORE + 2, buckets - 3))
        requests, outcomes = series(rng, buckets, start, before, after)
        requests[start] = max(requests[start], 40)  # the start bucket served requests
        outcomes[start] = int(rng.binomial(requests[start], after))
        change = change_point(requests, outcomes)
        if change.bucket is not None:
            assert change.rate_after is not None and change.rate_before is not None
            assert change.rate_after > change.rate_before
            assert change.p_value is not None and change.threshold is not None
            assert change.p_value <= change.threshold
            assert change.threshold == pytest.approx(DEFAULT_ALPHA / change.tested)
        found.append((start, change.bucket))
    return found


@pytest.mark.parametrize(("before", "after"), [(0.0, 0.3), (0.01, 0.2), (0.1, 0.4)])
def test_an_incident_start_is_found_within_one_bucket(before: float, after: float) -> None:
    """A clear jump (an incident): its start, every time, within one bucket."""
    for start, found in planted(before, after, 40):
        assert found is not None and abs(found - start) <= 1, (start, found)


@pytest.mark.parametrize(("before", "after"), [(0.01, 0.05), (0.05, 0.12)])
def test_a_moderate_rise_is_found_near_its_start(before: float, after: float) -> None:
    """A rise of a few points over ~80 requests a bucket: found nearly always, its start
    within one bucket most of the time (measured: 99% found, 89% within one bucket)."""
    results = planted(before, after, 100)
    found = [(start, f) for start, f in results if f is not None]
    assert len(found) >= 95
    assert sum(abs(f - start) <= 1 for start, f in found) >= 80


def test_a_series_without_a_change_says_so() -> None:
    requests, outcomes = [100] * 30, [2] * 30
    found = change_point(requests, outcomes, starts=[f"t{i}" for i in range(30)])
    assert found.bucket is None and found.started_at is None
    assert found.verdict.startswith("no change: no rise significant at a false-alarm rate of 0.01")
    assert found.tested == 30 - MIN_BEFORE


def test_a_fall_is_not_a_start() -> None:
    found = change_point([100] * 20, [30] * 10 + [1] * 10)
    assert found.bucket is None


def test_too_short_to_test() -> None:
    found = change_point([100, 100, 100], [0, 0, 50])
    assert found.bucket is None and found.tested == 0
    assert found.verdict.startswith("no change tested")


def test_start_is_named_by_its_bucket() -> None:
    starts = [f"2026-12-07T10:{m:02d}:00.000Z" for m in range(12)]
    found = change_point([50] * 12, [0] * 6 + [20] * 6, starts=starts)
    assert found.bucket == 6 and found.started_at == starts[6]
    assert found.verdict.startswith(f"rose from {starts[6]}: 0 before, 0.4 since")


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_false_alarm_rate_holds_on_series_without_a_change(alpha: float) -> None:
    """2,000 simulated series with a constant rate (small and moderate; with empty buckets):
    starts are reported on at most alpha of them, up to three binomial standard errors."""
    rng = np.random.default_rng(20261207)
    trials = 2000
    alarms = 0
    for _ in range(trials):
        rate = float(rng.choice([0.002, 0.02, 0.1, 0.3]))
        requests, outcomes = series(rng, int(rng.integers(10, 60)), None, rate, rate)
        alarms += change_point(requests, outcomes, alpha=alpha).bucket is not None
    bound = alpha + 3 * (alpha * (1 - alpha) / trials) ** 0.5
    assert alarms / trials <= bound, (alarms, trials)


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="alpha must be in"):
        change_point([1] * 5, [0] * 5, alpha=1.5)
    assert every_seconds("250ms") == 0.25 and every_seconds(60) == 60.0
    for bad in ("soon", "0s", -1, float("inf")):
        with pytest.raises(ValueError, match="is not a positive duration"):
            every_seconds(bad)
