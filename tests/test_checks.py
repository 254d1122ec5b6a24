"""Data checks: long inputs, all-NaN rows and out-of-range predictions become events."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import inferwatch as iw
from inferwatch.summaries import data_checks as checks
from tests.conftest import Captured


@pytest.fixture(autouse=True)
def _fresh_limiter() -> Iterator[None]:
    checks.limiter = checks.RateLimiter(interval_s=10.0)
    yield
    checks.limiter = checks.RateLimiter()


def _events(telemetry: Captured, name: str) -> list[Any]:
    return [r.log_record for r in telemetry.logs() if r.log_record.event_name == name]


def test_declared_long_input_threshold(telemetry: Captured) -> None:
    @iw.monitor(model="clf", max_input_length=20)
    def classify(texts: list[str]) -> list[int]:
        return [0] * len(texts)

    with iw.context(request_id="r-long"):
        classify(["short", "x" * 50])
    span = telemetry.span("inference clf")
    assert (span.attributes or {})["ml.input.long"] is True
    (event,) = _events(telemetry, "ml.input.long")
    assert event.trace_id == span.context.trace_id  # linked to the inference span
    attrs = dict(event.attributes)
    assert attrs["ml.request.id"] == "r-long"
    assert (attrs["ml.input.length.max"], attrs["inferwatch.threshold"]) == (50, 20.0)
    assert event.severity_text == "WARN"


def test_learned_long_input_threshold(telemetry: Captured) -> None:
    rng = np.random.default_rng(0)

    @iw.monitor(model="clf")
    def classify(text: str) -> int:
        return 0

    for n in rng.integers(10, 60, size=checks.MIN_LEARNING_SAMPLES):
        classify("w" * int(n))
    assert _events(telemetry, "ml.input.long") == []  # learning, nothing flagged yet
    classify("w" * 500)
    (event,) = _events(telemetry, "ml.input.long")
    assert dict(event.attributes)["inferwatch.threshold"] < 60


def test_all_nan_rows(telemetry: Captured) -> None:
    @iw.monitor(model="m")
    def predict(X: np.ndarray) -> np.ndarray:
        return np.zeros(len(X))

    X = np.ones((5, 3))
    X[1] = np.nan
    X[3, 0] = np.nan
    predict(X)
    assert (telemetry.span("inference m").attributes or {})["ml.input.nan_full_rows"] == 1
    (event,) = _events(telemetry, "ml.input.all_nan_rows")
    assert "1 input row(s)" in str(event.body)


def test_predictions_outside_the_declared_range(telemetry: Captured) -> None:
    @iw.monitor(model="p", prediction_range=(0.0, 1.0))
    def predict(x: Any) -> Any:
        return x

    predict(np.array([0.2, 1.7, -0.1, 0.5]))
    predict(0.5)
    first, second = telemetry.spans("inference p")
    assert (first.attributes or {})["ml.prediction.out_of_range"] == 2
    assert "ml.prediction.out_of_range" not in (second.attributes or {})
    (event,) = _events(telemetry, "ml.prediction.out_of_range")
    assert dict(event.attributes)["ml.prediction.max"] == 1.7


def test_events_are_rate_limited_and_count_what_they_held_back(telemetry: Captured) -> None:
    checks.limiter = checks.RateLimiter(interval_s=0.2)

    @iw.monitor(model="clf", max_input_length=3)
    def classify(text: str) -> int:
        return 0

    for _ in range(5):
        classify("long text")
    assert len(_events(telemetry, "ml.input.long")) == 1
    time.sleep(0.25)
    classify("long text")
    first, second = _events(telemetry, "ml.input.long")
    assert "inferwatch.suppressed" not in dict(first.attributes)
    assert dict(second.attributes)["inferwatch.suppressed"] == 4
    # Every span still says so: the limit is on log events only.
    assert all((s.attributes or {})["ml.input.long"] for s in telemetry.spans("inference clf"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_input_length": 0},
        {"long_input_quantile": 1.5},
        {"prediction_range": (1.0, 0.0)},
        {"prediction_range": (0.0, float("inf"))},
    ],
)
def test_invalid_check_settings_fail_at_decoration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        iw.monitor(model="m", **kwargs)
