"""inferwatch's histograms, aggregated in the process and handed to every metric reader.

An OTel Python SDK ``Histogram.record`` costs several microseconds per point (the attributes are
cleaned and hashed, an exemplar offered, every reader's storage updated through a measurement
object), and an inference records two or three of them. Here a point is a dictionary look-up by
the attribute set, a bisect and a few additions under the series' lock.

What comes out is what the SDK would export for the same measurements: per reader, per
attribute set, a `HistogramDataPoint` with the same count, sum, bucket counts, bounds, min and max,
for cumulative and delta readers alike (a delta point covers the reader's last interval; an
interval without measurements has no point), with the SDK's cardinality limit and overflow
series. The OpenTelemetry specification calls such a source a MetricProducer; the Python SDK has
none yet (opentelemetry-python #4768, PR #5419), so `Bridge` is the one place that plugs it in:
it wraps each reader's collect callback once, and the reader exports the SDK's metrics and these
in one `MetricsData`, under inferwatch's instrumentation scope. That callback
(``MetricReader._set_collect_callback``) and the reader's temporality table are the SDK's own
internals this module relies on, and `tests/test_aggregation.py` holds them to the SDK's output.

Exemplars (``ml.inference.duration`` only) cost nothing per call but a counter and a random draw:
each bucket keeps one measurement per collection interval, drawn uniformly at random from the
interval's measurements, and kept when the provider's exemplar filter accepts it (trace-based by
default: a sampled span) — the filter is asked only for the draws.

Fork: a child starts from zero (its own process, its own ``service.instance.id``), as a freshly
configured process would.
"""

from __future__ import annotations

import math
import random
import threading
import weakref
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from typing import Any, Protocol

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import Exemplar, MeterProvider
from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from inferwatch import errors, forks, semconv
from inferwatch.attributes import AttributeValue
from inferwatch.semconv import InstrumentSpec
from inferwatch.version import __version__

CARDINALITY_LIMIT = 2000
"""Attribute sets per histogram, as the SDK's default; later ones fold into one overflow set."""
OVERFLOW: Mapping[str, AttributeValue] = {"otel.metric.overflow": True}

_Key = tuple[tuple[str, AttributeValue], ...]


class _Interval:
    """One reader's view of one series: what arrived since its last collection, and (for a
    cumulative reader) the totals before that."""

    __slots__ = (
        "buckets",
        "count",
        "exemplars",
        "max",
        "min",
        "seen",
        "sum",
        "total_buckets",
        "total_max",
        "total_min",
        "total_sum",
    )

    def __init__(self, n_buckets: int, exemplars: bool) -> None:
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.buckets = [0] * n_buckets
        self.total_buckets: list[int] | None = None
        self.total_sum = 0.0
        self.total_min = math.inf
        self.total_max = -math.inf
        self.exemplars: list[Exemplar | None] | None = [None] * n_buckets if exemplars else None
        self.seen = [0] * n_buckets if exemplars else None


class _Series:
    """One attribute set of a histogram: what `AggregatedHistogram.bind` hands out.

    A recording call never waits for the series' lock: if the lock is free it takes it and
    records (and folds in what others left pending), else it appends its measurement to
    ``pending`` (a deque's append is atomic) for the lock's holder, the next call or the next
    collection to fold in (`inferwatch.nowait`, inlined). Collections fold everything first,
    so nothing recorded before one is missing from it.
    """

    __slots__ = ("attributes", "exemplars", "histogram", "intervals", "lock", "pending")

    def __init__(
        self,
        histogram: AggregatedHistogram,
        attributes: dict[str, AttributeValue],
        intervals: list[_Interval],
    ) -> None:
        self.histogram = histogram
        self.attributes = attributes
        self.intervals = intervals
        self.lock = threading.Lock()
        self.exemplars = histogram.exemplars
        self.pending: deque[Any] = deque()
        """Amounts (with their context and time, for exemplars) not yet folded in."""

    def record(self, amount: float, context: Context | None = None) -> None:
        if amount < 0:  # as the SDK: a histogram takes no negative value
            return
        if not self.exemplars:
            context = None
        lock = self.lock
        if lock.acquire(False):
            try:
                if self.pending:
                    self.fold()
                self._add(amount, context, 0)
            finally:
                lock.release()
        elif context is not None:
            self.pending.append((amount, context, time_ns()))
        else:
            self.pending.append(amount)

    def fold(self) -> None:
        """Fold the pending measurements in (called with the lock held)."""
        pending = self.pending
        while pending:  # only the lock's holder takes from it
            item = pending.popleft()
            if type(item) is tuple:
                self._add(*item)
            else:
                self._add(item, None, 0)

    def _add(self, amount: float, context: Context | None, at: int) -> None:
        """One measurement (taken at ``at``, 0: now) into every reader's interval (locked)."""
        index = bisect_left(self.histogram.boundaries, amount)
        for interval in self.intervals:
            interval.count += 1
            interval.sum += amount
            if amount < interval.min:
                interval.min = amount
            if amount > interval.max:
                interval.max = amount
            interval.buckets[index] += 1
            seen = interval.seen
            if seen is not None and context is not None:
                seen[index] += 1
                if random.random() * seen[index] < 1.0:  # uniform among the interval's
                    at = at or time_ns()
                    self.histogram.offer(interval, index, amount, self.attributes, context, at)


