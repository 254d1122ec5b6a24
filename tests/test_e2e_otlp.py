"""End to end: inferwatch -> OTLP (gRPC or HTTP/protobuf) -> [rotel collector] -> OTLP receiver.

Real components only, all on 127.0.0.1: the SDK's own OTLP exporters (as `iw.configure` builds
them), the rotel-agent collector subprocess and the in-process receiver of ``tests/_otlp.py``,
which decodes what arrives. The receiver is shared by the whole session and rotel may deliver
late, so every test matches on its own unique ``service.name``.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from opentelemetry import metrics, trace

import inferwatch as iw
from inferwatch import errors as _internal
from inferwatch import semconv
from tests._otlp import free_port

if TYPE_CHECKING:
    from tests._otlp import OtlpReceiver

PROTOCOLS = ["grpc", "http/protobuf"]
FEATURES = ["amount", "age", "country_risk", "velocity"]
NAN = float("nan")
# 2 rows x 4 features, 3 NaNs in 2 rows: amount 1, age 2.
X = np.array([[1.0, NAN, 3.0, 4.0], [NAN, NAN, 0.5, 2.0]], dtype=np.float64)
CLEAN = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float64)
PREDICTION = np.array([0.25, 0.75])
BASE_METRIC_ATTRS = {"ml.model.name": "fraud", "ml.model.version": "3.1", "region": "eu"}

# Obtained at import, before any `iw.configure`: the OTel API hands out a proxy that must follow
# the global provider inferwatch installs, and every later re-configuration of it.
OTHER_TRACER = trace.get_tracer("other")


# Decorated at import, before any configuration, as an application would.
@iw.monitor(model="fraud", version="3.1", features=FEATURES)
def predict(x: np.ndarray, fail: BaseException | None = None) -> np.ndarray:
    if fail is not None:
        raise fail
    return PREDICTION


# -- helpers -----------------------------------------------------------------------------------
@dataclass
class Route:
    via: str  # "rotel" or "direct"
    protocol: str  # what the inferwatch exporters speak
    endpoint: str  # what iw.configure gets

    @property
    def arrives_over(self) -> str:
        """The receiver transport: rotel always forwards over gRPC."""
        return "grpc" if self.via == "rotel" or self.protocol == "grpc" else "http"


def _route(request: pytest.FixtureRequest, via: str, protocol: str) -> Route:
    receiver = request.getfixturevalue("otlp_receiver")  # cleared for this test
    if via == "rotel":
        collector = request.getfixturevalue("rotel_collector")
        endpoint = collector.grpc_url if protocol == "grpc" else collector.http_endpoint
    else:
        grpc_url = f"http://{receiver.grpc_endpoint}"
        endpoint = grpc_url if protocol == "grpc" else receiver.http_endpoint
    return Route(via, protocol, endpoint)


def _unique() -> str:
    return uuid.uuid4().hex[:12]


def _mine(items: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    return [i for i in items if i["resource"].get("service.name") == service]


def _requests_from(receiver: OtlpReceiver, signal: str, transport: str, service: str) -> list[Any]:
    """Raw export requests of `signal` that came over `transport` ("grpc"/"http") for `service`."""
    from tests._otlp import decode_attributes  # loaded (and assert-rewritten) via conftest

    def services(request: Any) -> set[Any]:
        per_resource = request.resource_spans if signal == "traces" else request.resource_metrics
        return {decode_attributes(r.resource.attributes).get("service.name") for r in per_resource}

    return [r for r in receiver.requests(signal, transport) if service in services(r)]


@pytest.fixture
def iw_session() -> Iterator[None]:
    """Fresh internal-error counts; inferwatch always shut down afterwards, pass or fail."""
    _internal.reset_internal_errors()
    try:
        yield
    finally:
        iw.shutdown(timeout_ms=5_000)


def _configure(route: Route, service: str, **overrides: Any) -> None:
    options: dict[str, Any] = {
        "service_name": service,
        "service_version": "1.2.3",
        "environment": "e2e",
        "endpoint": route.endpoint,
        "protocol": route.protocol,
        "metric_tags": ["region"],
        "schedule_delay_ms": 50,
        "metric_export_interval_ms": 600_000,  # metrics leave only on shutdown's final collect
    }
    iw.configure(**{**options, **overrides})


# -- 1 + 2: the whole flow, through rotel and straight to the receiver --------------------------
ROUTES = [("rotel", p) for p in PROTOCOLS] + [("direct", p) for p in PROTOCOLS]


@pytest.fixture(params=ROUTES, ids=[f"{v}-{p}" for v, p in ROUTES])
def route(request: pytest.FixtureRequest) -> Route:
    via, protocol = request.param
    return _route(request, via, protocol)


def test_inference_flow_round_trip(
    route: Route, otlp_receiver: OtlpReceiver, iw_session: None
) -> None:
    run = _unique()
    service = f"e2e-flow-{run}"
    ok_id, err_id = f"r-{run}-ok", f"r-{run}-err"
    _configure(route, service)

    with iw.context(request_id=ok_id, region="eu", cohort="new"):
        assert predict(X) is PREDICTION
    error = ValueError("amount out of range")
    with (
        iw.context(request_id=err_id, region="eu", cohort="new"),
        pytest.raises(ValueError) as excinfo,
    ):
        predict(CLEAN, fail=error)
    assert excinfo.value is error  # the very same object, not a copy or a wrapper

    iw.shutdown()  # flushes the span batch and collects + exports metrics once
    assert iw.internal_errors() == {}

    expected_metrics = {"ml.inference.duration", "ml.input.nan_count", "ml.prediction.value"}

    def arrived(r: OtlpReceiver) -> Any:
        spans, points = _mine(r.spans(), service), _mine(r.metrics(), service)
        durations = [p for p in points if p["name"] == "ml.inference.duration"]
        complete = (
            len(spans) == 2
            and expected_metrics <= {p["name"] for p in points}
            and len(durations) == 2
        )
        return complete and (spans, points)

    spans, points = otlp_receiver.wait_for(arrived, timeout=10)

    # -- spans ------------------------------------------------------------------------------
    by_id = {s["attributes"].get("ml.request.id"): s for s in spans}
    assert set(by_id) == {ok_id, err_id}
    ok, err = by_id[ok_id], by_id[err_id]
    for span in (ok, err):
        assert span["name"] == "inference fraud"
        assert span["scope"] == semconv.INSTRUMENTATION_NAME
        assert span["kind"] == "INTERNAL"
        assert span["parent_span_id"] is None
        assert span["start_ns"] <= span["end_ns"]
        assert span["resource"]["service.name"] == service
        assert span["resource"]["service.version"] == "1.2.3"
        assert span["resource"]["deployment.environment.name"] == "e2e"
    assert ok["trace_id"] != err["trace_id"]

    expected_ok = {
        "ml.model.name": "fraud",
        "ml.model.version": "3.1",
        "ml.request.id": ok_id,
        "region": "eu",
        "cohort": "new",
        "ml.input.batch_size": 2,
        "ml.input.nan_count": 3,
        "ml.input.nan_rows": 2,
        "ml.input.length": 4.0,
        "ml.input.length.max": 4,
        "ml.prediction.count": 2,
        "ml.prediction.mean": 0.5,
        "ml.prediction.min": 0.25,
        "ml.prediction.max": 0.75,
    }
    assert {k: ok["attributes"].get(k) for k in expected_ok} == expected_ok
    assert ok["status_code"] == "UNSET" and ok["events"] == []
    assert "error.type" not in ok["attributes"]

    assert err["status_code"] == "ERROR"
    assert err["status_message"] == "ValueError: amount out of range"
    expected_err = {
        "ml.model.name": "fraud",
        "ml.model.version": "3.1",
        "ml.request.id": err_id,
        "region": "eu",
        "cohort": "new",
        "error.type": "ValueError",
        "ml.input.batch_size": 1,
        "ml.input.nan_count": 0,
    }
    assert {k: err["attributes"].get(k) for k in expected_err} == expected_err
    assert not any(k.startswith("ml.prediction.") for k in err["attributes"])
    (event,) = err["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "ValueError"
    assert event["attributes"]["exception.message"] == "amount out of range"
    assert "ValueError: amount out of range" in event["attributes"]["exception.stacktrace"]

    # -- metrics ----------------------------------------------------------------------------
    # The SDK's own pipeline-health metrics (otel.sdk.*) come under their own scope.
    sdk_health = [p for p in points if p["scope"] != semconv.INSTRUMENTATION_NAME]
    assert all(p["name"].startswith("otel.sdk.") for p in sdk_health)
    points = [p for p in points if p["scope"] == semconv.INSTRUMENTATION_NAME]
    for point in points:
        assert point["resource"] == ok["resource"]
        # Unbounded request ids never go on metrics; cohort is a tag but not a metric tag.
        assert "ml.request.id" not in point["attributes"], point
        assert "cohort" not in point["attributes"], point
    assert semconv.METRIC_INTERNAL_ERRORS not in {p["name"] for p in points}

    def named(name: str) -> list[dict[str, Any]]:
        return [p for p in points if p["name"] == name]

    durations = {p["attributes"].get("error.type"): p for p in named("ml.inference.duration")}
    assert set(durations) == {None, "ValueError"}
    ok_duration, err_duration = durations[None], durations["ValueError"]
    assert ok_duration["attributes"] == BASE_METRIC_ATTRS
    assert err_duration["attributes"] == {**BASE_METRIC_ATTRS, "error.type": "ValueError"}
    for point in (ok_duration, err_duration):
        assert (point["type"], point["unit"], point["temporality"]) == (
            "histogram",
            "s",
            "CUMULATIVE",
        )
        assert point["count"] == 1 and 0 < point["sum"] < 5
        assert point["explicit_bounds"] == list(semconv.DURATION_BUCKETS)

    nan_points = named("ml.input.nan_count")
    assert all(p["type"] == "sum" and p["is_monotonic"] for p in nan_points)
    nan_by_feature = {p["attributes"].get("ml.feature"): p for p in nan_points}
    assert set(nan_by_feature) == {"amount", "age"}  # only features that had a NaN
    for feature, count in {"amount": 1, "age": 2}.items():
        point = nan_by_feature[feature]
        assert point["attributes"] == {**BASE_METRIC_ATTRS, "ml.feature": feature}
        assert point["value"] == count

    (prediction,) = named("ml.prediction.value")
    assert prediction["type"] == "histogram"
    assert prediction["attributes"] == BASE_METRIC_ATTRS
    assert (prediction["count"], prediction["sum"]) == (2, 1.0)
    assert (prediction["min"], prediction["max"]) == (0.25, 0.75)
    assert prediction["explicit_bounds"] == list(semconv.PREDICTION_BUCKETS)

    # Float feature matrices have a fixed width: their length is a span attribute, not a metric.
    assert named("ml.input.length") == []

    # What the inferwatch exporters spoke (direct) or what rotel forwarded with (always gRPC).
    assert _requests_from(otlp_receiver, "traces", route.arrives_over, service)
    assert _requests_from(otlp_receiver, "metrics", route.arrives_over, service)
    if route.via == "direct":
        other = "http" if route.arrives_over == "grpc" else "grpc"
        assert not _requests_from(otlp_receiver, "traces", other, service)


# -- 3: the endpoint is down: the hot path neither blocks nor raises ---------------------------
class _HungEndpoint:
    """A TCP port that completes handshakes (kernel backlog) but never reads or answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("failure", ["closed", "hung"])
