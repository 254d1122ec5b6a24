"""Live drift windows (inferwatch.drift.windows)."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from inferwatch.drift import Profile
from inferwatch.drift.windows import (
    METRIC_DRIFT_DETECTED,
    METRIC_DRIFT_P_VALUE,
    METRIC_DRIFT_SCORE,
    DriftWindows,
    window_label,
)

NAMES = ["a", "b", "c"]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.fixture
def baseline(rng: np.random.Generator) -> Profile:
    return Profile.build(rng.normal(size=(5000, 3)), columns=NAMES)


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


def _windows(baseline: Profile, reader: InMemoryMetricReader | None = None, **kw: Any) -> Any:
    meter = MeterProvider(metric_readers=[reader]).get_meter("t") if reader else None
    return DriftWindows("m", baseline, 300, meter=meter, clock=FakeClock(), **kw)


def _gauges(reader: InMemoryMetricReader, name: str) -> dict[tuple[str, str, str], float]:
    """(feature, test, window) -> value of gauge `name` at this collection."""
    out: dict[tuple[str, str, str], float] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name != name:
                    continue
                for p in m.data.data_points:
                    a = dict(p.attributes or {})
                    assert a["ml.model.name"] == "m"
                    key = (str(a["ml.feature"]), str(a["ml.drift.test"]), str(a["ml.window"]))
                    out[key] = float(p.value)
    return out


def _feed(w: Any, data: np.ndarray, chunk: int = 100) -> None:
    for i in range(0, len(data), chunk):
        w.add(data[i : i + chunk])


def test_window_label() -> None:
    assert [window_label(s) for s in (300, 3600, 30, 90, 0.1, 86400)] == [
        *("5m", "1h", "30s", "90s", "100ms", "1d")
    ]


def test_unchanged_data_is_not_drift(
    baseline: Profile, reader: InMemoryMetricReader, rng: np.random.Generator
) -> None:
    w = _windows(baseline, reader)
    for _ in range(2):
        _feed(w, rng.normal(size=(2000, 3)))
        report = w.close_window()
        assert report is not None and not report.drifted and len(report) == 3
    detected = _gauges(reader, METRIC_DRIFT_DETECTED)
    assert set(detected) == {(f, "ks", win) for f in NAMES for win in ("5m", "cumulative")}
    assert set(detected.values()) == {0.0}
    assert set(_gauges(reader, METRIC_DRIFT_P_VALUE)) == set(detected)
    scores = _gauges(reader, METRIC_DRIFT_SCORE)
    assert set(scores) == set(detected) and all(0 <= v < 0.2 for v in scores.values())
    assert w.cumulative.n_rows == 4000 and len(w.windows) == 2


def test_shifted_feature_is_detected_and_logged(
    baseline: Profile,
    reader: InMemoryMetricReader,
    rng: np.random.Generator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = _windows(baseline, reader)
    data = rng.normal(size=(2000, 3))
    data[:, 1] += 0.5
    _feed(w, data)
    with caplog.at_level(logging.WARNING, logger="inferwatch.events"):
        report = w.close_window()
    assert report is not None and report.drifted_columns == ["b"]
    assert w.latest["cumulative"].drifted_columns == ["b"]
    detected = _gauges(reader, METRIC_DRIFT_DETECTED)
    assert {k for k, v in detected.items() if v} == {("b", "ks", "5m"), ("b", "ks", "cumulative")}
    assert _gauges(reader, METRIC_DRIFT_SCORE)[("b", "ks", "5m")] > 0.3
    events = [r for r in caplog.records if r.name == "inferwatch.events"]
    assert {(r.__dict__["ml.feature"], r.__dict__["ml.window"]) for r in events} == {
        ("b", "5m"),
        ("b", "cumulative"),
    }
    for r in events:
        assert r.__dict__["otel.event.name"] == "ml.drift.detected"
        assert r.__dict__["ml.model.name"] == "m" and r.__dict__["ml.drift.test"] == "ks"
        assert r.__dict__["ml.drift.p_value"] < 1e-6 and r.__dict__["ml.drift.score"] > 0.3
    # cumulative events only when a feature starts drifting; window events every window
    caplog.clear()
    _feed(w, data)
    with caplog.at_level(logging.WARNING, logger="inferwatch.events"):
        w.close_window()
    assert [r.__dict__["ml.window"] for r in caplog.records] == ["5m"]


def test_categorical_dataframe(rng: np.random.Generator, reader: InMemoryMetricReader) -> None:
    n = 4000
    cats = np.array(["u", "v", "w"], dtype=object)
    base = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(cats, n, p=[0.6, 0.3, 0.1])})
    w = _windows(Profile.build(base), reader)
    live = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(cats, n, p=[0.3, 0.3, 0.4])})
    for i in range(0, n - 10, 500):
        w.add(live.iloc[i : min(i + 500, n - 10)])
    for row in live.iloc[n - 10 :].to_dict("records"):  # dict rows mixed in
        w.add(row)
    w.add({"x": [0.1, None], "c": ["u", None]})  # a dict of columns, with nulls
    report = w.close_window()
    assert report is not None and report.drifted_columns == ["c"]
    assert report["c"].test == "chi2" and w.rejected == 0
    assert w.windows[0].n_rows == n + 2
    detected = _gauges(reader, METRIC_DRIFT_DETECTED)
    assert detected[("c", "chi2", "5m")] == 1 and detected[("x", "ks", "5m")] == 0
    assert 0 < _gauges(reader, METRIC_DRIFT_SCORE)[("c", "chi2", "cumulative")] <= 1


def test_rows_beyond_the_cap_are_counted_not_kept(
    baseline: Profile, rng: np.random.Generator
) -> None:
    w = _windows(baseline, max_rows_per_window=100)
    for size in (60, 60, 10):
        w.add(rng.normal(size=(size, 3)))
    assert w.dropped_rows == 30
    w.close_window()
    assert w.windows[-1].n_rows == 100
    w.add(rng.normal(size=(80, 3)))  # a new window has room again
    w.close_window()
    assert w.windows[-1].n_rows == 80 and w.dropped_rows == 30


def test_empty_window(
    baseline: Profile, reader: InMemoryMetricReader, rng: np.random.Generator
) -> None:
    w = _windows(baseline, reader)
    assert w.close_window() is None and _gauges(reader, METRIC_DRIFT_DETECTED) == {}
    w.add(rng.normal(size=(500, 3)))
    w.close_window()
    before = {m: _gauges(reader, m) for m in (METRIC_DRIFT_SCORE, METRIC_DRIFT_P_VALUE)}
    assert w.close_window() is None
    assert before == {m: _gauges(reader, m) for m in before}
    assert len(w.windows) == 1


def test_bad_rows_never_raise(baseline: Profile, rng: np.random.Generator) -> None:
    w = _windows(baseline)
    good = rng.normal(size=(50, 3))
    w.add(good)
    bad: list[Any] = [
        rng.normal(size=(5, 4)),  # wrong width
        np.array([["x", "y", "z"]] * 3),  # strings
        np.array([[1.0, "y", 2.0]] * 2, dtype=object),  # a string in an object array
        {"a": 1.0, "b": "oops", "c": 2.0},  # a string in a dict row
        {"a": 1.0, "b": 2.0},  # a missing feature
        pd.DataFrame({"a": [1.0], "b": [2.0]}),  # a missing column
        42,
        None,
        {},
        np.float64(3.0),
    ]
    for x in bad:
        w.add(x)
    w.add({"a": 1.0, "b": None, "c": 3})  # null and int: fine
    w.add(good[0])  # one 1-D row: fine
    w.add([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])  # lists: fine
    w.add([0.1, 0.2])  # a list of the wrong width
    report = w.close_window()
    assert report is not None and w.windows[-1].n_rows == 54
    assert w.rejected == 5 + 3 + 2 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1
    assert w.windows[-1].columns["b"].null_count == 1
    # only bad input: no window
    w.add(np.array([["x", "y", "z"]]))
    assert w.close_window() is None and len(w.windows) == 1


def test_sliding_is_the_merge_of_the_last_windows(
    baseline: Profile, rng: np.random.Generator
) -> None:
    w = _windows(baseline, keep_windows=3)
    assert w.sliding(2) is None
    for shift in range(5):
        w.add(rng.normal(shift, 1.0, size=(300 + shift, 3)))
        w.close_window()
    assert len(w.windows) == 3 and w.cumulative.n_rows == sum(300 + s for s in range(5))
    last2 = w.windows[-2].merge(w.windows[-1])
    slid = w.sliding(2)
    assert slid is not None and slid.n_rows == last2.n_rows == 303 + 304
    for name in NAMES:
        a, b = slid.columns[name], last2.columns[name]
        assert (a.n, a.min, a.max) == (b.n, b.min, b.max)
        assert a.mean == pytest.approx(b.mean) and a.m2 == pytest.approx(b.m2)
        assert a.quantile(0.5) == b.quantile(0.5)
    assert w.sliding(100).n_rows == w.sliding(3).n_rows == 302 + 303 + 304
    assert w.sliding(0) is None


def test_background_thread(baseline: Profile, rng: np.random.Generator) -> None:
    w = DriftWindows("m", baseline, 0.1)
    assert w.label == "100ms"
    w.start()
    w.start()  # idempotent
    assert w.running
    w.add(rng.normal(size=(200, 3)))
    deadline = time.monotonic() + 3
    while not w.windows and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(w.windows) == 1 and "100ms" in w.latest
    w.stop()
    assert not w.running
    w.add(rng.normal(size=(200, 3)))  # no lazy restart after stop()
    assert not w.running


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_starts_clean(baseline: Profile, rng: np.random.Generator) -> None:
    w = DriftWindows("m", baseline, 60)
    w.start()
    w.add(rng.normal(size=(100, 3)))
    pid = os.fork()
    if pid == 0:  # child: report through the exit code, never return into pytest
        code = 1
        try:
            if w._rows != 0 or w._buf or w.running:
                code = 2
            else:
                w.add(np.zeros((3, 3)))
                if not w.running or w._rows != 3:
                    code = 3
                else:
                    w.stop()
                    code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert w.running and w._rows == 100  # the parent is untouched
    w.stop()