class BoundRecording(Protocol):
    """A histogram's attribute set, bound once: ``record(value, context=None)``."""

    def record(self, amount: float, context: Context | None = None) -> None: ...


class Recording(Protocol):
    """A histogram as the hot path uses it: an `AggregatedHistogram`, or the API's histogram of
    a provider that is not the SDK's, given a `bind` by `inferwatch.export.instruments`."""

    def record(
        self,
        amount: float,
        attributes: Mapping[str, Any] | None = None,
        context: Context | None = None,
    ) -> None: ...

    def bind(self, attributes: Mapping[str, AttributeValue]) -> BoundRecording: ...


class AggregatedHistogram:
    """``record(value, attributes, context=None)`` as an SDK histogram takes it.

    >>> duration = bridge.histogram(semconv.METRIC_INFERENCE_DURATION)
    >>> duration.record(0.012, {"ml.model.name": "fraud"}, context=span_context)
    """

    def __init__(self, bridge: Bridge, spec: InstrumentSpec, exemplars: bool) -> None:
        self._bridge = bridge
        self.spec = spec
        self.name = spec.name
        self.boundaries = tuple(spec.buckets or ())
        self._n_buckets = len(self.boundaries) + 1
        self.exemplars = exemplars
        self._series: dict[_Key, _Series] = {}
        self._lock = threading.Lock()  # creating a series; recording takes the series' own
        self.start_ns = time_ns()

    def record(
        self,
        amount: float,
        attributes: Mapping[str, Any] | None = None,
        context: Context | None = None,
    ) -> None:
        self.bind(attributes or {}).record(amount, context)

    def bind(self, attributes: Mapping[str, AttributeValue]) -> _Series:
        """The series of ``attributes`` (the overflow series past the cardinality limit), to
        record into without looking it up again. A forked child starts new series: a series
        bound in the parent no longer reaches the child's readers."""
        key: _Key = tuple(attributes.items())
        series = self._series.get(key)
        if series is None:
            series = self._new_series(key, attributes)
        return series

    def offer(
        self,
        interval: _Interval,
        index: int,
        amount: float,
        attributes: Mapping[str, AttributeValue],
        context: Context,
        now: int,
    ) -> None:
        """Keep ``amount``, measured at ``now``, as the bucket's exemplar if the exemplar filter
        takes it."""
        if not self._bridge.exemplar_filter.should_sample(amount, now, attributes, context):
            return
        span_context = trace.get_current_span(context).get_span_context()
        assert interval.exemplars is not None
        interval.exemplars[index] = Exemplar(
            {}, amount, now, span_context.span_id, span_context.trace_id
        )

    def _new_series(self, key: _Key, attributes: Mapping[str, AttributeValue]) -> _Series:
        with self._lock:
            found = self._series.get(key)
            if found is not None:
                return found
            overflow = tuple(OVERFLOW.items())
            if len(self._series) - (overflow in self._series) >= CARDINALITY_LIMIT:
                found = self._series.get(overflow)
                if found is None:
                    found = self._series[overflow] = self._make_series(dict(OVERFLOW))
                return found
            found = self._series[key] = self._make_series(dict(attributes))
            return found

    def _make_series(self, attributes: dict[str, AttributeValue]) -> _Series:
        intervals = [
            _Interval(self._n_buckets, self.exemplars) for _ in range(self._bridge.n_readers)
        ]
        return _Series(self, attributes, intervals)

    def collect(self, reader: int, delta: bool, now: int, since: int) -> Metric | None:
        """This histogram's points for reader number ``reader`` (None: nothing to report)."""
        points = []
        for series in list(self._series.values()):
            with series.lock:
                series.fold()
                point = _point(series, series.intervals[reader], delta, now, since, self)
            if point is not None:
                points.append(point)
        if not points:
            return None
        temporality = AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE
        return Metric(
            name=self.name,
            description=self.spec.description,
            unit=self.spec.unit,
            data=Histogram(data_points=points, aggregation_temporality=temporality),
        )

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._series = {}  # the parent's points are the parent's
        self.start_ns = time_ns()