def test_endpoint_down_never_blocks_or_raises(
    protocol: str, failure: str, iw_session: None, caplog: pytest.LogCaptureFixture
) -> None:
    hung = _HungEndpoint() if failure == "hung" else None
    port = hung.port if hung is not None else free_port()
    route = Route("nowhere", protocol, f"http://127.0.0.1:{port}")
    caplog.set_level(logging.CRITICAL)  # the exporters' own error logs are expected here
    try:
        _configure(
            route,
            f"e2e-down-{_unique()}",
            schedule_delay_ms=20,  # exports (and their failures) overlap the calls below
            export_timeout_ms=300,
            max_queue_size=64,  # small: the queue fills and drops instead of blocking
            max_export_batch_size=16,
            metric_export_interval_ms=100,
        )
        errors = 0
        for i in range(200):
            error = ValueError(f"bad row {i}") if i % 10 == 0 else None
            with iw.context(request_id=f"r-{i}", region="eu", cohort="new"):
                try:
                    result = predict(X, fail=error)
                except ValueError as exc:
                    assert exc is error
                    errors += 1
                else:
                    assert error is None and result is PREDICTION
            time.sleep(0.002)  # ~0.5 s in all, so background export attempts run meanwhile
        assert errors == 20
        # That calls never wait on an export is proven structurally in tests/test_faults.py
        # (calls complete while the collector holds every request); no timing threshold here.
        iw.shutdown()
        assert iw.internal_errors() == {}
    finally:
        if hung is not None:
            hung.close()


