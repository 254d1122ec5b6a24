"""The delayed-label metrics of one configuration: a delay histogram, counters and scores.

The counters (`COUNTERS`, and ``ml.label.count``) sum across processes, so a backend derives
the scores of a whole service from them; the scores of this process alone are observable
gauges. Both are read from the counts of the prediction index's retained windows at collection,
so the label path only updates counts. One point per (model, version, metric tags, serving
window[, class][, outcome]); see `delayed_labels.index` for why that stays bounded.
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
    counter_points,
    regression_scores,
)
from inferwatch.export import instruments
from inferwatch.export.state import bind_instruments

COUNTERS = (
    semconv.METRIC_LABEL_JUDGED,
    semconv.METRIC_LABEL_CLASS_OUTCOMES,
    semconv.METRIC_LABEL_ERROR_ABS,
    semconv.METRIC_LABEL_ERROR_SQUARED,
)
"""The label counters that sum across processes (`scores.counter_points`)."""
PerClass = Callable[[ClassificationScores], dict[str, float]]
Macro = Callable[[ClassificationScores], float]


class FeedbackInstruments:
    """Made on each configuration's meter; the gauges read whichever index is current."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.delay = instruments.histogram(meter, semconv.METRIC_LABEL_DELAY)

        def gauge(name: str, observe: Callable[[], Iterable[Observation]]) -> None:
            instruments.observable_gauge(meter, name, [lambda options: observe()])

        gauge(semconv.METRIC_LABEL_ACCURACY, partial(_macro, attrgetter("accuracy")))
        for name, per_class in (
            (semconv.METRIC_LABEL_PRECISION, attrgetter("precision")),
            (semconv.METRIC_LABEL_RECALL, attrgetter("recall")),
            (semconv.METRIC_LABEL_F1, attrgetter("f1")),
        ):
            gauge(name, partial(_per_class, per_class))
        for name, macro in (
            (semconv.METRIC_LABEL_PRECISION_MACRO, attrgetter("macro_precision")),
            (semconv.METRIC_LABEL_RECALL_MACRO, attrgetter("macro_recall")),
            (semconv.METRIC_LABEL_F1_MACRO, attrgetter("macro_f1")),
        ):
            gauge(name, partial(_macro, macro))
        gauge(semconv.METRIC_LABEL_MAE, partial(_regression, 0))
        gauge(semconv.METRIC_LABEL_RMSE, partial(_regression, 1))
        gauge(semconv.METRIC_LABEL_UNLABELLED, _unlabelled)
        instruments.observable_counter(meter, semconv.METRIC_LABEL_COUNT, [_labelled])
        for name in COUNTERS:
            instruments.observable_counter(meter, name, [partial(_counted, name)])
        instruments.observable_counter(meter, semconv.METRIC_LABEL_UNJOINED, [_unjoined])
        instruments.observable_counter(meter, semconv.METRIC_LABEL_EVICTED, [_evicted])


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


def _counted(name: str, options: CallbackOptions) -> list[Observation]:
    return [
        Observation(value, attributes)
        for window in current_index().snapshot()
        for metric, value, attributes in counter_points(window)
        if metric == name
    ]


def _unjoined(options: CallbackOptions) -> list[Observation]:
    _, unjoined = current_index().counts()
    return [Observation(n, {semconv.ML_LABEL_STATUS: s}) for s, n in sorted(unjoined.items())]


def _evicted(options: CallbackOptions) -> list[Observation]:
    evicted, _ = current_index().counts()
    return [Observation(n, dict(key)) for key, n in evicted.items()]


feedback_instruments = bind_instruments(FeedbackInstruments)
