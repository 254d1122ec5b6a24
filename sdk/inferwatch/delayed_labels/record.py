"""The ``ml.feedback`` OTel log record: a label, linked to the span of its prediction.

Emitting it only enqueues it in the logger provider's batch processor; export happens on the
processor's thread. The record carries the original inference span's trace and span ids when the
prediction is known here, never the caller's (a label usually arrives in an unrelated request),
and in every case the request id, so a backend can join labels to spans later.
"""

from __future__ import annotations

import time

from opentelemetry import trace
from opentelemetry._logs import (
    Logger,
    LoggerProvider,
    LogRecord,
    SeverityNumber,
    get_logger_provider,
)
from opentelemetry.context import Context
from opentelemetry.trace import TraceFlags
from opentelemetry.util.types import Attributes

from inferwatch import semconv

# Without a known span the record must not pick up the caller's current span.
_NO_SPAN = trace.set_span_in_context(trace.INVALID_SPAN, Context())
_loggers: dict[int, tuple[LoggerProvider, Logger]] = {}
BODY = "delayed label"


def _logger(provider: LoggerProvider | None, version: str) -> Logger:
    """inferwatch's logger of the configured provider (else the global one, maybe a no-op)."""
    provider = provider or get_logger_provider()
    hit = _loggers.get(id(provider))
    if hit is not None and hit[0] is provider:
        return hit[1]
    if len(_loggers) >= 16:
        _loggers.clear()
    logger = provider.get_logger(semconv.INSTRUMENTATION_NAME, version)
    _loggers[id(provider)] = (provider, logger)  # holding the provider keeps its id unique
    return logger


def emit(
    provider: LoggerProvider | None,
    version: str,
    attributes: Attributes,
    at_s: float,
    trace_id: int = 0,
    span_id: int = 0,
    trace_flags: int = 0,
) -> None:
    """Enqueue one ``ml.feedback`` record observed at ``at_s`` (epoch seconds)."""
    record = LogRecord(
        timestamp=int(at_s * 1e9),
        observed_timestamp=time.time_ns(),
        context=_NO_SPAN,
        severity_number=SeverityNumber.INFO,
        severity_text="INFO",
        body=BODY,
        attributes=attributes,
        event_name=semconv.EVENT_FEEDBACK,
    )
    if trace_id:  # the prediction's span; set directly, cheaper than a context naming it
        record.trace_id, record.span_id = trace_id, span_id
        record.trace_flags = TraceFlags(trace_flags)
    _logger(provider, version).emit(record)
