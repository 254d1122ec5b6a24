"""Monotonic counters summed in-process and reported through an OTel ObservableCounter.

An OTel SDK `Counter.add` costs several microseconds (attribute cleaning, hashing, an exemplar
offer). NaN counts per feature and predictions per class arrive many at a time, so inferwatch
sums them in a dict and lets the metric reader collect the totals: one dict update per add.
The exported data are the same cumulative sums a `Counter` would produce.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
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
    >>> nan_count.bind({"ml.model.name": "fraud"}).add(1)   # the set looked up once

    ``name`` is an ObservableCounter of `semconv.INSTRUMENTS`, which gives its unit and
    description.
    """

    def __init__(self, meter: metrics.Meter, name: str) -> None:
        self._lock = threading.Lock()
        renew_lock_after_fork(self)
        self._totals: dict[tuple[tuple[str, AttributeValue], ...], Total] = {}
        _counters.add(self)
        instruments.observable_counter(meter, name, [self._observe])

    def add(self, amount: float, attributes: Mapping[str, AttributeValue]) -> None:
        self.bind(attributes).add(amount)

    def bind(self, attributes: Mapping[str, AttributeValue]) -> Total:
        """The total of ``attributes`` (the overflow total past the cardinality limit). A
        forked child starts new totals: one bound in the parent no longer reaches its readers."""
        key = tuple(attributes.items())
        total = self._totals.get(key)
        if total is not None:
            return total
        with self._lock:
            total = self._totals.get(key)
            if total is None:
                if len(self._totals) >= CARDINALITY_LIMIT:
                    key = tuple(OVERFLOW_ATTRIBUTES.items())
                    total = self._totals.get(key)
                if total is None:
                    total = self._totals[key] = Total(self)
            return total

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            totals = [(key, total.fold()) for key, total in self._totals.items()]
        return [Observation(value, dict(key)) for key, value in totals]


class Total:
    """One attribute set's running total of a `LocalCounter`: ``add(amount)``, never waiting
    for the counter's lock (an amount that finds it held is queued for whoever takes it next,
    `inferwatch.nowait`, inlined)."""

    __slots__ = ("_counter", "pending", "value")

    def __init__(self, counter: LocalCounter) -> None:
        self._counter = counter
        self.value: float = 0
        self.pending: deque[float] = deque()

    def add(self, amount: float) -> None:
        lock = self._counter._lock
        if lock.acquire(False):
            try:
                if self.pending:
                    self.fold()
                self.value += amount
            finally:
                lock.release()
        else:
            self.pending.append(amount)

    def fold(self) -> float:
        """Add the pending amounts to the total (called with the counter's lock held)."""
        pending = self.pending
        while pending:  # only the lock's holder takes from it
            self.value += pending.popleft()
        return self.value


_counters: weakref.WeakSet[LocalCounter] = weakref.WeakSet()


def _start_from_zero_in_child() -> None:
    """A forked child counts its own: the parent's totals are the parent's to report."""
    for counter in list(_counters):
        counter._totals = {}


forks.on_fork_in_child(_start_from_zero_in_child)
