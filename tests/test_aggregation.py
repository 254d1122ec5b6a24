"""inferwatch's in-process histograms export what the OTel SDK's own would, to every reader.

Each test feeds one sequence of measurements to an aggregated histogram (`export.aggregation`,
bound to a meter provider) and to a plain SDK histogram with the same name, unit, description
and bounds on a second provider with the same kind of readers, and compares what the readers
collect: names, units, descriptions, temporality, scope, attributes, counts, sums, bucket counts,
bounds, min and max (timestamps and exemplars differ by design and are checked apart).
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from inferwatch import semconv
from inferwatch.export import aggregation, counters, instruments

DELTA = {Histogram: AggregationTemporality.DELTA}
NAMES = [semconv.METRIC_INFERENCE_DURATION, semconv.METRIC_PREDICTION_VALUE]


class Pair:
    """The same readers on two providers: one aggregating in the process, one the plain SDK."""

    def __init__(self, make_readers: Callable[[], list[MetricReader]]) -> None:
        resource = Resource.create({"service.name": "golden"})
        self.ours_readers = make_readers()
        self.sdk_readers = make_readers()
        self.ours = MeterProvider(metric_readers=self.ours_readers, resource=resource)
        self.sdk = MeterProvider(metric_readers=self.sdk_readers, resource=resource)
        ours_meter = self.ours.get_meter(semconv.INSTRUMENTATION_NAME, "0.1.0")
        aggregation.attach(ours_meter, self.ours)
        sdk_meter = self.sdk.get_meter(semconv.INSTRUMENTATION_NAME, "0.1.0")
        self.histograms = {
            name: (instruments.histogram(ours_meter, name), _sdk_histogram(sdk_meter, name))
            for name in NAMES
        }

    def record(self, name: str, value: float, attributes: dict[str, Any]) -> None:
        ours, sdk = self.histograms[name]
        ours.record(value, attributes)
        sdk.record(value, attributes)

    def collected(self) -> list[tuple[Any, Any]]:
        """(ours, the SDK's) for each reader, in a comparable form."""
        return [
            (_comparable(a), _comparable(b))
            for a, b in zip(self.ours_readers, self.sdk_readers, strict=True)
        ]

    def shutdown(self) -> None:
        self.ours.shutdown()
        self.sdk.shutdown()


def _sdk_histogram(meter: Any, name: str) -> Any:
    spec = semconv.INSTRUMENTS[name]
    return meter.create_histogram(
        name, unit=spec.unit, description=spec.description,
        explicit_bucket_boundaries_advisory=spec.buckets,
    )  # fmt: skip


def _aggregating(reader: MetricReader) -> tuple[MeterProvider, Any]:
    """A provider with ``reader`` and inferwatch's meter on it, aggregating in the process."""
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter(semconv.INSTRUMENTATION_NAME, "0.1.0")
    aggregation.attach(meter, provider)
    return provider, meter


def _comparable(reader: MetricReader) -> list[Any]:
    assert isinstance(reader, InMemoryMetricReader)
    data = reader.get_metrics_data()
    return _flatten(data)


def _flatten(data: Any) -> list[Any]:
    found = []
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            scope = (scope_metrics.scope.name, scope_metrics.scope.version)
            for metric in scope_metrics.metrics:
                points = sorted(
                    (
                        tuple(sorted(p.attributes.items())),
                        p.count,
                        round(p.sum, 9),
                        tuple(p.bucket_counts),
                        tuple(p.explicit_bounds),
                        p.min,
                        p.max,
                    )
                    for p in metric.data.data_points
                )
                found.append(
                    (
                        dict(resource_metrics.resource.attributes).get("service.name"),
                        scope,
                        metric.name,
                        metric.unit,
                        metric.description,
                        metric.data.aggregation_temporality,
                        points,
                    )
                )
    return sorted(found, key=lambda m: m[2])


def _traffic(pair: Pair, rng: random.Random, n: int) -> None:
    regions = ["eu", "us", "ap-south"]
    for _ in range(n):
        attributes: dict[str, Any] = {"ml.model.name": "fraud", "region": rng.choice(regions)}
        if rng.random() < 0.1:
            attributes["error.type"] = "builtins.ValueError"
        pair.record(semconv.METRIC_INFERENCE_DURATION, rng.expovariate(50), attributes)
        # Exactly on a bound, 0, large, and negative (which the SDK drops) values too.
        value = rng.choice([0.0, 0.5, 1.0, 1e6, -3.0, rng.random()])
        pair.record(semconv.METRIC_PREDICTION_VALUE, value, attributes)


@pytest.mark.parametrize("temporality", ["cumulative", "delta"])
def test_the_readers_collect_what_the_sdk_histograms_give(temporality: str) -> None:
    preferred = DELTA if temporality == "delta" else None
    pair = Pair(lambda: [InMemoryMetricReader(preferred_temporality=preferred)])
    rng = random.Random(7)
    for round_ in range(4):  # several collections: totals grow (cumulative) or restart (delta)
        _traffic(pair, rng, 500)
        if round_ == 2:
            pair.record(semconv.METRIC_PREDICTION_VALUE, 0.3, {"ml.model.name": "rare"})
        for ours, sdk in pair.collected():
            assert ours == sdk
            assert ours, "nothing collected: the comparison proves nothing"
    # An interval without measurements: no delta point, the same cumulative totals.
    for ours, sdk in pair.collected():
        assert ours == sdk
    pair.shutdown()


def test_several_readers_of_both_temporalities_each_get_their_own_view() -> None:
    pair = Pair(
        lambda: [
            InMemoryMetricReader(),
            InMemoryMetricReader(preferred_temporality=DELTA),
            InMemoryMetricReader(),
        ]
    )
    rng = random.Random(11)
    _traffic(pair, rng, 300)
    first = pair.collected()
    _traffic(pair, rng, 200)
    # Reader 0 collects twice in a row, reader 1 once: each interval is the reader's own.
    assert _comparable(pair.ours_readers[0]) == _comparable(pair.sdk_readers[0])
    second = pair.collected()
    for ours, sdk in first + second:
        assert ours == sdk
    cumulative_count = sum(p[1] for m in second[0][0] for p in m[6] if m[2] == NAMES[0])
    delta_count = sum(p[1] for m in second[1][0] for p in m[6] if m[2] == NAMES[0])
    assert (cumulative_count, delta_count) == (500, 200)
    pair.shutdown()


def test_attribute_sets_past_the_cardinality_limit_fold_into_the_overflow_series() -> None:
    pair = Pair(lambda: [InMemoryMetricReader()])
    for i in range(aggregation.CARDINALITY_LIMIT + 150):
        pair.record(NAMES[0], 0.01, {"ml.model.name": f"m{i}"})
    (ours, sdk), = pair.collected()  # fmt: skip
    assert ours == sdk
    points = [p for m in ours if m[2] == NAMES[0] for p in m[6]]
    assert len(points) == aggregation.CARDINALITY_LIMIT + 1
    assert ((("otel.metric.overflow", True),), 150) in [(p[0], p[1]) for p in points]
    pair.shutdown()


class _Kept(MetricExporter):
    def __init__(self) -> None:
        super().__init__()
        self.exported: list[Any] = []

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


def test_the_final_export_at_shutdown_carries_the_histograms() -> None:
    exporter = _Kept()
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider, meter = _aggregating(reader)
    instruments.histogram(meter, NAMES[0]).record(0.02, {"ml.model.name": "fraud"})
    provider.shutdown()  # nothing was exported before: the interval is an hour
    exported = [m for data in exporter.exported for m in _flatten(data)]
    assert [(m[2], [p[1] for p in m[6]]) for m in exported] == [(NAMES[0], [1])]


def test_a_provider_keeps_its_histograms_and_their_totals_when_asked_again() -> None:
    """An application's provider that configure() reuses: instruments asked for again keep
    counting, as the SDK's do (the same bridge, the same histogram)."""
    pair = Pair(lambda: [InMemoryMetricReader()])
    _traffic(pair, random.Random(3), 100)
    meter = pair.ours.get_meter(semconv.INSTRUMENTATION_NAME, "0.1.0")
    aggregation.attach(meter, pair.ours)
    again = instruments.histogram(meter, NAMES[0])
    assert again is pair.histograms[NAMES[0]][0]
    sdk_again = _sdk_histogram(pair.sdk.get_meter(semconv.INSTRUMENTATION_NAME, "0.1.0"), NAMES[0])
    pair.histograms[NAMES[0]] = (again, sdk_again)
    _traffic(pair, random.Random(4), 100)
    for ours, sdk in pair.collected():
        assert ours == sdk
    pair.shutdown()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_from_zero() -> None:
    pair = Pair(lambda: [InMemoryMetricReader()])
    ours = pair.histograms[NAMES[0]][0]
    for _ in range(50):
        ours.record(0.01, {"ml.model.name": "parent"})
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own points only
        try:
            ours.record(0.02, {"ml.model.name": "child"})
            points = [p for m in _comparable(pair.ours_readers[0]) for p in m[6]]
            os.write(write, repr([(dict(p[0]), p[1]) for p in points]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_points = pipe.read()
    os.waitpid(pid, 0)
    assert child_points == repr([({"ml.model.name": "child"}, 1)])
    parent = [p for m in _comparable(pair.ours_readers[0]) for p in m[6]]
    assert [(dict(p[0]), p[1]) for p in parent] == [({"ml.model.name": "parent"}, 50)]
    pair.shutdown()


def test_no_increment_is_lost_to_threads_or_tasks() -> None:
    reader = InMemoryMetricReader()
    provider, meter = _aggregating(reader)
    histogram = instruments.histogram(meter, NAMES[0])
    threads, per_thread = 4, 200_000
    attributes = [{"ml.model.name": "fraud", "region": r} for r in ("eu", "us")]

    def work() -> None:
        for i in range(per_thread):
            histogram.record(0.001, attributes[i & 1])

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    async def task() -> None:
        for i in range(50_000):
            histogram.record(0.001, attributes[i & 1])
            if i % 1000 == 0:
                await asyncio.sleep(0)

    async def tasks() -> None:
        await asyncio.gather(*(task() for _ in range(4)))

    asyncio.run(tasks())
    points = [p for m in _comparable(reader) for p in m[6]]
    total = threads * per_thread + 4 * 50_000
    assert sum(p[1] for p in points) == total == 1_000_000
    assert [p[1] for p in points] == [total // 2, total // 2]
    provider.shutdown()


def test_collections_racing_the_recording_threads_miss_no_measurement() -> None:
    """A call that finds a series' (or counter's) lock held queues its measurement for the
    holder: delta collections taken all along must between them report every one."""
    reader = InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})
    provider, meter = _aggregating(reader)
    series = instruments.histogram(meter, NAMES[0]).bind({"ml.model.name": "fraud"})
    total = counters.LocalCounter(meter, semconv.METRIC_INPUT_NAN_COUNT).bind({"f": "x"})
    threads, at_most = 4, 2_000_000
    done, enough = threading.Event(), threading.Event()
    histogram_counts: list[int] = []
    counter_values: list[float] = []
    recorded = [0] * threads

    def collect() -> None:
        for metric in _metrics(reader):
            for point in metric.data.data_points:
                if metric.name == NAMES[0]:
                    histogram_counts.append(point.count)
                else:
                    counter_values.append(point.value)

    def work(i: int) -> None:  # until the collector has collected five times meanwhile
        n = 0
        while not enough.is_set() and n < at_most:
            series.record(0.001)
            total.add(1)
            n += 1
            if n % 1000 == 0:
                time.sleep(0)  # (a reader waiting for the lock gets the GIL now and then)
        recorded[i] = n

    def collector() -> None:
        while not done.is_set():
            collect()
            if len(histogram_counts) >= 5:
                enough.set()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    watcher = threading.Thread(target=collector)
    watcher.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    done.set()
    watcher.join()
    collect()
    assert len(histogram_counts) >= 5  # the collector did run while the threads recorded
    assert sum(histogram_counts) == sum(recorded)
    assert counter_values == sorted(counter_values)  # cumulative: never goes back
    assert counter_values[-1] == sum(recorded)
    provider.shutdown()


def test_a_call_that_finds_the_lock_held_does_not_wait_and_its_value_is_collected() -> None:
    reader = InMemoryMetricReader()
    provider, meter = _aggregating(reader)
    series = instruments.histogram(meter, NAMES[0]).bind({"ml.model.name": "fraud"})
    counter = counters.LocalCounter(meter, semconv.METRIC_INPUT_NAN_COUNT)
    total = counter.bind({"f": "x"})

    def record() -> None:
        for _ in range(3):
            series.record(0.25)
            total.add(2)

    with series.lock, counter._lock:  # as a collection (or another thread's call) holds them
        caller = threading.Thread(target=record)
        caller.start()
        caller.join(10)
        assert not caller.is_alive(), "a call waited for the lock"
    values = {
        metric.name: [(p.count, p.sum) if metric.name == NAMES[0] else p.value
                      for p in metric.data.data_points]
        for metric in _metrics(reader)
    }  # fmt: skip
    assert values == {NAMES[0]: [(3, 0.75)], semconv.METRIC_INPUT_NAN_COUNT: [6]}
    provider.shutdown()


def _metrics(reader: InMemoryMetricReader) -> list[Any]:
    data = reader.get_metrics_data()
    if data is None:
        return []
    return [
        metric
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    ]


def test_duration_exemplars_name_sampled_spans_one_per_bucket_and_interval() -> None:
    tracer = TracerProvider().get_tracer("test")
    reader = InMemoryMetricReader()
    provider, meter = _aggregating(reader)
    duration = instruments.histogram(meter, semconv.METRIC_INFERENCE_DURATION)
    spans = {}
    for i in range(300):
        span = tracer.start_span(f"inference {i}")
        spans[span.get_span_context().span_id] = span.get_span_context().trace_id
        duration.record(0.0001 if i % 2 else 0.2, {"m": "x"}, trace.set_span_in_context(span))
        span.end()
    (point,) = _points(reader, semconv.METRIC_INFERENCE_DURATION)
    assert point.count == 300
    assert len(point.exemplars) == 2  # two buckets were hit
    for exemplar in point.exemplars:
        assert spans[exemplar.span_id] == exemplar.trace_id
    duration.record(0.2, {"m": "x"})  # no span: counted, no exemplar
    (point,) = _points(reader, semconv.METRIC_INFERENCE_DURATION)
    assert (point.count, point.exemplars) == (301, [])  # a new interval: its own exemplars
    provider.shutdown()


def _points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
        for p in m.data.data_points
    ]
