"""Faults in the telemetry path: the collector down, killed, slow or refusing, its name unknown.

For every fault, the application sees nothing: each instrumented call returns what the function
returned (or raises what it raised), no call waits on an export, and the queue between them
stays within its bound. Every span is accounted for: either the backend received it, or the
SDK's own metrics counted it as dropped (``otel.sdk.processor.span.processed`` with
``error.type=queue_full``) or as failed (``otel.sdk.exporter.span.exported`` with an
``error.type``). Those counts reach the backend as metrics once it is back, so an operator sees
how much telemetry an outage cost.

The collector is real: the rotel-agent process (killed with SIGKILL and restarted on the same
ports), or an OTLP receiver on 127.0.0.1 that the test holds or makes refuse. No test here
measures time: a call that waited on an export would hang against a held receiver, which the
pytest-timeout guard turns into a failure. Latency figures are in benchmarks/bench_faults.py.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import inferwatch as iw
from inferwatch import errors as _internal
from tests._otlp import (
    FaultyReceiver,
    OtlpReceiver,
    RotelCollector,
    free_port,
)

PROTOCOLS = ["grpc", "http/protobuf"]
PROCESSED = "otel.sdk.processor.span.processed"
EXPORTED = "otel.sdk.exporter.span.exported"
QUEUE_SIZE = "otel.sdk.processor.span.queue.size"
QUEUE = 64
BATCH = 16


class ModelError(Exception):
    """What the model raises on a bad row; it must reach the caller untouched."""


RESULT = object()


@iw.monitor(model="faults")
def predict(row: list[float], fail: ModelError | None = None) -> object:
    if fail is not None:
        raise fail
    return RESULT


def _calls(count: int, prefix: str) -> None:
    """``count`` requests as an application makes them; every tenth one fails in the model."""
    for i in range(count):
        failure = ModelError(f"row {i}") if i % 10 == 9 else None
        with iw.context(request_id=f"{prefix}-{i}", region="eu"):
            try:
                result = predict([1.0, float(i)], fail=failure)
            except ModelError as raised:
                assert raised is failure
            else:
                assert failure is None and result is RESULT


@pytest.fixture(autouse=True)
def _session(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fresh internal-error counts, quiet exporters (their error logs are expected here)."""
    caplog.set_level(logging.CRITICAL)
    _internal.reset_internal_errors()
    try:
        yield
        assert iw.internal_errors() == {}, "a fault of the backend is no bug of inferwatch"
    finally:
        iw.shutdown(timeout_ms=2_000)


def _configure(endpoint: str, protocol: str, **overrides: Any) -> str:
    service = f"faults-{uuid.uuid4().hex[:12]}"
    options: dict[str, Any] = {
        "service_name": service,
        "endpoint": endpoint,
        "protocol": protocol,
        "schedule_delay_ms": 50,
        "export_timeout_ms": 500,
        "max_queue_size": QUEUE,
        "max_export_batch_size": BATCH,
        "metric_export_interval_ms": 200,
    }
    iw.configure(**{**options, **overrides})
    return service


def _endpoint(receiver: OtlpReceiver | RotelCollector, protocol: str) -> str:
    if isinstance(receiver, RotelCollector):
        return receiver.grpc_url if protocol == "grpc" else receiver.http_endpoint
    return f"http://{receiver.grpc_endpoint}" if protocol == "grpc" else receiver.http_endpoint


# -- accounting ----------------------------------------------------------------------------------
@dataclass
class Accounting:
    """Where the spans of one service went, as the backend sees it."""

    received: int
    dropped: int  # the queue was full
    failed: int  # an export of them failed
    failure_attributes: list[dict[str, Any]]

    @property
    def total(self) -> int:
        return self.received + self.dropped + self.failed


def _cumulative(points: list[dict[str, Any]], name: str) -> list[tuple[dict[str, Any], float]]:
    """The latest value of each series of a cumulative counter (they only grow)."""
    latest: dict[tuple[tuple[str, Any], ...], float] = {}
    for point in points:
        if point["name"] == name:
            key = tuple(sorted(point["attributes"].items()))
            latest[key] = max(latest.get(key, 0), point["value"])
    return [(dict(key), value) for key, value in latest.items()]


def _accounting(receiver: OtlpReceiver, service: str) -> Accounting:
    spans = [s for s in receiver.spans() if s["resource"].get("service.name") == service]
    points = [p for p in receiver.metrics() if p["resource"].get("service.name") == service]
    processed = _cumulative(points, PROCESSED)
    exported = _cumulative(points, EXPORTED)
    return Accounting(
        received=len(spans),
        dropped=int(sum(v for a, v in processed if a.get("error.type") == "queue_full")),
        failed=int(sum(v for a, v in exported if "error.type" in a)),
        failure_attributes=[a for a, _ in exported if "error.type" in a],
    )


def _all_accounted_for(receiver: OtlpReceiver, service: str, calls: int) -> Accounting:
    """Wait until received + dropped + failed == calls at the backend, and return the counts."""

    def done(r: OtlpReceiver) -> Accounting | None:
        counts = _accounting(r, service)
        return counts if counts.total == calls else None

    try:
        return receiver.wait_for(done, timeout=20)
    except AssertionError as exc:
        seen = _accounting(receiver, service)
        raise AssertionError(f"{calls} calls, the backend accounts for {seen}") from exc


def _local(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], Any]]:
    data = reader.get_metrics_data()
    return [
        (dict(p.attributes or {}), p.value)
        for r in (data.resource_metrics if data else ())
        for s in r.scope_metrics
        for m in s.metrics
        if m.name == name
        for p in m.data.data_points
    ]


