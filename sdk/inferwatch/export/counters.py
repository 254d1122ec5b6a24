"""Monotonic counters summed in-process and reported through an OTel ObservableCounter.

An OTel SDK `Counter.add` costs several microseconds (attribute cleaning, hashing, an exemplar
offer). NaN counts per feature and predictions per class arrive many at a time, so inferwatch
sums them in a dict and lets the metric reader collect the totals: one dict update per add.
The exported data are the same cumulative sums a `Counter` would produce.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Mapping

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from inferwatch import forks
from inferwatch.attributes import AttributeValue
from inferwatch.export import instruments
from inferwatch.forks import renew_lock_after_fork

# As the OTel SDK's default cardinality limit: past it, points fold into one overflow series.
CARDINALITY_LIMIT = 2000
OVERFLOW_ATTRIBUTES: Mapping[str, AttributeValue] = {"otel.metric.overflow": True}


class LocalCounter:
    """``add(amount, attributes)`` like a Counter; the totals leave at collection time.

    >>> nan_count = LocalCounter(meter, semconv.METRIC_INPUT_NAN_COUNT)
    >>> nan_count.add(3, {"ml.model.name": "fraud", "ml.feature": "amount"})

    ``name`` is an ObservableCounter of `semconv.INSTRUMENTS`, which gives its unit and
    description.
    """

    def __init__(self, meter: metrics.Meter, name: str) -> None:
        self._lock = threading.Lock()
        renew_lock_after_fork(self)
        self._totals: dict[tuple[tuple[str, AttributeValue], ...], float] = {}
        _counters.add(self)
        instruments.observable_counter(meter, name, [self._observe])

    def add(self, amount: float, attributes: Mapping[str, AttributeValue]) -> None:
        key = tuple(attributes.items())
        with self._lock:
            total = self._totals.get(key)
            if total is not None:
                self._totals[key] = total + amount
            elif len(self._totals) < CARDINALITY_LIMIT:
                self._totals[key] = amount
            else:
                overflow = tuple(OVERFLOW_ATTRIBUTES.items())
                self._totals[overflow] = self._totals.get(overflow, 0) + amount

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            totals = list(self._totals.items())
        return [Observation(total, dict(key)) for key, total in totals]


_counters: weakref.WeakSet[LocalCounter] = weakref.WeakSet()


def _start_from_zero_in_child() -> None:
    """A forked child counts its own: the parent's totals are the parent's to report."""
    for counter in list(_counters):
        counter._totals = {}


forks.on_fork_in_child(_start_from_zero_in_child)