# -- 4: spans of other instrumentation inside iw.context carry the request id and tags --------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_other_instrumentation_spans_carry_scope(
    protocol: str, request: pytest.FixtureRequest, otlp_receiver: OtlpReceiver, iw_session: None
) -> None:
    run = _unique()
    service = f"e2e-other-{run}"
    request_id = f"r-{run}"
    _configure(_route(request, "rotel", protocol), service)
    late_tracer = trace.get_tracer("other", "2.0")  # obtained after configure

    with OTHER_TRACER.start_as_current_span("outside"):
        pass
    with iw.context(request_id=request_id, region="us", cohort="beta"):
        assert iw.current_request_id() == request_id
        with OTHER_TRACER.start_as_current_span("http handler") as handler:
            with iw.context(tenant="acme"):  # nested: keeps the request id, adds a tag
                with late_tracer.start_as_current_span("db query"):
                    pass
                assert predict(X) is PREDICTION
            handler.set_attribute("http.route", "/score")
    assert iw.current_request_id() is None
    iw.shutdown()
    assert iw.internal_errors() == {}

    spans = otlp_receiver.wait_for(lambda r: len(s := _mine(r.spans(), service)) == 4 and s)
    by_name = {s["name"]: s for s in spans}
    assert set(by_name) == {"outside", "http handler", "db query", "inference fraud"}
    outside, handler_span = by_name["outside"], by_name["http handler"]
    db, inference = by_name["db query"], by_name["inference fraud"]

    assert outside["scope"] == handler_span["scope"] == db["scope"] == "other"
    assert outside["attributes"] == {}
    assert handler_span["attributes"] == {
        "ml.request.id": request_id,
        "region": "us",
        "cohort": "beta",
        "http.route": "/score",
    }
    scope_attrs = {"ml.request.id": request_id, "region": "us", "cohort": "beta", "tenant": "acme"}
    assert db["attributes"] == scope_attrs
    assert {k: inference["attributes"].get(k) for k in scope_attrs} == scope_attrs

    # One trace: the handler is the parent of both the db query and the inference span.
    assert db["trace_id"] == inference["trace_id"] == handler_span["trace_id"]
    assert db["parent_span_id"] == inference["parent_span_id"] == handler_span["span_id"]
    assert outside["trace_id"] != handler_span["trace_id"]
    for span in spans:
        assert span["resource"]["service.name"] == service


