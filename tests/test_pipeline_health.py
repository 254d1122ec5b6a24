"""When the backend is away, drops and export failures are counted as metrics, nothing raises."""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Sum

import inferwatch as iw
from inferwatch.semconv import PIPELINE_METRICS, SDK_SPANS_EXPORTED, SDK_SPANS_PROCESSED
from tests._otlp import free_port


def _points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], Any]]:
    data = reader.get_metrics_data()
    return [
        (dict(p.attributes or {}), p)
        for r in (data.resource_metrics if data else ())
        for s in r.scope_metrics
        for m in s.metrics
        if m.name == name
        for p in m.data.data_points
    ]


def _metrics(reader: InMemoryMetricReader) -> dict[str, tuple[str, str]]:
    """(kind, unit) of every metric collected, by name."""
    data = reader.get_metrics_data()
    found = {}
    for metric in (m for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics):
        monotonic = isinstance(metric.data, Sum) and metric.data.is_monotonic
        found[metric.name] = ("counter" if monotonic else "other", metric.unit or "")
    return found


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_queue_drops_and_export_failures_are_counted(protocol: str) -> None:
    reader = InMemoryMetricReader()
    iw.configure(
        service_name="health",
        endpoint=f"http://127.0.0.1:{free_port()}",
        protocol=protocol,
        metric_readers=[reader],
        schedule_delay_ms=20,
        export_timeout_ms=300,
        max_queue_size=4,
        max_export_batch_size=2,
    )
    try:

        @iw.monitor(model="m")
        def predict(x: float) -> float:
            return x

        for _ in range(40):
            assert predict(1.0) == 1.0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            processed = _points(reader, "otel.sdk.processor.span.processed")
            dropped = sum(p.value for a, p in processed if a.get("error.type") == "queue_full")
            failed = sum(
                p.value
                for a, p in _points(reader, "otel.sdk.exporter.span.exported")
                if a.get("error.type")
            )
            if dropped and failed:
                break
            time.sleep(0.05)
        assert dropped > 0, "a full queue drops spans, and says how many"
        assert failed > 0, "failed exports are counted with their error type"
        # what alert policies may name without declaring it: kind and unit as the SDK makes them
        exported = _metrics(reader)
        assert {SDK_SPANS_PROCESSED, SDK_SPANS_EXPORTED} <= exported.keys()
        for name, (kind, unit) in exported.items():
            if name in PIPELINE_METRICS:
                assert PIPELINE_METRICS[name] == (kind, unit), name
    finally:
        iw.shutdown(timeout_ms=1000)
