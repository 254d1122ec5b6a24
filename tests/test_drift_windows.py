"""Live drift windows (inferwatch.drift.windows)."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from inferwatch import errors as _internal
from inferwatch.drift import Profile
from inferwatch.drift.windows import (
    METRIC_DRIFT_DETECTED,
    METRIC_DRIFT_P_VALUE,
    METRIC_DRIFT_SCORE,
    DriftWindows,
    rollup_levels,
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
def unsampled(rng: np.random.Generator) -> Profile:
    """A baseline without a row sample: windows test feature by feature only (the roll-up
    tests close a hundred windows; the multivariate test has tests of its own)."""
    return Profile.build(rng.normal(size=(5000, 3)), columns=NAMES, sample_rows=0)


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
    windows = ("5m", "cumulative")
    together = {("ml.multivariate", "mmd", win) for win in windows}
    assert set(detected) == {(f, "ks", win) for f in NAMES for win in windows} | together
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
    # the shift of one feature changes the features' joint distribution too
    drifted = {("b", "ks"), ("ml.multivariate", "mmd")}
    detected = _gauges(reader, METRIC_DRIFT_DETECTED)
    assert {k for k, v in detected.items() if v} == {
        (f, test, win) for f, test in drifted for win in ("5m", "cumulative")
    }
    assert _gauges(reader, METRIC_DRIFT_SCORE)[("b", "ks", "5m")] > 0.3
    events = [r for r in caplog.records if r.name == "inferwatch.events"]
    assert {(r.__dict__["ml.feature"], r.__dict__["ml.window"]) for r in events} == {
        (f, win) for f in ("b", "ml.multivariate") for win in ("5m", "cumulative")
    }
    for r in events:
        assert r.__dict__["otel.event.name"] == "ml.drift.detected"
        assert r.__dict__["ml.model.name"] == "m"
        feature, test = r.__dict__["ml.feature"], r.__dict__["ml.drift.test"]
        assert (feature, test) in drifted
        # the permutation test's smallest p-value is 1 / (permutations + 1)
        assert r.__dict__["ml.drift.p_value"] < (1e-6 if test == "ks" else 0.01)
        assert r.__dict__["ml.drift.score"] > 0.05
    # cumulative events only when a feature starts drifting; window events every window
    caplog.clear()
    _feed(w, data)
    with caplog.at_level(logging.WARNING, logger="inferwatch.events"):
        w.close_window()
    assert [r.__dict__["ml.window"] for r in caplog.records] == ["5m", "5m"]


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


def test_nested_odd_rows_are_rejected_not_internal_errors(
    baseline: Profile, rng: np.random.Generator
) -> None:
    """Found by the property run: a dict of ragged columns made the row count raise (an
    internal error), and a list of frames or of empty arrays (3-D once stacked) failed the
    whole window's profile at close."""
    from inferwatch import errors as _internal

    _internal.reset_internal_errors()
    w = _windows(baseline)
    w.add(rng.normal(size=(10, 3)))
    w.add({"a": [[1.0], [1.0, 2.0]], "b": [1.0, 2.0], "c": [1.0, 2.0]})  # ragged first column
    w.add([pd.DataFrame(index=range(3))])  # a list holding an empty frame
    w.add([np.empty((3, 0), dtype=object)])
    report = w.close_window()
    assert report is not None and w.windows[-1].n_rows == 10
    assert w.rejected == 2 + 1 + 1  # the dict holds two rows
    assert _internal.internal_errors() == {}


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


def test_background_thread_completes_rollups(baseline: Profile, rng: np.random.Generator) -> None:
    w = DriftWindows("m", baseline, 0.05, rollups=(0.1,))  # two 50ms windows make a 100ms one
    assert w.levels == ["100ms"]
    w.add(rng.normal(size=(200, 3)))  # in the first window, whenever the thread runs
    w.start()
    deadline = time.monotonic() + 5
    while not w.rollups["100ms"] and time.monotonic() < deadline:
        time.sleep(0.01)
    w.stop()
    assert [p.n_rows for p in w.rollups["100ms"]] == [200] and "100ms" in w.latest


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


# ---- predictions and labels ---------------------------------------------------------------
CLASSES = ["deny", "review", "approve"]


@pytest.fixture
def classifier_baseline(rng: np.random.Generator) -> Profile:
    n = 6000
    return Profile.build(
        rng.normal(size=(n, 3)),
        columns=NAMES,
        predictions=rng.dirichlet([4, 1, 1], n),
        labels=rng.choice(3, n, p=[0.6, 0.2, 0.2]),
        class_names=CLASSES,
    )


