"""Drift in the serving path: `@iw.monitor(baseline=..., window=...)` feeds live windows."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

import inferwatch as iw
from tests.conftest import Captured

FEATURES = ["amount", "age", "hour"]


def test_monitored_inputs_feed_windows_gauges_and_events(telemetry: Captured) -> None:
    rng = np.random.default_rng(3)
    baseline = iw.Profile.build(rng.normal(size=(20_000, 3)), columns=FEATURES)

    @iw.monitor(model="fraud", features=FEATURES, baseline=baseline, window="1h")
    def predict(X: np.ndarray) -> np.ndarray:
        return X.sum(axis=1)

    shift = np.array([0.5, 0.0, 0.0])
    for _ in range(100):
        predict(rng.normal(size=(50, 3)) + shift)
    report = predict.drift.close_window()  # the thread would do this when the hour is up
    assert report is not None and report.drifted_columns == ["amount"]

    detected = {
        (a["ml.feature"], a["ml.window"]): p.value
        for a, p in telemetry.points("ml.drift.detected")
        if a["ml.model.name"] == "fraud"
    }
    assert detected[("amount", "1h")] == 1 and detected[("age", "1h")] == 0
    assert detected[("amount", "cumulative")] == 1
    # the features tested together: one more verdict, under a reserved feature name
    assert detected[("ml.multivariate", "1h")] == 1
    events = [
        r.log_record for r in telemetry.logs() if r.log_record.event_name == "ml.drift.detected"
    ]
    assert {dict(e.attributes)["ml.feature"] for e in events} == {"amount", "ml.multivariate"}
    predict.drift.stop()


def test_unchanged_inputs_do_not_alarm(telemetry: Captured) -> None:
    rng = np.random.default_rng(4)
    baseline = iw.Profile.build(rng.normal(size=(20_000, 3)), columns=FEATURES)
    with iw.inference("m", features=FEATURES, baseline=baseline, window=3600) as rec:
        rec.record_input(rng.normal(size=(5_000, 3)))
    drift = iw.inference("m", features=FEATURES, baseline=baseline, window=3600)._spec.drift
    assert drift is not None
    report = drift.close_window()
    assert report is not None and report.drifted_columns == []


@pytest.mark.parametrize(
    ("baseline", "window", "error"),
    [("not a profile", "5m", TypeError), (None, "5m", None), ("profile", "soon", ValueError),
     ("profile", -1, ValueError)],
)  # fmt: skip
def test_drift_settings_are_checked_at_decoration(
    baseline: object, window: object, error: type[Exception] | None
) -> None:
    if baseline == "profile":
        baseline = iw.Profile.build(np.zeros((10, 3)), columns=FEATURES)
    if error is None:
        assert iw.monitor(model="m", baseline=baseline, window=window) is not None  # type: ignore[arg-type]
        return
    with pytest.raises(error):
        iw.monitor(model="m", baseline=baseline, window=window)  # type: ignore[arg-type]


def test_monitored_predictions_feed_windows(telemetry: Captured) -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(20_000, 3))
    weights = np.array([[1.0, -1.0], [0.2, 0.0], [0.0, 0.1]])

    def scores(x: np.ndarray) -> np.ndarray:
        z = np.exp(x @ weights)
        return z / z.sum(axis=1, keepdims=True)

    with pytest.raises(ValueError, match="class indices"):  # would never match: refused
        iw.monitor(model="risk", baseline=iw.Profile.build(X, columns=FEATURES,
                   predictions=scores(X)), class_names=["low", "high"])  # fmt: skip
    baseline = iw.Profile.build(
        X, columns=FEATURES, predictions=scores(X), class_names=["low", "high"]
    )

    @iw.monitor(model="risk", features=FEATURES, baseline=baseline, window="1h",
                class_names=["low", "high"])  # fmt: skip
    def predict(x: np.ndarray) -> np.ndarray:
        return scores(x)

    drift = predict.drift
    assert drift is not None and drift.targets == ["ml.prediction"] and drift.levels == ["1d"]
    for _ in range(40):  # the input shift moves the predicted classes too
        predict(rng.normal(size=(50, 3)) + np.array([0.4, 0.0, 0.0]))
    report = drift.close_window()
    assert report is not None
    # The unshifted features may alarm at about alpha (the sketches' compaction is random).
    assert {"amount", "ml.prediction"} <= set(report.drifted_columns)
    assert drift.windows[-1].columns["ml.prediction"].counts().keys() == {"low", "high"}
    detected = {
        (a["ml.feature"], a["ml.drift.test"], a["ml.window"]): p.value
        for a, p in telemetry.points("ml.drift.detected")
        if a["ml.model.name"] == "risk"
    }
    assert detected[("ml.prediction", "chi2", "1h")] == 1
    assert not [k for k in detected if k[0] == "ml.label"]  # the baseline has no labels
    events = [
        dict(r.log_record.attributes or {})
        for r in telemetry.logs()
        if r.log_record.event_name == "ml.drift.detected"
    ]
    assert {(e["ml.feature"], e["ml.window"]) for e in events} >= {("ml.prediction", "1h")}
    drift.stop()


def test_recorded_predictions_and_arriving_labels(telemetry: Captured) -> None:
    rng = np.random.default_rng(6)
    baseline = iw.Profile.build(
        rng.normal(size=(5000, 3)),
        columns=FEATURES,
        predictions=rng.random(5000),
        labels=rng.random(5000),
    )
    spec = dict(features=FEATURES, baseline=baseline, window="5m")
    for _ in range(30):
        with iw.inference("scorer", **spec) as rec:  # type: ignore[arg-type]
            rec.record_input(rng.normal(size=(20, 3)))
            rec.record_prediction(rng.random(20) * 0.5)  # scores halved
    drift = iw.inference("scorer", **spec)._spec.drift  # type: ignore[arg-type]
    assert drift is not None
    report = drift.close_window()
    assert report is not None and report.drifted_columns == ["ml.prediction"]
    assert "ml.label" not in report and report["ml.prediction"].n_current == 600
    drift.add_labels(rng.random(600))  # e.g. from iw.feedback, later
    report = drift.close_window()
    assert report is not None and list(report.columns) == ["ml.label"] and not report.drifted
    points = {
        (a["ml.feature"], a["ml.window"]): p.value
        for a, p in telemetry.points("ml.drift.p_value")
        if a["ml.model.name"] == "scorer"
    }
    assert ("ml.label", "5m") in points and ("ml.prediction", "cumulative") in points
    drift.stop()


def test_every_model_publishes_and_windows_close_by_themselves(telemetry: Captured) -> None:
    """Two models share the drift gauges (the SDK keeps only the first callbacks of a name), and
    serving alone starts the thread that closes the windows."""
    rng = np.random.default_rng(5)
    baseline = iw.Profile.build(rng.normal(size=(5_000, 3)), columns=FEATURES)

    def model(name: str) -> Any:
        @iw.monitor(model=name, features=FEATURES, baseline=baseline, window=0.2)
        def predict(X: np.ndarray) -> np.ndarray:
            return X.sum(axis=1)

        return predict

    first, second = model("first"), model("second")
    assert not first.drift.running  # no thread before traffic
    first(rng.normal(size=(500, 3)) + 1.0)
    second(rng.normal(size=(500, 3)))
    assert first.drift.running and second.drift.running
    deadline = time.monotonic() + 30
    while not (first.drift.latest and second.drift.latest) and time.monotonic() < deadline:
        time.sleep(0.05)
    first.drift.stop()
    second.drift.stop()
    models = {a["ml.model.name"] for a, _ in telemetry.points("ml.drift.score")}
    assert {"first", "second"} <= models