def _point(
    series: _Series,
    interval: _Interval,
    delta: bool,
    now: int,
    since: int,
    histogram: AggregatedHistogram,
) -> HistogramDataPoint | None:
    """The reader's point, as the SDK's explicit-bucket aggregation makes it (called locked)."""
    exemplars: list[Exemplar] = []
    if interval.exemplars is not None and interval.seen is not None:
        exemplars = [e for e in interval.exemplars if e is not None]
        interval.exemplars = [None] * len(interval.exemplars)
        interval.seen = [0] * len(interval.seen)
    count, sum_, min_, max_ = interval.count, interval.sum, interval.min, interval.max
    buckets = interval.buckets
    interval.count, interval.sum, interval.min, interval.max = 0, 0.0, math.inf, -math.inf
    interval.buckets = [0] * len(buckets)
    if delta:
        if not count:
            return None
        return HistogramDataPoint(
            attributes=series.attributes,
            exemplars=exemplars,
            start_time_unix_nano=since,
            time_unix_nano=now,
            count=count,
            sum=sum_,
            bucket_counts=tuple(buckets),
            explicit_bounds=histogram.boundaries,
            min=min_,
            max=max_,
        )
    total = interval.total_buckets
    if total is not None:
        buckets = [a + b for a, b in zip(total, buckets, strict=True)]
    interval.total_buckets = buckets
    interval.total_sum += sum_
    interval.total_min = min(interval.total_min, min_)
    interval.total_max = max(interval.total_max, max_)
    if not sum(buckets):  # bound, never recorded: the SDK has no such attribute set
        return None
    return HistogramDataPoint(
        attributes=series.attributes,
        exemplars=exemplars,
        start_time_unix_nano=histogram.start_ns,
        time_unix_nano=now,
        count=sum(interval.total_buckets),
        sum=interval.total_sum,
        bucket_counts=tuple(interval.total_buckets),
        explicit_bounds=histogram.boundaries,
        min=interval.total_min,
        max=interval.total_max,
    )


class Bridge:
    """inferwatch's aggregated histograms on one SDK meter provider, for each of its readers.

    One per provider: an application's provider that several `configure()` calls reuse keeps
    its histograms (and their totals), as its SDK instruments would.
    """

    def __init__(self, provider: MeterProvider, scope: InstrumentationScope) -> None:
        self.scope = scope
        self.resource = provider._sdk_config.resource
        self.exemplar_filter = provider._sdk_config.exemplar_filter
        self._readers: list[MetricReader] = list(provider._metric_readers)
        self.n_readers = len(self._readers)
        self._delta = [
            _histogram_temporality(r) is AggregationTemporality.DELTA for r in self._readers
        ]
        self._histograms: dict[str, AggregatedHistogram] = {}
        self._lock = threading.Lock()
        self._last_collect = [time_ns()] * self.n_readers
        for number, reader in enumerate(self._readers):
            _plug_in(reader, self, number)

    def histogram(self, spec: InstrumentSpec) -> AggregatedHistogram:
        with self._lock:
            found = self._histograms.get(spec.name)
            if found is None:
                exemplars = spec.name == semconv.METRIC_INFERENCE_DURATION
                found = self._histograms[spec.name] = AggregatedHistogram(self, spec, exemplars)
            return found

    def produce(self, number: int, reader: MetricReader) -> list[Metric]:
        """The metrics of reader number ``number`` at this collection."""
        delta = self._delta[number]
        now = time_ns()
        since, self._last_collect[number] = self._last_collect[number], now
        made = []
        for histogram in list(self._histograms.values()):
            metric = histogram.collect(number, delta, now, max(since, histogram.start_ns))
            if metric is not None:
                made.append(metric)
        return made

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        for histogram in list(self._histograms.values()):
            histogram._after_fork_in_child()
        self._last_collect = [time_ns()] * self.n_readers


