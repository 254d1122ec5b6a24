"""Recent collections of the metrics that policies read, kept as long as their longest window.

The alert reader collects cumulative data (what a Prometheus server scrapes), so a counter's
increase over a window is its value now minus its value at the newest collection at or before
the window's start — zero when the series is younger than that, as Prometheus treats a series
that appears. A value lower than that baseline means the series restarted (a reconfiguration):
the whole current value is the increase. Gauges keep their samples inside the window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    Metric,
    MetricsData,
    Sum,
)

from inferwatch.alerts.catalog import Kind

SeriesKey = tuple[str, frozenset[tuple[str, Any]]]
"""(instrumentation scope, attributes): one time series."""


@dataclass(frozen=True, slots=True)
class HistogramValue:
    count: float
    sum: float
    buckets: tuple[float, ...]
    bounds: tuple[float, ...]


class Series:
    """One attribute set's snapshots, oldest first: ``(time, value)``."""

    __slots__ = ("attributes", "snapshots")

    def __init__(self, attributes: Mapping[str, Any]) -> None:
        self.attributes = attributes
        self.snapshots: deque[tuple[float, Any]] = deque()

    def baseline(self, start: float, from_newest: bool = True) -> Any | None:
        """The newest snapshot taken at or before ``start`` (None: the series is younger).

        Snapshots are in time order; scanning from the end nearer to ``start`` is quicker.
        """
        if from_newest:
            for t, value in reversed(self.snapshots):
                if t <= start:
                    return value
            return None
        found = None
        for t, value in self.snapshots:
            if t > start:
                break
            found = value
        return found


class MetricHistory:
    """The series of one metric, pruned to ``horizon`` seconds (plus one baseline snapshot)."""

    def __init__(self, name: str, kind: Kind, horizon: float) -> None:
        self.name = name
        self.kind = kind
        self.horizon = horizon
        self.series: dict[SeriesKey, Series] = {}
        self.generation = 0
        """Bumped when series are added or dropped; caches keyed on it stay valid otherwise."""
        self._increases: dict[tuple[float, float, bool], list[tuple[SeriesKey, Any]]] = {}
        """Per collection: policies sharing a metric and window share its increases."""

    def record(self, now: float, scope: str, metric: Metric) -> None:
        data = metric.data
        if isinstance(data, Histogram):
            for p in data.data_points:
                value = HistogramValue(
                    p.count, p.sum, tuple(p.bucket_counts), tuple(p.explicit_bounds)
                )
                self._add(now, scope, p.attributes or {}, value)
        elif isinstance(data, (Sum, Gauge)):
            for q in data.data_points:
                self._add(now, scope, q.attributes or {}, q.value)

    def _add(self, now: float, scope: str, attributes: Mapping[str, Any], value: Any) -> None:
        key = (scope, frozenset(attributes.items()))
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series(dict(attributes))
            self.generation += 1
        series.snapshots.append((now, value))

    def prune(self, now: float) -> None:
        """Drop snapshots older than the horizon (keeping one baseline) and dead series."""
        self._increases.clear()
        start = now - self.horizon
        dead = []
        for key, series in self.series.items():
            snapshots = series.snapshots
            while len(snapshots) > 1 and snapshots[1][0] <= start:
                snapshots.popleft()
            if snapshots[-1][0] <= start:  # not reported for a whole horizon: gone
                dead.append(key)
        for key in dead:
            del self.series[key]
        if dead:
            self.generation += 1

    # -- per-series figures over a window ------------------------------------------------------
    def increases(
        self, now: float, window: float, buckets: bool = False
    ) -> list[tuple[SeriesKey, Any]]:
        """Counters: the increase of each series; histograms: a HistogramValue of increases
        (with per-bucket increases only when ``buckets``: quantiles need them, counts do not)."""
        key = (now, window, buckets)
        found = self._increases.get(key)
        if found is None:
            found = self._increases[key] = list(self._compute_increases(now, window, buckets))
        return found

    def _compute_increases(
        self, now: float, window: float, buckets: bool
    ) -> Iterable[tuple[SeriesKey, Any]]:
        start = now - window
        from_newest = window < self.horizon / 2
        for key, series in self.series.items():
            latest_t, latest = series.snapshots[-1]
            if latest_t <= start:
                continue
            base = series.baseline(start, from_newest)
            if isinstance(latest, HistogramValue):
                yield key, _histogram_increase(latest, base, buckets)
            else:
                yield key, latest if base is None or latest < base else latest - base

    def samples(self, now: float, window: float) -> Iterable[tuple[SeriesKey, list[float]]]:
        """Gauges: each series' values inside the window, oldest first."""
        start = now - window
        for key, series in self.series.items():
            values = []
            for t, v in reversed(series.snapshots):  # newest first: stop at the window's start
                if t <= start:
                    break
                values.append(v)
            if values:
                values.reverse()
                yield key, values


def _histogram_increase(
    latest: HistogramValue, base: HistogramValue | None, buckets: bool
) -> HistogramValue:
    if base is None or latest.count < base.count or latest.bounds != base.bounds:
        return latest
    return HistogramValue(
        latest.count - base.count,
        latest.sum - base.sum,
        tuple(a - b for a, b in zip(latest.buckets, base.buckets, strict=True)) if buckets else (),
        latest.bounds,
    )


def record_all(
    histories: Mapping[str, MetricHistory], data: MetricsData, now: float
) -> dict[str, Mapping[str, Any]]:
    """Add this collection's points of every tracked metric; returns the first resource seen."""
    resource: dict[str, Mapping[str, Any]] = {}
    for resource_metrics in data.resource_metrics:
        resource.setdefault("attributes", resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope.name
            for metric in scope_metrics.metrics:
                history = histories.get(metric.name)
                if history is not None:
                    history.record(now, scope, metric)
    for history in histories.values():
        history.prune(now)
    return resource