# -- 5: configure() again re-points the global provider; the old pipeline is flushed ---------
def test_reconfigure_repoints_global_tracer(
    request: pytest.FixtureRequest, otlp_receiver: OtlpReceiver, iw_session: None
) -> None:
    run = _unique()
    first, second = f"e2e-first-{run}", f"e2e-second-{run}"
    _configure(_route(request, "direct", "grpc"), first, schedule_delay_ms=60_000)
    with iw.context(request_id=f"r-{run}-1"), OTHER_TRACER.start_as_current_span("before"):
        predict(CLEAN)
    # Same process, new settings and protocol, no shutdown in between: the first pipeline's
    # queued spans (its batch delay is a minute) must be flushed by this configure.
    _configure(_route(request, "direct", "http/protobuf"), second)
    with iw.context(request_id=f"r-{run}-2"), OTHER_TRACER.start_as_current_span("after"):
        predict(CLEAN)
    iw.shutdown()

    def both(r: OtlpReceiver) -> Any:
        a, b = _mine(r.spans(), first), _mine(r.spans(), second)
        return len(a) == 2 and len(b) == 2 and (a, b)

    spans_first, spans_second = otlp_receiver.wait_for(both)
    assert {s["name"] for s in spans_first} == {"before", "inference fraud"}
    assert {s["name"] for s in spans_second} == {"after", "inference fraud"}
    assert {s["attributes"]["ml.request.id"] for s in spans_first} == {f"r-{run}-1"}
    assert {s["attributes"]["ml.request.id"] for s in spans_second} == {f"r-{run}-2"}
    assert _requests_from(otlp_receiver, "traces", "grpc", first)
    assert _requests_from(otlp_receiver, "traces", "http", second)
    assert not _requests_from(otlp_receiver, "traces", "grpc", second)


