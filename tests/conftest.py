"""Shared fixtures: an inferwatch configured with in-memory span and metric capture."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import inferwatch as iw
from inferwatch import errors as _internal
from inferwatch.delayed_labels import configure_feedback

pytest_plugins = ["tests._otlp"]


class Captured:
    """What inferwatch exported during one test, through the real OTel SDK pipeline."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.log_exporter = InMemoryLogRecordExporter()

    def logs(self) -> list[ReadableLogRecord]:
        return list(self.log_exporter.get_finished_logs())

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        spans = self.exporter.get_finished_spans()
        return [s for s in spans if name is None or s.name == name]

    def span(self, name: str) -> ReadableSpan:
        (found,) = self.spans(name)
        return found

    def points(self, metric: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, data point) of every point of `metric` collected so far."""
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for m in scope.metrics:
                    if m.name == metric:
                        found += [(dict(p.attributes or {}), p) for p in m.data.data_points]
        return found


@pytest.fixture(autouse=True)
def _store_in_tmp(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an endpoint inferwatch writes to the local store: never into the repository."""
    monkeypatch.setenv("INFERWATCH_STORE", str(tmp_path / "store"))


@pytest.fixture
def telemetry(request: pytest.FixtureRequest) -> Iterator[Captured]:
    """inferwatch configured in strict mode, exporting to memory; shut down afterwards."""
    captured = Captured()
    options = getattr(request, "param", {})
    iw.configure(
        service_name="test-service",
        span_processors=[SimpleSpanProcessor(captured.exporter)],
        metric_readers=[captured.reader],
        log_processors=[SimpleLogRecordProcessor(captured.log_exporter)],
        metric_tags=options.get("metric_tags", ["region"]),
        strict=options.get("strict", True),
    )
    _internal.reset_internal_errors()
    configure_feedback()  # no prediction or ranked list remembered by an earlier test
    yield captured
    assert iw.current_request_id() is None, "a request scope leaked out of the test"
    iw.shutdown()
    _internal.set_strict(False)
    structlog.reset_defaults()