# -- the collector is down when the service starts, and comes up later -----------------------------
@pytest.mark.timeout(90)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_collector_down_at_start_counts_what_was_lost_once_it_is_up(
    protocol: str, otlp_receiver: OtlpReceiver
) -> None:
    grpc_port, http_port = free_port(), free_port()
    collector = RotelCollector(
        otlp_receiver.grpc_endpoint, grpc_port=grpc_port, http_port=http_port
    )  # not started: nothing listens on its ports yet
    service = _configure(_endpoint(collector, protocol), protocol, max_queue_size=256)

    _calls(200, "down")
    time.sleep(0.3)  # let the exporter try, and fail, a few times
    with collector:
        _calls(100, "up")
        counts = _all_accounted_for(otlp_receiver, service, 300)
        assert counts.failed > 0, "the exports that failed while it was down are counted"
        assert counts.received > 0, counts
        iw.shutdown()


# -- the collector is killed mid-traffic and restarted on the same port ---------------------------
@pytest.mark.timeout(90)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_collector_killed_mid_traffic_and_restarted(
    protocol: str, otlp_receiver: OtlpReceiver
) -> None:
    with RotelCollector(otlp_receiver.grpc_endpoint) as collector:
        service = _configure(_endpoint(collector, protocol), protocol, max_queue_size=256)
        _calls(100, "before")
        before = _all_accounted_for(otlp_receiver, service, 100)

        collector.kill()
        _calls(200, "killed")
        time.sleep(0.3)
        assert _accounting(otlp_receiver, service).received == before.received  # it is gone

        collector.restart()
        _calls(100, "restarted")
        counts = _all_accounted_for(otlp_receiver, service, 400)
        assert counts.failed > 0 and counts.received > before.received, counts
        request_ids = {
            s["attributes"]["ml.request.id"]
            for s in otlp_receiver.spans()
            if s["resource"].get("service.name") == service
        }
        assert any(r.startswith("restarted-") for r in request_ids), "it exports again"
        iw.shutdown()


# -- the collector accepts but does not answer: the caller never waits ----------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_slow_collector_never_makes_the_caller_wait_and_the_queue_stays_bounded(
    protocol: str,
) -> None:
    reader = InMemoryMetricReader()
    with FaultyReceiver() as receiver:
        receiver.hold()
        service = _configure(
            _endpoint(receiver, protocol), protocol,
            metric_readers=[reader],
            schedule_delay_ms=60_000,  # exports start when a batch is full, not on a timer
            export_timeout_ms=30_000,  # longer than the hold: nothing times out, nothing retries
        )  # fmt: skip
        _calls(BATCH, "first")  # a full batch: the exporter sends it, and the receiver holds it
        _wait(lambda: receiver.waiting >= 1)

        _calls(500, "held")  # all return while that export is still unanswered
        assert receiver.waiting >= 1, "the export is still held: no call waited for it"
        (queued,) = _local(reader, QUEUE_SIZE)
        assert queued[1] == QUEUE, "the queue is full, and no larger than its bound"
        dropped = sum(v for a, v in _local(reader, PROCESSED) if a.get("error.type"))
        assert dropped > 0

        receiver.release()
        counts = _all_accounted_for(receiver, service, BATCH + 500)
        assert counts.failed == 0, "a slow answer is no failure"
        assert counts.dropped == dropped, "what the queue dropped, the backend is told"
        assert counts.received == BATCH + 500 - dropped
        iw.shutdown()


def _wait(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


# -- the collector refuses: 413 (too large), 429 (slow down), 503 (unavailable) --------------------
REFUSALS = [("http/protobuf", 413), ("http/protobuf", 429), ("http/protobuf", 503)]
REFUSALS += [("grpc", 429), ("grpc", 503)]  # RESOURCE_EXHAUSTED and UNAVAILABLE


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("protocol", "status"), REFUSALS)
def test_refused_exports_are_counted_and_reported_once_accepted_again(
    protocol: str, status: int
) -> None:
    with FaultyReceiver() as receiver:
        receiver.refuse(status)
        service = _configure(_endpoint(receiver, protocol), protocol)
        _calls(200, "refused")
        _wait(lambda: receiver.refused >= 2)
        time.sleep(0.3)  # the last batches are refused too

        receiver.accept()
        _calls(50, "accepted")
        counts = _all_accounted_for(receiver, service, 250)
        assert counts.failed > 0 and counts.received > 0, counts
        if protocol == "http/protobuf":  # named by the status, as OTel's HTTP conventions do
            kinds = {a["error.type"] for a in counts.failure_attributes}
            assert kinds == {str(status)}, counts.failure_attributes
        iw.shutdown()


# -- the collector's name does not resolve ---------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unresolvable_collector_name_counts_every_span_as_lost(protocol: str) -> None:
    reader = InMemoryMetricReader()
    port = 4317 if protocol == "grpc" else 4318
    endpoint = f"http://otel-collector.invalid:{port}"  # .invalid never resolves (RFC 6761)
    # One batch holds the whole queue: few exports, whatever the resolver's own timeouts.
    _configure(endpoint, protocol, metric_readers=[reader], max_export_batch_size=QUEUE)
    _calls(200, "nowhere")

    def lost() -> tuple[int, int, int]:
        processed = _local(reader, PROCESSED)
        exported = _local(reader, EXPORTED)
        dropped = sum(v for a, v in processed if a.get("error.type") == "queue_full")
        failed = sum(v for a, v in exported if "error.type" in a)
        succeeded = sum(v for a, v in exported if "error.type" not in a)
        return dropped, failed, succeeded

    _wait(lambda: sum(lost()) == 200, timeout=45)
    dropped, failed, succeeded = lost()
    assert succeeded == 0 and failed > 0 and dropped > 0, (dropped, failed)