# -- Regressions: shutdown deadline, metrics of other instrumentation across reconfigure --------
@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.timeout(20)  # unbounded, the flush would take >= 30 s: 3 batches x 10 s timeouts
def test_shutdown_timeout_bounds_the_span_flush(
    protocol: str, iw_session: None, caplog: pytest.LogCaptureFixture
) -> None:
    """``iw.shutdown(timeout_ms=...)`` bounds the flush even when the collector hangs.

    The SDK's ``TracerProvider.shutdown()`` takes no timeout and its batch processor waits up to
    30 s, one export timeout per queued batch; inferwatch shuts its processors down against one
    shared deadline instead.
    """
    hung = _HungEndpoint()
    caplog.set_level(logging.CRITICAL)
    try:
        route = Route("nowhere", protocol, f"http://127.0.0.1:{hung.port}")
        _configure(route, f"e2e-bug-{_unique()}", export_timeout_ms=10_000, max_export_batch_size=1)
        for _ in range(3):
            predict(CLEAN)
        # The check is that it returns at all before the test's timeout (a hang guard with
        # 30x margin, not a latency threshold); tests/test_shutdown.py covers the deadline too.
        iw.shutdown(timeout_ms=300)
        assert iw.internal_errors().get("shutdown", 0) >= 1  # what was abandoned is counted
    finally:
        hung.close()


def test_other_instrumentation_metrics_survive_reconfigure(
    request: pytest.FixtureRequest, otlp_receiver: OtlpReceiver, iw_session: None
) -> None:
    """After a second ``iw.configure``, metrics from other instrumentation still arrive.

    OpenTelemetry lets the global meter provider be set once; inferwatch installs a switching
    provider so meters obtained through ``metrics.get_meter`` follow each configuration.
    """
    run = _unique()
    service = f"e2e-bug-meter-{run}"
    _configure(_route(request, "direct", "grpc"), f"e2e-bug-meter-first-{run}")
    iw.shutdown()
    _configure(_route(request, "direct", "http/protobuf"), service)
    metrics.get_meter("other").create_counter("other.requests").add(1, {"route": "/score"})
    with iw.context(region="eu"):
        predict(CLEAN)
    iw.shutdown()

    def exported(r: OtlpReceiver) -> Any:
        points = _mine(r.metrics(), service)
        return any(p["name"] == "ml.inference.duration" for p in points) and points

    names = {p["name"] for p in otlp_receiver.wait_for(exported)}
    assert "other.requests" in names, f"other instrumentation's metric lost; got {names}"
