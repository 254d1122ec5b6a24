"""The delayed-label metrics of one configuration: a delay histogram and observed scores.

Scores are observable gauges: the metric reader's collection derives them from the counts of
the prediction index's retained windows, so the label path only updates counts. One point per
(model, version, metric tags, serving window[, class]); see `delayed_labels.index` for why
that stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from operator import attrgetter

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from inferwatch import semconv
from inferwatch.delayed_labels.index import current_index
from inferwatch.delayed_labels.scores import (
    ClassificationScores,
    WindowScores,
    classification_scores,
    regression_scores,
)
from inferwatch.export.state import bind_instruments

PerClass = Callable[[ClassificationScores], dict[str, float]]
Macro = Callable[[ClassificationScores], float]


class FeedbackInstruments:
    """Made on each configuration's meter; the gauges read whichever index is current."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.delay = meter.create_histogram(
            semconv.METRIC_LABEL_DELAY, unit="s", description="Time from prediction to label",
            explicit_bucket_boundaries_advisory=semconv.DELAY_BUCKETS,
        )  # fmt: skip

        def gauge(name: str, unit: str, description: str,
                  observe: Callable[[], Iterable[Observation]]) -> None:  # fmt: skip
            meter.create_observable_gauge(
                name, callbacks=[lambda options: observe()], unit=unit, description=description
            )

        gauge(semconv.METRIC_LABEL_ACCURACY, "1", "Share of labelled predictions that were right",
              partial(_macro, attrgetter("accuracy")))  # fmt: skip
        for name, per_class, what in (
            (semconv.METRIC_LABEL_PRECISION, attrgetter("precision"), "Precision"),
            (semconv.METRIC_LABEL_RECALL, attrgetter("recall"), "Recall"),
            (semconv.METRIC_LABEL_F1, attrgetter("f1"), "F1 score"),
        ):
            gauge(
                name, "1", f"{what} per class, from delayed labels", partial(_per_class, per_class)
            )
        for name, macro, what in (
            (semconv.METRIC_LABEL_PRECISION_MACRO, attrgetter("macro_precision"), "precision"),
            (semconv.METRIC_LABEL_RECALL_MACRO, attrgetter("macro_recall"), "recall"),
            (semconv.METRIC_LABEL_F1_MACRO, attrgetter("macro_f1"), "F1 score"),
        ):
            gauge(name, "1", f"Unweighted mean {what} over classes, from delayed labels",
                  partial(_macro, macro))  # fmt: skip
        gauge(semconv.METRIC_LABEL_MAE, "1", "Mean absolute error, from delayed labels",
              partial(_regression, 0))  # fmt: skip
        gauge(semconv.METRIC_LABEL_RMSE, "1", "Root mean squared error, from delayed labels",
              partial(_regression, 1))  # fmt: skip
        gauge(semconv.METRIC_LABEL_UNLABELLED, "1", "Share of predictions without a label yet",
              _unlabelled)  # fmt: skip
        meter.create_observable_counter(
            semconv.METRIC_LABEL_COUNT, callbacks=[_labelled], unit="{prediction}",
            description="Predictions labelled, by serving window",
        )  # fmt: skip
        meter.create_observable_counter(
            semconv.METRIC_LABEL_UNJOINED, callbacks=[_unjoined], unit="{label}",
            description="Labels not joined to a prediction here, by status",
        )  # fmt: skip
        meter.create_observable_counter(
            semconv.METRIC_LABEL_EVICTED, callbacks=[_evicted], unit="{prediction}",
            description="Unlabelled predictions evicted from a full index",
        )  # fmt: skip


def _classified() -> Iterable[tuple[WindowScores, ClassificationScores]]:
    for window in current_index().snapshot():
        scores = classification_scores(window.confusion, window.correct)
        if scores is not None:
            yield window, scores


def _macro(value: Macro) -> list[Observation]:
    return [Observation(value(scores), window.attributes) for window, scores in _classified()]


def _per_class(values: PerClass) -> list[Observation]:
    return [
        Observation(value, {**window.attributes, semconv.ML_LABEL_CLASS: c})
        for window, scores in _classified()
        for c, value in values(scores).items()
    ]


def _regression(which: int) -> list[Observation]:
    found = []
    for window in current_index().snapshot():
        scores = regression_scores(window)
        if scores is not None:
            found.append(Observation(scores[which], window.attributes))
    return found


def _unlabelled() -> list[Observation]:
    return [
        Observation(max(0, w.served - w.labelled) / w.served, w.attributes)
        for w in current_index().snapshot()
        if w.served
    ]


def _labelled(options: CallbackOptions) -> list[Observation]:
    return [Observation(w.labelled, w.attributes) for w in current_index().snapshot()]


def _unjoined(options: CallbackOptions) -> list[Observation]:
    _, unjoined = current_index().counts()
    return [Observation(n, {semconv.ML_LABEL_STATUS: s}) for s, n in sorted(unjoined.items())]


def _evicted(options: CallbackOptions) -> list[Observation]:
    evicted, _ = current_index().counts()
    return [Observation(n, dict(key)) for key, n in evicted.items()]


feedback_instruments = bind_instruments(FeedbackInstruments)
