"""Self-test of tests/_otlp.py: real OTel SDK exporters -> (rotel) -> in-process receiver."""

from __future__ import annotations

import gzip
import socket
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourceProto
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from tests._otlp import OtlpReceiver

# Loads the fixtures (and lets pytest assert-rewrite the module, so no top-level import of it
# here). Harmless once tests/conftest.py declares the same plugin.
pytest_plugins = ["tests._otlp"]

SPAN_ATTRIBUTES = {
    "ml.model.name": "churn",
    "ml.input.batch_size": 32,
    "ml.prediction.mean": 0.25,
    "ml.cached": False,
    "ml.labels": ["stay", "leave"],
    "ml.input.shape": [32, 8],
}


@dataclass
class Route:
    protocol: str  # "grpc" or "http": what the SDK exporters speak
    endpoint: str  # gRPC "host:port" or HTTP base URL
    via_rotel: bool


@pytest.fixture(params=["direct-grpc", "direct-http", "rotel-grpc", "rotel-http"])
def route(request: pytest.FixtureRequest, otlp_receiver: OtlpReceiver) -> Route:
    target, protocol = request.param.split("-")
    ends: Any = otlp_receiver
    if target == "rotel":
        ends = request.getfixturevalue("rotel_collector")
    endpoint = ends.grpc_endpoint if protocol == "grpc" else ends.http_endpoint
    return Route(protocol, endpoint, target == "rotel")


def emit_telemetry(route: Route, run_id: str) -> None:
    """One span tree, one counter (two adds), one histogram (three records), one log."""
    resource = Resource.create({"service.name": "harness-selftest", "test.run_id": run_id})
    if route.protocol == "grpc":
        span_exp: Any = GrpcSpanExporter(endpoint=route.endpoint, insecure=True)
        metric_exp: Any = GrpcMetricExporter(endpoint=route.endpoint, insecure=True)
        log_exp: Any = GrpcLogExporter(endpoint=route.endpoint, insecure=True)
    else:
        gz = Compression.Gzip  # exercises the receiver's (and rotel's) gzip handling
        span_exp = HttpSpanExporter(endpoint=f"{route.endpoint}/v1/traces", compression=gz)
        metric_exp = HttpMetricExporter(endpoint=f"{route.endpoint}/v1/metrics", compression=gz)
        log_exp = HttpLogExporter(endpoint=f"{route.endpoint}/v1/logs", compression=gz)

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exp))
    reader = PeriodicExportingMetricReader(metric_exp, export_interval_millis=600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exp))

    tracer = tracer_provider.get_tracer("harness")
    meter = meter_provider.get_meter("harness")
    logger = logger_provider.get_logger("harness")
    counter = meter.create_counter("harness.predictions", unit="{prediction}")
    latency = meter.create_histogram(
        "harness.latency", unit="ms", explicit_bucket_boundaries_advisory=[10.0, 100.0]
    )
    with (
        tracer.start_as_current_span("request"),
        tracer.start_as_current_span(
            "inference churn", kind=SpanKind.SERVER, attributes=SPAN_ATTRIBUTES
        ) as span,
    ):
        span.add_event("scored", {"ml.prediction.class": "leave"})
        span.set_status(Status(StatusCode.ERROR, "model drifted"))
        counter.add(3, {"ml.model.name": "churn"})
        counter.add(4, {"ml.model.name": "churn"})
        for value in (5.0, 50.0, 500.0):
            latency.record(value, {"ml.model.name": "churn"})
        logger.emit(
            body={"event": "prediction", "scores": [0.25, 0.75]},
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            attributes={"ml.request.id": "req-1"},
        )
    # shutdown() flushes: spans/logs were exported synchronously, metrics are collected once here.
    tracer_provider.shutdown()
    meter_provider.shutdown()
    logger_provider.shutdown()


