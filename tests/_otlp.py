"""Real OTLP plumbing for tests: an in-process OTLP receiver and a rotel collector subprocess.

Enable the fixtures from a conftest with ``pytest_plugins = ["tests._otlp"]``.

* ``OtlpReceiver`` accepts OTLP over gRPC and HTTP/protobuf on free 127.0.0.1 ports and keeps
  every decoded request; ``spans()``, ``metrics()`` and ``logs()`` give flattened dict views.
* ``FaultyReceiver`` is one that the test can make slow (hold requests unanswered) or refuse
  exports with an HTTP status (413, 429, 503; the matching gRPC status over gRPC).
* ``wait_until_serving`` waits for a server a test started to answer ``/health``.
* ``RotelCollector`` runs the ``rotel-agent`` binary shipped by the ``rotel`` wheel, receiving
  OTLP gRPC + HTTP and exporting OTLP/gRPC to a receiver; ``kill()`` and ``restart()`` it on
  the same ports.

The session receiver is shared (``otlp_receiver`` clears it before each test). Data still in
flight through the collector from an earlier test can land after that clear, so tests should
match on something unique to them (a resource attribute, span name, ...).
"""

from __future__ import annotations

import atexit
import gzip
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

__all__ = [
    "GRPC_STATUS_FOR_HTTP",
    "FaultyReceiver",
    "OtlpReceiver",
    "RotelCollector",
    "decode_any",
    "decode_attributes",
    "free_port",
    "otlp_receiver",
    "otlp_receiver_session",
    "port_open",
    "rotel_agent_path",
    "rotel_collector",
    "wait_until_serving",
]

T = TypeVar("T")
LOCALHOST = "127.0.0.1"

