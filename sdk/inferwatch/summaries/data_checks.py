"""Per-model data checks that log events: long inputs, all-NaN rows, out-of-range predictions.

Each finding becomes a span attribute (for slicing later) and a structured log event on the
``inferwatch.events`` logger, which the logs bridge ships as an OTel log record linked to the
inference span. Events are rate-limited per model and kind: at most one per interval, and the
next one says how many were suppressed in between.
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from datasketches import kll_floats_sketch

from inferwatch import semconv
from inferwatch.attributes import AttributeValue
from inferwatch.forks import renew_lock_after_fork
from inferwatch.instrument.observers import FollowUp, Observer
from inferwatch.summaries.inputs import InputSummary
from inferwatch.summaries.predictions import PredictionSummary

if TYPE_CHECKING:
    from inferwatch.instrument.inference import Inference

_events = logging.getLogger("inferwatch.events")
MIN_LEARNING_SAMPLES = 1000
"""Lengths seen before a learned long-input threshold applies."""


@dataclass(slots=True)
class Finding:
    event: str
    message: str
    span_attributes: dict[str, AttributeValue]
    details: dict[str, AttributeValue] = field(default_factory=dict)


class RateLimiter:
    """Allows one event per key and interval; counts what it held back."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self._lock = threading.Lock()
        renew_lock_after_fork(self)
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def allow(self, key: tuple[str, str]) -> int | None:
        """None if the event should be held back, else how many were held back before it."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._suppressed.pop(key, 0)


limiter = RateLimiter()


_sketching: weakref.WeakSet[DataChecks] = weakref.WeakSet()


@atexit.register
def _free_sketches() -> None:
    """Free the length sketches before the interpreter's teardown, which reports a native
    object still alive then as a leak (nanobind: "leaked 1 instances!")."""
    for checks in list(_sketching):
        checks._lengths = None


class DataChecks(Observer):
    """The checks of one model, configured once (`monitor`/`inference` arguments).

    It observes the model's inferences as features do: findings go on the span, and their
    events are logged once the span has started, so each record carries its trace id.
    """

    name = "checks"

    def __init__(
        self,
        model: str,
        *,
        max_input_length: int | None = None,
        long_input_quantile: float | None = 0.999,
        prediction_range: tuple[float, float] | None = None,
    ) -> None:
        if max_input_length is not None and max_input_length <= 0:
            raise ValueError(f"max_input_length must be positive, got {max_input_length!r}")
        if long_input_quantile is not None and not 0.0 < long_input_quantile < 1.0:
            raise ValueError(f"long_input_quantile must be in (0, 1), got {long_input_quantile!r}")
        if prediction_range is not None:
            low, high = prediction_range
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(
                    f"prediction_range must be (low, high) with low <= high, got "
                    f"{prediction_range!r}"
                )
        self.model = model
        self.max_input_length = max_input_length
        self.long_input_quantile = long_input_quantile
        self.prediction_range = prediction_range
        self._lengths: kll_floats_sketch | None = None
        """Input lengths seen, made at the first (numeric inputs have none)."""
        self._lock = threading.Lock()
        renew_lock_after_fork(self)

    def on_input(
        self,
        rec: Inference,
        x: Any,
        summary: InputSummary | None,
        attributes: dict[str, AttributeValue],
    ) -> FollowUp | None:
        if summary is None or not (summary.nan_full_rows or summary.lengths):
            return None  # nothing to check: the common case, without a call
        findings = self.inspect_input(summary)
        if not findings:
            return None
        for finding in findings:
            attributes.update(finding.span_attributes)
        return partial(log_findings, self.model, findings)

    def on_prediction(self, rec: Inference, y: Any, summary: PredictionSummary) -> None:
        if summary.out_of_range:
            log_findings(self.model, self.inspect_prediction(summary))

    def observes(self, hook: str) -> bool:
        # Without a declared range no prediction can be out of it: not called per prediction.
        if hook == "on_prediction" and self.prediction_range is None:
            return False
        return super().observes(hook)

    def inspect_input(self, summary: InputSummary) -> list[Finding]:
        findings = []
        if summary.nan_full_rows:
            findings.append(
                Finding(
                    semconv.EVENT_INPUT_ALL_NAN_ROWS,
                    f"{summary.nan_full_rows} input row(s) entirely NaN or missing",
                    {semconv.ML_INPUT_NAN_FULL_ROWS: summary.nan_full_rows},
                )
            )
        if summary.lengths and summary.length_max is not None:
            threshold = self._long_input_threshold(summary.lengths)
            if threshold is not None and summary.length_max > threshold:
                findings.append(
                    Finding(
                        semconv.EVENT_INPUT_LONG,
                        f"input of length {summary.length_max} over the threshold {threshold:g}",
                        {semconv.ML_INPUT_LONG: True},
                        {
                            semconv.ML_INPUT_LENGTH_MAX: summary.length_max,
                            "inferwatch.threshold": float(threshold),
                        },
                    )
                )
        return findings

    def _long_input_threshold(self, lengths: Iterable[int]) -> float | None:
        """The declared maximum, else the learned quantile once enough lengths were seen."""
        if self.long_input_quantile is None:
            return self.max_input_length
        with self._lock:
            sketch = self._lengths
            if sketch is None:
                sketch = self._lengths = kll_floats_sketch(200)
                _sketching.add(self)
            learned = None
            if sketch.n >= MIN_LEARNING_SAMPLES and self.long_input_quantile is not None:
                learned = sketch.get_quantile(self.long_input_quantile)
            for length in lengths:  # after the look-up: an outlier does not raise its own bar
                sketch.update(float(length))
        if self.max_input_length is not None:
            return self.max_input_length if learned is None else min(self.max_input_length, learned)
        return learned

    def inspect_prediction(self, summary: PredictionSummary) -> list[Finding]:
        if not summary.out_of_range or self.prediction_range is None:
            return []
        low, high = self.prediction_range
        return [
            Finding(
                semconv.EVENT_PREDICTION_OUT_OF_RANGE,
                f"{summary.out_of_range} prediction(s) outside [{low:g}, {high:g}]",
                {semconv.ML_PREDICTION_OUT_OF_RANGE: summary.out_of_range},
                {
                    semconv.ML_PREDICTION_MIN: summary.min or 0.0,
                    semconv.ML_PREDICTION_MAX: summary.max or 0.0,
                },
            )
        ]


def log_findings(model: str, findings: list[Finding]) -> None:
    """One rate-limited structured warning per finding, on the ``inferwatch.events`` logger."""
    for finding in findings:
        suppressed = limiter.allow((finding.event, model))
        if suppressed is None:
            continue
        extra: dict[str, Any] = {
            "otel.event.name": finding.event,
            semconv.ML_MODEL_NAME: model,
            **finding.span_attributes,
            **finding.details,
        }
        if suppressed:
            extra["inferwatch.suppressed"] = suppressed
        _events.warning("%s (model %s)", finding.message, model, extra=extra)