def test_signals_round_trip(route: Route, otlp_receiver: OtlpReceiver) -> None:
    run_id = uuid.uuid4().hex
    emit_telemetry(route, run_id)

    def mine(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [i for i in items if i["resource"].get("test.run_id") == run_id]

    def complete(r: OtlpReceiver) -> Any:
        spans, metrics, logs = mine(r.spans()), mine(r.metrics()), mine(r.logs())
        return len(spans) == 2 and len(metrics) == 2 and len(logs) == 1 and (spans, metrics, logs)

    spans, metrics, logs = otlp_receiver.wait_for(complete, timeout=10)

    by_name = {s["name"]: s for s in spans}
    parent, child = by_name["request"], by_name["inference churn"]
    assert child["attributes"] == SPAN_ATTRIBUTES
    assert child["resource"]["service.name"] == "harness-selftest"
    assert child["kind"] == "SERVER" and parent["kind"] == "INTERNAL"
    assert (child["status_code"], child["status_message"]) == ("ERROR", "model drifted")
    assert parent["status_code"] == "UNSET"
    assert child["events"] == [{"name": "scored", "attributes": {"ml.prediction.class": "leave"}}]
    assert len(child["trace_id"]) == 32 and len(child["span_id"]) == 16
    assert child["trace_id"] == parent["trace_id"]
    assert child["parent_span_id"] == parent["span_id"] and parent["parent_span_id"] is None
    assert parent["start_ns"] <= child["start_ns"] <= child["end_ns"] <= parent["end_ns"]

    (log,) = logs
    assert log["body"] == {"event": "prediction", "scores": [0.25, 0.75]}
    assert (log["severity_text"], log["severity_number"]) == ("WARN", SeverityNumber.WARN.value)
    assert log["attributes"] == {"ml.request.id": "req-1"}
    assert (log["trace_id"], log["span_id"]) == (child["trace_id"], child["span_id"])

    points = {m["name"]: m for m in metrics}
    counter, hist = points["harness.predictions"], points["harness.latency"]
    assert (counter["type"], counter["value"], counter["unit"]) == ("sum", 7, "{prediction}")
    assert counter["is_monotonic"] and counter["temporality"] == "CUMULATIVE"
    assert counter["attributes"] == {"ml.model.name": "churn"}
    assert (hist["type"], hist["unit"], hist["count"], hist["sum"]) == ("histogram", "ms", 3, 555)
    assert hist["explicit_bounds"] == [10.0, 100.0] and hist["bucket_counts"] == [1, 1, 1]
    assert (hist["min"], hist["max"]) == (5.0, 500.0)

    # Direct routes arrive over the SDK's protocol; rotel always forwards over gRPC.
    expected = "grpc" if route.via_rotel else route.protocol
    assert otlp_receiver.requests("traces", expected)


def _raw_logs_request(run_id: str) -> logs_service_pb2.ExportLogsServiceRequest:
    body = AnyValue(
        kvlist_value=KeyValueList(
            values=[
                KeyValue(key="s", value=AnyValue(string_value="text")),
                KeyValue(key="b", value=AnyValue(bool_value=True)),
                KeyValue(key="i", value=AnyValue(int_value=-7)),
                KeyValue(key="d", value=AnyValue(double_value=1.5)),
                KeyValue(key="raw", value=AnyValue(bytes_value=b"\x00\xff")),
                KeyValue(key="empty", value=AnyValue()),
                KeyValue(
                    key="arr",
                    value=AnyValue(
                        array_value=ArrayValue(
                            values=[AnyValue(int_value=1), AnyValue(string_value="two")]
                        )
                    ),
                ),
            ]
        )
    )
    record = LogRecord(body=body, severity_text="INFO", severity_number=9)
    resource = ResourceProto(
        attributes=[KeyValue(key="test.run_id", value=AnyValue(string_value=run_id))]
    )
    scope_logs = ScopeLogs(scope=InstrumentationScope(name="raw"), log_records=[record])
    return logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[scope_logs])]
    )


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_any_value_decoding(transport: str, otlp_receiver: OtlpReceiver) -> None:
    run_id = uuid.uuid4().hex
    request = _raw_logs_request(run_id)
    if transport == "grpc":
        with grpc.insecure_channel(otlp_receiver.grpc_endpoint) as channel:
            logs_service_pb2_grpc.LogsServiceStub(channel).Export(request, timeout=5)
    else:
        http_request = urllib.request.Request(
            f"{otlp_receiver.http_endpoint}/v1/logs",
            data=gzip.compress(request.SerializeToString()),
            headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
        )
        with urllib.request.urlopen(http_request, timeout=5) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/x-protobuf"
            logs_service_pb2.ExportLogsServiceResponse.FromString(response.read())

    (log,) = [r for r in otlp_receiver.logs() if r["resource"] == {"test.run_id": run_id}]
    assert log["scope"] == "raw" and log["severity_number"] == 9
    assert log["body"] == {
        "s": "text",
        "b": True,
        "i": -7,
        "d": 1.5,
        "raw": b"\x00\xff",
        "empty": None,
        "arr": [1, "two"],
    }
    assert log["trace_id"] is None and log["span_id"] is None
    assert otlp_receiver.requests("logs", transport)


def test_http_rejects_unknown_path(otlp_receiver: OtlpReceiver) -> None:
    request = urllib.request.Request(f"{otlp_receiver.http_endpoint}/v1/profiles", data=b"")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=5)
    assert excinfo.value.code == 404
    assert otlp_receiver.requests(transport="http") == []


def test_wait_for_and_clear() -> None:
    from tests._otlp import OtlpReceiver

    receiver = OtlpReceiver()  # not started: feed it directly, isolated from the shared one
    receiver._record("logs", "grpc", _raw_logs_request("x"))
    with pytest.raises(AssertionError, match=r"requests=\{'logs/grpc': 1\}.*log bodies=\[\"\{'s'"):
        receiver.wait_for(lambda r: r.spans(), timeout=0.1)
    assert receiver.wait_for(lambda r: len(r.logs())) == 1
    receiver.clear()
    assert receiver.requests() == [] and receiver.logs() == []


def _accepts(endpoint: str) -> bool:
    host, port = endpoint.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_standalone_lifecycle() -> None:
    from tests._otlp import OtlpReceiver, RotelCollector

    with OtlpReceiver() as receiver, RotelCollector(receiver.grpc_endpoint) as collector:
        endpoints = [receiver.grpc_endpoint, receiver.http_endpoint]
        endpoints += [collector.grpc_endpoint, collector.http_endpoint]
        assert collector.grpc_url == f"http://{collector.grpc_endpoint}"
        assert all(_accepts(e) for e in endpoints)
        proc = collector._proc
        assert proc is not None and proc.poll() is None
    assert proc.poll() is not None
    assert not any(_accepts(e) for e in endpoints)


def test_collector_startup_failure_reports_log() -> None:
    from tests._otlp import RotelCollector

    collector = RotelCollector("127.0.0.1:1", extra_args=["--logs-batch-timeout", "soon"])
    with pytest.raises(RuntimeError, match="exited during startup") as excinfo:
        collector.start()
    assert "invalid value 'soon'" in str(excinfo.value)  # rotel's own error, from its log
    assert collector._proc is None and collector._tmpdir is None