# signal -> (request type, response type); HTTP paths are /v1/<signal>.
_SIGNALS: dict[str, tuple[type[Message], type[Message]]] = {
    "traces": (
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
    "metrics": (
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
}


# -- decoding ----------------------------------------------------------------------------------
def decode_any(value: AnyValue) -> Any:
    """Turn an OTLP AnyValue into plain Python (kvlist -> dict, array -> list, empty -> None)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [decode_any(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return decode_attributes(value.kvlist_value.values)
    return getattr(value, kind)  # string_value, bool_value, int_value, double_value, bytes_value


def decode_attributes(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: decode_any(kv.value) for kv in kvs}


def _hex(raw: bytes) -> str | None:
    return raw.hex() if raw else None


def _enum_name(enum: Any, number: int, prefix: str) -> str:
    return str(enum.Name(number)).removeprefix(prefix)


def _span_dict(span: Span, resource: dict[str, Any], scope: str) -> dict[str, Any]:
    return {
        "name": span.name,
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": _hex(span.parent_span_id),
        "kind": _enum_name(Span.SpanKind, span.kind, "SPAN_KIND_"),
        "status_code": _enum_name(Status.StatusCode, span.status.code, "STATUS_CODE_"),
        "status_message": span.status.message,
        "attributes": decode_attributes(span.attributes),
        "resource": resource,
        "scope": scope,
        "events": [
            {"name": e.name, "attributes": decode_attributes(e.attributes)} for e in span.events
        ],
        "start_ns": span.start_time_unix_nano,
        "end_ns": span.end_time_unix_nano,
    }


def _metric_points(metric: Any) -> Iterator[dict[str, Any]]:
    """Yield the type-specific fields of each data point of one Metric message."""
    kind = metric.WhichOneof("data")
    data = getattr(metric, kind)
    extra: dict[str, Any] = {}
    if kind in ("sum", "histogram", "exponential_histogram"):
        extra["temporality"] = _enum_name(
            AggregationTemporality, data.aggregation_temporality, "AGGREGATION_TEMPORALITY_"
        )
    if kind == "sum":
        extra["is_monotonic"] = data.is_monotonic
    for p in data.data_points:
        out = {"type": kind, "attributes": decode_attributes(p.attributes), **extra}
        out["time_ns"] = p.time_unix_nano
        if kind in ("sum", "gauge"):
            out["value"] = getattr(p, p.WhichOneof("value") or "as_int")
        elif kind == "summary":
            out.update(count=p.count, sum=p.sum)
            out["quantiles"] = {q.quantile: q.value for q in p.quantile_values}
        else:
            out.update(count=p.count, sum=p.sum if p.HasField("sum") else None)
            out.update(min=p.min if p.HasField("min") else None)
            out.update(max=p.max if p.HasField("max") else None)
        if kind == "histogram":
            out.update(bucket_counts=list(p.bucket_counts), explicit_bounds=list(p.explicit_bounds))
        elif kind == "exponential_histogram":
            out.update(scale=p.scale, zero_count=p.zero_count)
            out["positive"] = (p.positive.offset, list(p.positive.bucket_counts))
            out["negative"] = (p.negative.offset, list(p.negative.bucket_counts))
        yield out


# -- receiver ----------------------------------------------------------------------------------
class _Servicer(
    trace_service_pb2_grpc.TraceServiceServicer,
    metrics_service_pb2_grpc.MetricsServiceServicer,
    logs_service_pb2_grpc.LogsServiceServicer,
):
    """One object implementing all three OTLP collector services; Export is dispatched by type."""

    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:
        signal = next(s for s, (req, _) in _SIGNALS.items() if isinstance(request, req))
        self._receiver._record(signal, "grpc", request)
        return _SIGNALS[signal][1]()


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def do_POST(self) -> None:
        signal = self.path.split("?")[0].removeprefix("/v1/")
        if self.headers.get("Transfer-Encoding"):  # OTLP exporters send Content-Length
            self.close_connection = True
            return self._reply(411, b"Content-Length required", "text/plain")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if signal not in _SIGNALS:
            return self._reply(404, b"unknown OTLP path", "text/plain")
        if "json" in self.headers.get("Content-Type", ""):
            return self._reply(415, b"only application/x-protobuf is supported", "text/plain")
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        request_type, response_type = _SIGNALS[signal]
        request = request_type()
        try:
            request.ParseFromString(body)
        except Exception as exc:
            return self._reply(400, f"bad protobuf: {exc}".encode(), "text/plain")
        self.server.receiver._record(signal, "http", request)
        self._reply(200, response_type().SerializeToString(), "application/x-protobuf")

    def _reply(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    receiver: OtlpReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on a held request (its export timed out) is no error here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class OtlpReceiver:
    """In-process OTLP receiver (gRPC + HTTP/protobuf) that records everything it is sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[tuple[str, str, Message]] = []  # (signal, transport, request)
        self._grpc: grpc.Server | None = None
        self._http: _HttpServer | None = None
        self.grpc_endpoint = ""
        self.http_endpoint = ""

    # What answers each request; `FaultyReceiver` puts its own in.
    _servicer_type: type[_Servicer] = _Servicer
    _handler_type: type[_HttpHandler] = _HttpHandler

    def start(self) -> OtlpReceiver:
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        servicer = self._servicer_type(self)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, self._grpc)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(servicer, self._grpc)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(servicer, self._grpc)
        grpc_port = self._grpc.add_insecure_port(f"{LOCALHOST}:0")
        self._grpc.start()
        self._http = _HttpServer((LOCALHOST, 0), self._handler_type)
        self._http.receiver = self
        threading.Thread(target=self._http.serve_forever, name="otlp-http", daemon=True).start()
        self.grpc_endpoint = f"{LOCALHOST}:{grpc_port}"
        self.http_endpoint = f"http://{LOCALHOST}:{self._http.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=None).wait(5)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, signal: str, transport: str, request: Message) -> None:
        with self._lock:
            self._requests.append((signal, transport, request))

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def requests(self, signal: str | None = None, transport: str | None = None) -> list[Any]:
        """Raw Export*ServiceRequest messages, optionally filtered by signal and "grpc"/"http"."""
        with self._lock:
            snapshot = list(self._requests)
        return [
            req for sig, tr, req in snapshot if signal in (None, sig) and transport in (None, tr)
        ]

    def spans(self) -> list[dict[str, Any]]:
        return [
            _span_dict(span, decode_attributes(rs.resource.attributes), ss.scope.name)
            for req in self.requests("traces")
            for rs in req.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def metrics(self) -> list[dict[str, Any]]:
        """One dict per data point, with the metric's name/unit/resource/scope attached."""
        out = []
        for req in self.requests("metrics"):
            for rm in req.resource_metrics:
                resource = decode_attributes(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        base = {"name": metric.name, "unit": metric.unit, "resource": resource}
                        base["scope"] = sm.scope.name
                        out += [{**base, **point} for point in _metric_points(metric)]
        return out

    def logs(self) -> list[dict[str, Any]]:
        return [
            {
                "body": decode_any(rec.body),
                "severity_text": rec.severity_text,
                "severity_number": rec.severity_number,
                "attributes": decode_attributes(rec.attributes),
                "resource": decode_attributes(rl.resource.attributes),
                "scope": sl.scope.name,
                "trace_id": _hex(rec.trace_id),
                "span_id": _hex(rec.span_id),
                "time_ns": rec.time_unix_nano,
            }
            for req in self.requests("logs")
            for rl in req.resource_logs
            for sl in rl.scope_logs
            for rec in sl.log_records
        ]

    def summary(self) -> str:
        """Short human-readable account of what has been received (used in failure messages)."""
        with self._lock:
            counts = [f"{sig}/{tr}" for sig, tr, _ in self._requests]
        spans = sorted({s["name"] for s in self.spans()})
        metrics = sorted({m["name"] for m in self.metrics()})
        bodies = [repr(r["body"])[:60] for r in self.logs()][:10]
        requests = {key: counts.count(key) for key in sorted(set(counts))}
        return f"requests={requests} spans={spans} metrics={metrics} log bodies={bodies}"

    def wait_for(self, predicate: Callable[[OtlpReceiver], T], timeout: float = 10.0) -> T:
        """Poll every 20 ms until ``predicate(self)`` is truthy and return its value."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self)
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"OTLP receiver: condition not met within {timeout:.1f}s; "
                    f"received {self.summary()}"
                )
            time.sleep(0.02)


# -- a receiver that misbehaves on demand -------------------------------------------------------
# The gRPC status a refusal answers with, for the HTTP status it stands for (OTLP/gRPC has none
# for 413: an oversized message is RESOURCE_EXHAUSTED, like a rate limit without RetryInfo).
GRPC_STATUS_FOR_HTTP = {
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


class _FaultyServicer(_Servicer):
    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:
        signal = next(s for s, (req, _) in _SIGNALS.items() if isinstance(request, req))
        receiver = self._receiver
        assert isinstance(receiver, FaultyReceiver)
        status = receiver._verdict(signal)
        if status is not None:
            context.abort(GRPC_STATUS_FOR_HTTP.get(status, grpc.StatusCode.INTERNAL), "refused")
        return super().Export(request, context)


class _FaultyHttpHandler(_HttpHandler):
    def do_POST(self) -> None:
        signal = self.path.split("?")[0].removeprefix("/v1/")
        receiver = self.server.receiver
        assert isinstance(receiver, FaultyReceiver)
        status = receiver._verdict(signal)
        if status is None:
            return super().do_POST()
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return self._reply(status, b"refused", "text/plain")


class FaultyReceiver(OtlpReceiver):
    """An `OtlpReceiver` the test can make slow (`hold`) or refuse exports (`refuse`).

    ``hold()`` makes every export request of the chosen signals wait, connection open and
    unanswered, until ``release()``: a collector that accepts but answers late. ``refuse(503)``
    answers them with that HTTP status (over gRPC: the matching status code, see
    `GRPC_STATUS_FOR_HTTP`) until ``accept()``. Requests let through are recorded as usual.
    """

    _servicer_type = _FaultyServicer
    _handler_type = _FaultyHttpHandler

    def __init__(self, signals: Iterable[str] = ("traces", "metrics", "logs")) -> None:
        super().__init__()
        self.signals = frozenset(signals)
        self._gate = threading.Event()
        self._gate.set()
        self._status: int | None = None
        self._counts_lock = threading.Lock()
        self.waiting = 0  # requests held at the gate right now
        self.refused = 0  # requests answered with the refusal status

    def hold(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def refuse(self, status: int) -> None:
        self._status = status

    def accept(self) -> None:
        self._status = None

    def stop(self) -> None:
        self.release()  # let held handler threads finish before the servers go
        super().stop()

    def _verdict(self, signal: str) -> int | None:
        """Wait at the gate if held; the status to refuse with, or None to accept."""
        if signal not in self.signals:
            return None
        if not self._gate.is_set():
            with self._counts_lock:
                self.waiting += 1
            self._gate.wait()
            with self._counts_lock:
                self.waiting -= 1
        status = self._status
        if status is not None:
            with self._counts_lock:
                self.refused += 1
        return status


# -- rotel collector ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def wait_until_serving(
    url: str, proc: subprocess.Popen[bytes], timeout: float = 60, path: str = "/health"
) -> None:
    """Until ``url`` + ``path`` answers 200 (a server the test started as ``proc``), or raise."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not start (exit {proc.poll()})")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def rotel_agent_path() -> Path:
    import rotel

    return Path(rotel.__file__).parent / "rotel-agent"


class RotelCollector:
    """The rotel-agent collector as a subprocess, exporting OTLP/gRPC to ``exporter_endpoint``."""

    def __init__(
        self,
        exporter_endpoint: str,
        *,
        batch_timeout: str = "50ms",
        extra_args: Iterable[str] = (),
        startup_timeout: float = 15.0,
        grpc_port: int = 0,
        http_port: int = 0,
    ) -> None:
        if "://" not in exporter_endpoint:
            exporter_endpoint = f"http://{exporter_endpoint}"
        self.exporter_endpoint = exporter_endpoint
        self.batch_timeout = batch_timeout
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        # Given ports are kept (a client may be pointed at them before rotel starts).
        self._fixed_ports = (grpc_port, http_port) if grpc_port and http_port else None
        self.grpc_port, self.http_port = grpc_port, http_port
        self.command: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmpdir: Path | None = None

    @property
    def grpc_endpoint(self) -> str:
        return f"{LOCALHOST}:{self.grpc_port}"

    @property
    def grpc_url(self) -> str:
        return f"http://{LOCALHOST}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://{LOCALHOST}:{self.http_port}"

    def log_text(self) -> str:
        """rotel's own output (it logs to stdout when not daemonised)."""
        log = self._tmpdir / "rotel.log" if self._tmpdir else None
        try:
            return log.read_text(errors="replace") if log else ""
        except OSError:
            return ""

    def start(self) -> RotelCollector:
        self._tmpdir = Path(tempfile.mkdtemp(prefix="rotel-test-"))
        for _attempt in range(3):
            seen = len(self.log_text())
            if self._launch():
                return self
            # Ports are picked before rotel binds them: retry only if one was taken meanwhile.
            if "in use" not in self.log_text()[seen:]:
                break
        output = self.log_text()
        self.stop()
        raise RuntimeError(f"rotel-agent exited during startup: {self.command}\n{output}")

    def _launch(self) -> bool:
        if self._fixed_ports is None:
            self.grpc_port, self.http_port = free_port(), free_port()
        tmp = self._tmpdir or Path(".")
        self.command = [
            str(rotel_agent_path()), "start",
            "--otlp-grpc-endpoint", self.grpc_endpoint,
            "--otlp-http-endpoint", f"{LOCALHOST}:{self.http_port}",
            "--exporter", "otlp",
            "--otlp-exporter-endpoint", self.exporter_endpoint,
            "--otlp-exporter-protocol", "grpc",
            "--batch-timeout", self.batch_timeout,
            "--otlp-exporter-retry-initial-backoff", "100ms",
            "--otlp-exporter-retry-max-backoff", "1s",
            "--pid-file", str(tmp / "rotel.pid"),
            "--log-file", str(tmp / "rotel.log"),
            *self.extra_args,
        ]  # fmt: skip
        # Without --daemon rotel logs to stdout; --log-file only matters for daemon mode.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROTEL_")}
        with open(tmp / "rotel.log", "ab") as log:
            self._proc = subprocess.Popen(self.command, stdout=log, stderr=log, env=env)
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if port_open(self.grpc_port) and port_open(self.http_port):
                return True
            time.sleep(0.05)
        output = self.log_text()
        self.stop()
        raise RuntimeError(
            f"rotel-agent ports not open after {self.startup_timeout}s: {self.command}\n{output}"
        )

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            atexit.unregister(self.stop)
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def kill(self) -> None:
        """SIGKILL, as the OOM killer would: no flush, no goodbye; the ports close."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)

    def restart(self) -> RotelCollector:
        """Run rotel again on the same ports (after `kill`), as a supervisor would."""
        self.kill()
        fixed, self._fixed_ports = self._fixed_ports, (self.grpc_port, self.http_port)
        try:
            for _attempt in range(20):  # the killed process's sockets may linger a moment
                if self._launch():
                    return self
                time.sleep(0.1)
        finally:
            self._fixed_ports = fixed
        raise RuntimeError(f"rotel-agent did not restart: {self.command}\n{self.log_text()}")

    def __enter__(self) -> RotelCollector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- pytest fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def otlp_receiver_session() -> Iterator[OtlpReceiver]:
    """The one receiver of the test session (also the collector's export target)."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def otlp_receiver(otlp_receiver_session: OtlpReceiver) -> OtlpReceiver:
    """The session receiver, cleared at the start of the test."""
    otlp_receiver_session.clear()
    return otlp_receiver_session


@pytest.fixture(scope="session")
def rotel_collector(otlp_receiver_session: OtlpReceiver) -> Iterator[RotelCollector]:
    """A rotel-agent collector forwarding everything to the session receiver over OTLP/gRPC."""
    with RotelCollector(otlp_receiver_session.grpc_endpoint) as collector:
        yield collector
