"""The OTLP exporters for each signal, and refused exports counted as failed.

One exporter per signal and protocol, built for the configured endpoint (or the per-signal
``OTEL_EXPORTER_OTLP_*_ENDPOINT``), with the meter provider so the SDK counts what it exports.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider

from inferwatch.export.settings import Settings

_OTLP = "opentelemetry.exporter.otlp.proto"
_EXPORTERS = {
    ("traces", "grpc"): (f"{_OTLP}.grpc.trace_exporter", "OTLPSpanExporter"),
    ("traces", "http/protobuf"): (f"{_OTLP}.http.trace_exporter", "OTLPSpanExporter"),
    ("metrics", "grpc"): (f"{_OTLP}.grpc.metric_exporter", "OTLPMetricExporter"),
    ("metrics", "http/protobuf"): (f"{_OTLP}.http.metric_exporter", "OTLPMetricExporter"),
    ("logs", "grpc"): (f"{_OTLP}.grpc._log_exporter", "OTLPLogExporter"),
    ("logs", "http/protobuf"): (f"{_OTLP}.http._log_exporter", "OTLPLogExporter"),
}


def otlp_exporter(
    settings: Settings, signal: str, meter_provider: MeterProvider | None = None
) -> Any | None:
    """The OTLP exporter for one signal, or None when no endpoint is configured for it."""
    endpoint = settings.endpoint
    signal_endpoint = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    if endpoint is None and not signal_endpoint:
        return None
    if signal_endpoint and endpoint == os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        endpoint = None  # both variables set: the per-signal one wins, and the exporter reads it
    module, name = _EXPORTERS[(signal, settings.protocol)]
    exporter_class = getattr(importlib.import_module(module), name)
    if endpoint is not None and settings.protocol == "http/protobuf":
        endpoint = f"{endpoint}/v1/{signal}"  # as OTEL_EXPORTER_OTLP_ENDPOINT is read for HTTP
    timeout = settings.export_timeout_ms / 1000 if settings.export_timeout_ms else None
    options: dict[str, Any] = {"meter_provider": meter_provider} if meter_provider else {}
    exporter = exporter_class(
        endpoint=endpoint, headers=settings.headers or None, timeout=timeout, **options
    )
    if hasattr(getattr(exporter, "_metrics", None), "export_operation"):
        exporter._metrics = RefusalsCounted(exporter._metrics)
    return exporter


class RefusalsCounted:
    """Counts an export the collector refused with an HTTP status as failed, not as exported.

    The OTLP/HTTP exporters put an ``error.type`` on ``otel.sdk.exporter.*.exported`` only when
    the transport raised; a 413, 429 or 503 answer fails the export without an exception, and
    they count it as exported. This gives it one, named by the status (``error.type="503"``, as
    OTel's HTTP conventions do), so a refusing collector shows up as lost telemetry.
    """

    def __init__(self, metrics: Any) -> None:
        self._metrics = metrics

    @contextmanager
    def export_operation(self, num_items: int) -> Iterator[Any]:
        with self._metrics.export_operation(num_items) as result:
            yield result
            status = (result.error_attrs or {}).get("http.response.status_code")
            if result.error is None and status is not None:
                result.error = _status_error(int(status))()


@functools.cache
def _status_error(status: int) -> type[Exception]:
    return type(str(status), (Exception,), {"__module__": __name__})