def _histogram_temporality(reader: MetricReader) -> AggregationTemporality:
    """The temporality the reader asks of histograms (its table is keyed by the SDK's classes)."""
    table: Mapping[Any, AggregationTemporality] = reader._instrument_class_temporality
    for instrument, temporality in table.items():
        if issubclass(instrument, SdkHistogram):
            return temporality
    return AggregationTemporality.CUMULATIVE


def _plug_in(reader: MetricReader, bridge: Bridge, number: int) -> None:
    """Wrap the reader's collect callback once: the SDK's metrics, then the bridge's."""
    collect: Callable[..., MetricsData | None] | None = reader._collect  # type: ignore[assignment]
    if collect is None:
        return

    def collect_with_inferwatch(
        metric_reader: MetricReader, timeout_millis: float = 10_000
    ) -> MetricsData | None:
        assert collect is not None
        data = collect(metric_reader, timeout_millis=timeout_millis)
        try:
            extra = bridge.produce(number, metric_reader)
        except Exception as exc:  # the SDK's metrics still go out
            errors.contained.error("aggregation.collect", exc)
            return data
        return _merged(data, extra, bridge) if extra else data

    reader._set_collect_callback(collect_with_inferwatch)  # type: ignore[arg-type]


def _merged(data: MetricsData | None, extra: Sequence[Metric], bridge: Bridge) -> MetricsData:
    """``data`` with ``extra`` in inferwatch's scope (joined to the SDK's own scope entry of
    inferwatch when the data has one: the observable counters are SDK instruments)."""
    resource_metrics = list(data.resource_metrics) if data is not None else []
    if not resource_metrics:
        resource_metrics = [ResourceMetrics(bridge.resource, [], bridge.resource.schema_url or "")]
    first = resource_metrics[0]
    scopes = list(first.scope_metrics)
    for i, scope in enumerate(scopes):
        if scope.scope.name == bridge.scope.name and scope.scope.version == bridge.scope.version:
            scopes[i] = ScopeMetrics(scope.scope, [*scope.metrics, *extra], scope.schema_url)
            break
    else:
        scopes.append(ScopeMetrics(bridge.scope, list(extra), bridge.scope.schema_url or ""))
    resource_metrics[0] = ResourceMetrics(first.resource, scopes, first.schema_url)
    return MetricsData(resource_metrics)


_by_provider: weakref.WeakKeyDictionary[MeterProvider, Bridge] = weakref.WeakKeyDictionary()
_by_provider_lock = threading.Lock()


_by_meter: weakref.WeakKeyDictionary[metrics.Meter, Bridge] = weakref.WeakKeyDictionary()


def attach(meter: metrics.Meter, provider: Any) -> None:
    """Aggregate the histograms made on `meter` (of `provider`) in the process, when the
    provider is an SDK one; others (a no-op or proxy provider) keep the API's instruments."""
    bridge = bridge_for(provider)
    if bridge is not None:
        _by_meter[meter] = bridge


def bridge_of(meter: metrics.Meter) -> Bridge | None:
    """The bridge `attach` gave `meter`, if any."""
    return _by_meter.get(meter)


def bridge_for(provider: Any) -> Bridge | None:
    """The bridge of an SDK meter provider (made on first use), None for any other provider."""
    if not isinstance(provider, MeterProvider):
        return None
    with _by_provider_lock:
        found = _by_provider.get(provider)
        if found is None:
            scope = InstrumentationScope(semconv.INSTRUMENTATION_NAME, __version__)
            found = _by_provider[provider] = Bridge(provider, scope)
        return found


def _after_fork_in_child() -> None:
    global _by_provider_lock
    _by_provider_lock = threading.Lock()
    for bridge in list(_by_provider.values()):
        bridge._after_fork_in_child()


forks.on_fork_in_child(_after_fork_in_child)
