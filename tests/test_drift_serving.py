"""Drift in the serving path: `@iw.monitor(baseline=..., window=...)` feeds live windows."""

from __future__ import annotations

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
    events = [
        r.log_record for r in telemetry.logs() if r.log_record.event_name == "ml.drift.detected"
    ]
    assert {dict(e.attributes)["ml.feature"] for e in events} == {"amount"}
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