def test_predictions_drift_and_labels_without_false_alarm(
    classifier_baseline: Profile,
    reader: InMemoryMetricReader,
    rng: np.random.Generator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = _windows(classifier_baseline, reader)
    assert w.targets == ["ml.prediction", "ml.label"] and w.features == NAMES
    assert w.class_names == CLASSES  # from the baseline
    for _ in range(20):  # the model now favours "approve"; inputs unchanged; no labels yet
        w.add(rng.normal(size=(100, 3)))
        w.add_predictions(rng.dirichlet([1, 1, 4], 100))
    with caplog.at_level(logging.WARNING, logger="inferwatch.events"):
        report = w.close_window()
    assert report is not None and report.drifted_columns == ["ml.prediction"]
    assert "ml.label" not in report  # a window without labels says nothing about them
    assert report["ml.prediction"].test == "chi2" and w.windows[-1].n_rows == 2000
    detected = _gauges(reader, METRIC_DRIFT_DETECTED)
    assert detected[("ml.prediction", "chi2", "5m")] == 1
    assert not [k for k in detected if k[0] == "ml.label"]
    events = [r.__dict__ for r in caplog.records if r.name == "inferwatch.events"]
    assert {(e["ml.feature"], e["ml.window"]) for e in events} == {
        ("ml.prediction", "5m"),
        ("ml.prediction", "cumulative"),
    }
    # delayed labels arrive one at a time (class names, as iw.feedback passes them) and in
    # batches of indices: same distribution as the baseline, so no label shift
    for label in rng.choice(CLASSES, 500, p=[0.6, 0.2, 0.2]):
        w.add_labels(str(label))
    w.add_labels(rng.choice(3, 1500, p=[0.6, 0.2, 0.2]))
    report = w.close_window()
    assert report is not None and list(report.columns) == ["ml.label"]
    assert not report.drifted and report["ml.label"].n_current == 2000
    assert w.windows[-1].columns["ml.label"].counts().keys() == set(CLASSES)
    assert _gauges(reader, METRIC_DRIFT_DETECTED)[("ml.label", "chi2", "5m")] == 0
    # label shift: the share of "approve" labels doubles
    w.add_labels(rng.choice(CLASSES, 2000, p=[0.4, 0.2, 0.4]))
    report = w.close_window()
    assert report is not None and report.drifted_columns == ["ml.label"]
    assert w.rejected == 0 and w.dropped_rows == 0


def test_numeric_predictions_from_scalars_and_arrays(rng: np.random.Generator) -> None:
    base = Profile.build(rng.normal(size=(2000, 3)), columns=NAMES, predictions=rng.random(2000))
    w = _windows(base, max_rows_per_window=1000)
    parts: list[Any] = [0.25, np.float32(0.5), rng.random(300), rng.random((200, 1)), 3, 0.75]
    parts += [pd.Series(rng.random(50))]
    for part in parts:
        w.add_predictions(part)
    bad: list[Any] = [None, {"y": 1.0}, np.array(["a", "b"]), rng.random((4, 2)), object()]
    for part in bad:
        w.add_predictions(part)  # never raises
    w.add_labels([1.0, 2.0])  # the baseline has no labels: ignored
    report = w.close_window()  # a window of predictions only: they alone are tested
    assert report is not None and list(report.columns) == ["ml.prediction"]
    col = w.windows[-1].columns["ml.prediction"]
    good = np.concatenate([[0.25, 0.5, 3, 0.75], parts[2], parts[3][:, 0], parts[6].to_numpy()])
    assert (col.count, col.n) == (len(good), len(good))
    assert (col.min, col.max) == (good.min(), good.max())
    assert col.mean == pytest.approx(good.mean(), rel=1e-12)
    assert w.rejected == 3 + 2 + 4  # None, dict and object: 1 each; the arrays: their rows
    assert "ml.label" not in w.windows[-1].columns
    w.add_predictions(rng.random(1500))
    assert w.dropped_rows == 500


def test_tensor_predictions(classifier_baseline: Profile) -> None:
    torch = pytest.importorskip("torch")
    w = _windows(classifier_baseline)
    w.add_predictions(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    w.add_predictions(torch.tensor([0.2, 0.5, 0.3]).reshape(1, 3))
    w.close_window()
    assert w.windows[-1].columns["ml.prediction"].counts() == {"deny": 1, "approve": 1, "review": 1}


def test_class_names_must_match_the_baseline(rng: np.random.Generator) -> None:
    x = rng.normal(size=(100, 3))
    named = Profile.build(x, columns=NAMES, labels=rng.integers(0, 2, 100), class_names=["n", "y"])
    with pytest.raises(ValueError, match="differ from the baseline"):
        DriftWindows("m", named, 60, class_names=["no", "yes"])
    indices = Profile.build(x, columns=NAMES, predictions=rng.integers(0, 2, 100))
    with pytest.raises(ValueError, match="class indices"):
        DriftWindows("m", indices, 60, class_names=["no", "yes"])
    w = DriftWindows("m", indices, 60)  # indices on both sides: fine
    w.add_predictions(np.array([0, 1, 1]))
    w.close_window()
    assert w.windows[-1].columns["ml.prediction"].counts() == {"0": 1, "1": 2}
    with pytest.raises(ValueError, match="reserved"):
        DriftWindows("m", named, 60, features=["a", "ml.label"])
    labels_only = DriftWindows("m", Profile.build(labels=["a", "b"]), 60)
    assert labels_only.features == [] and labels_only.targets == ["ml.label"]
    labels_only.add(x)  # no features to test: inputs are not kept
    assert labels_only.close_window() is None and labels_only.rejected == 0


# ---- roll-ups -----------------------------------------------------------------------------
def test_rollup_levels() -> None:
    assert rollup_levels(300, "auto") == [(3600.0, 12), (86400.0, 24)]
    assert rollup_levels(60, "auto") == [(3600.0, 60), (86400.0, 24)]
    assert rollup_levels(7200, "auto") == [(86400.0, 12)]
    assert rollup_levels(420, "auto") == []  # 7m divides neither an hour nor a day
    assert rollup_levels(86400, "auto") == [] and rollup_levels(300, None) == []
    assert rollup_levels(60, ["2m", 360]) == [(120.0, 2), (360.0, 3)]
    for bad in (["90s"], ["1h", "90m"], ["soon"], [-5], ["1m"]):
        with pytest.raises(ValueError):
            rollup_levels(60, bad)
    with pytest.raises(ValueError, match="auto"):
        rollup_levels(60, "hourly")  # type: ignore[arg-type]


def test_an_hour_is_the_merge_of_its_minutes(
    unsampled: Profile,
    reader: InMemoryMetricReader,
    rng: np.random.Generator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    meter = MeterProvider(metric_readers=[reader]).get_meter("t")
    w = DriftWindows("m", unsampled, 60, meter=meter, clock=FakeClock())
    assert w.levels == ["1h", "1d"] and w.label == "1m"
    minutes: list[Profile] = []
    rows: list[np.ndarray] = []
    for minute in range(60):
        if minute % 7 == 3:  # a quiet minute: nothing to profile, but it is an hour's minute
            assert w.close_window() is None
            continue
        x = rng.normal(size=(int(rng.integers(50, 150)), 3))
        x[:, 2] += 0.5  # feature c drifted
        rows.append(x)
        w.add(x)
        assert w.close_window() is not None
        minutes.append(w.windows[-1])
        if minute < 59:
            assert w.rollups == {"1h": [], "1d": []} and "1h" not in w.latest
    assert len(w.windows) == 12  # the ring of minutes stays bounded
    (hour,) = w.rollups["1h"]
    every = np.vstack(rows)
    merged = minutes[0]
    for m in minutes[1:]:
        merged = merged.merge(m)
    assert hour.n_rows == merged.n_rows == len(every)
    for j, name in enumerate(NAMES):
        h, m = hour.columns[name], merged.columns[name]
        exact = ("count", "n", "null_count", "min", "max", "mean", "m2")
        assert [getattr(h, k) for k in exact] == [getattr(m, k) for k in exact]
        assert (h.min, h.max) == (every[:, j].min(), every[:, j].max())
        assert h.mean == pytest.approx(every[:, j].mean(), rel=1e-12)
    report = w.latest["1h"]
    assert report.drifted_columns == ["c"] and report["c"].n_current == len(every)
    detected = _gauges(reader, METRIC_DRIFT_DETECTED)
    assert detected[("c", "ks", "1h")] == 1 and detected[("a", "ks", "1h")] == 0
    assert {k[2] for k in detected} == {"1m", "1h", "cumulative"}  # no day yet
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="inferwatch.events"):
        for _ in range(60):  # a quiet hour: completes, with nothing to test or keep
            w.close_window()
    assert len(w.rollups["1h"]) == 1 and w.latest["1h"] is report and not caplog.records
    assert w.sliding(1, level="1h") is not None and w.sliding(1, level="1h").n_rows == len(every)
    with pytest.raises(KeyError):
        w.sliding(1, level="2h")


def test_days_from_hours_and_bounded_rings(
    unsampled: Profile, rng: np.random.Generator, caplog: pytest.LogCaptureFixture
) -> None:
    # 1m windows rolled up to 2m and 6m: the same chain as minutes -> hours -> days, shorter
    w = DriftWindows("m", unsampled, 60, keep_windows=4, rollups=("2m", "6m"), keep_rollups=2)
    sizes = [int(rng.integers(20, 60)) for _ in range(30)]
    rows = []
    with caplog.at_level(logging.WARNING, logger="inferwatch.events"):
        for i, n in enumerate(sizes):
            x = rng.normal(size=(n, 3))
            if i >= 24:
                x[:, 0] += 3.0  # the last 6m window drifts in feature a
            rows.append(x)
            w.add(x)
            w.close_window()
    assert [len(w.windows), len(w.rollups["2m"]), len(w.rollups["6m"])] == [4, 2, 2]
    assert [p.n_rows for p in w.windows] == sizes[-4:]
    assert [p.n_rows for p in w.rollups["2m"]] == [sum(sizes[26:28]), sum(sizes[28:30])]
    assert [p.n_rows for p in w.rollups["6m"]] == [sum(sizes[18:24]), sum(sizes[24:30])]
    six, last = w.rollups["6m"][-1].columns["a"], np.vstack(rows[24:])[:, 0]
    assert (six.count, six.min, six.max) == (len(last), last.min(), last.max())
    assert w.latest["6m"].drifted_columns == ["a"]
    assert w.cumulative.n_rows == sum(sizes)
    windows = {r.__dict__["ml.window"] for r in caplog.records}
    assert windows == {"1m", "2m", "6m", "cumulative"}


def test_concurrent_adds_and_closes_lose_no_row(unsampled: Profile) -> None:
    _internal.reset_internal_errors()
    w = DriftWindows("m", unsampled, 60, keep_windows=10**5, rollups=("10m",), keep_rollups=10**5)
    per_thread, threads_n = 300, 4
    closes = 0
    done = threading.Event()

    def feed(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for i in range(per_thread):
            w.add(rng.normal(size=(1 + i % 5, 3)))
            w.add({"a": 0.1, "b": 0.2, "c": 0.3})

    def close() -> None:
        nonlocal closes
        while not done.is_set():
            w.close_window()
            closes += 1

    closer = threading.Thread(target=close)
    closer.start()
    feeders = [threading.Thread(target=feed, args=(s,)) for s in range(threads_n)]
    for t in feeders:
        t.start()
    for t in feeders:
        t.join()
    done.set()
    closer.join()
    w.close_window()  # what was added after the closer's last close
    closes += 1
    while closes % 10:  # complete the last 10m roll-up
        w.close_window()
        closes += 1
    total = threads_n * sum(1 + i % 5 + 1 for i in range(per_thread))
    assert sum(p.n_rows for p in w.windows) == total == w.cumulative.n_rows
    assert sum(p.n_rows for p in w.rollups["10m"]) == total
    assert len(w.rollups["10m"]) <= closes // 10
    assert w.rejected == 0 and w.dropped_rows == 0 and _internal.internal_errors() == {}


def test_vector_features_in_mappings_and_dataframes(
    rng: np.random.Generator, reader: InMemoryMetricReader
) -> None:
    n, dim = 3000, 32
    base = Profile.build({"x": rng.normal(size=n), "emb": rng.normal(size=(n, dim))})
    w = _windows(base, reader)
    shift = rng.normal(size=dim)
    shift *= 0.6 / np.linalg.norm(shift)  # embeddings moved along one direction
    for _ in range(15):
        w.add({"x": rng.normal(size=100), "emb": rng.normal(size=(100, dim)) + shift})
    moved = rng.normal(size=(200, dim)) + shift
    w.add(pd.DataFrame({"x": rng.normal(size=200), "emb": list(moved)}))
    w.add({"x": 0.3, "emb": rng.normal(size=dim) + shift})  # one row
    w.add(rng.normal(size=(5, 2)))  # a 2-D array cannot carry vectors: rejected, counted
    report = w.close_window()
    assert report is not None and report.drifted_columns == ["emb"]
    assert (report["emb"].kind, report["emb"].test) == ("vector", "mmd")
    assert w.rejected == 5 and w.windows[0].n_rows == 1701
    assert report.multivariate is None  # one numeric feature: nothing to test together
    detected = _gauges(reader, METRIC_DRIFT_DETECTED)
    assert detected[("emb", "mmd", "5m")] == 1 and detected[("x", "ks", "5m")] == 0
