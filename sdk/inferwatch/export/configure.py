"""`configure()` and `shutdown()`: one configuration of the pipeline at a time, and its end.

`configure()` validates the settings (`inferwatch.export.settings`), builds the providers
(`inferwatch.export.providers`) and the instruments the hot path reads
(`inferwatch.export.state`); `shutdown()` flushes and stops them within a deadline, and runs at
every end of the process (`inferwatch.export.lifecycle`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace import SpanProcessor

from inferwatch import errors, forks
from inferwatch.export import lifecycle, readers
from inferwatch.export import logs as _logs
from inferwatch.export import privacy as _privacy
from inferwatch.export.providers import (
    Build,
    sdk_self_metrics,
    switching_tracers,
)
from inferwatch.export.settings import (
    ConfigurationError,
    Settings,
    from_arguments,
    scrubber,
)
from inferwatch.export.state import State, set_state

if TYPE_CHECKING:
    from inferwatch.alerts import AlertsArgument

_log = logging.getLogger("inferwatch")
_lock = threading.Lock()
_current: tuple[Settings, tuple[object, ...], State] | None = None


def configure(
    service_name: str | None = None,
    *,
    service_version: str | None = None,
    environment: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | str | None = None,
    sampling_ratio: float | None = None,
    metric_tags: Sequence[str] = (),
    max_queue_size: int | None = None,
    max_export_batch_size: int | None = None,
    schedule_delay_ms: float | None = None,
    export_timeout_ms: float | None = None,
    metric_export_interval_ms: float | None = None,
    max_classes: int = 100,
    logs: bool = True,
    internal_metrics: bool = True,
    store: str | os.PathLike[str] | Literal[False] | None = None,
    redact: bool = True,
    redact_keys: Sequence[str] = (),
    redact_values: Mapping[str, str] | None = None,
    scrub: _privacy.Hook | None = None,
    hash_tags: Sequence[str] = (),
    hash_key: str | bytes | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    metric_readers: Sequence[MetricReader] = (),
    log_processors: Sequence[LogRecordProcessor] = (),
    strict: bool = False,
    flush_on_sigterm: bool = True,
    shutdown_timeout_ms: float = lifecycle.DEFAULT_SHUTDOWN_TIMEOUT_MS,
    alerts: AlertsArgument | None = None,
) -> Settings:
    """Set up tracing and metrics for inferwatch; safe to call again (same settings: no-op).

    >>> iw.configure(service_name="fraud-api", endpoint="http://collector:4318",
    ...              metric_tags=["region"])

    Privacy (`iw.privacy`, docs/privacy.md): tags and log attributes are scrubbed with
    default patterns (credential-like keys; e-mail addresses, bearer tokens, JWTs in values)
    unless ``redact=False``; ``redact_keys`` (regexes on tag names) and ``redact_values``
    (name -> regex on values) add rules; ``scrub(key, value)`` sees every value last and
    returns what to export (None drops it). Tags named in ``hash_tags`` are exported as keyed
    HMAC-SHA256 pseudonyms, keyed by ``hash_key`` (else ``$INFERWATCH_HASH_KEY``, else a random
    key per process: then pseudonyms cannot be linked across restarts).

    ``endpoint`` None means ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the per-signal
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``/``_METRICS_ENDPOINT``); with none, traces and logs go
    to the local store (``store``: default ``$INFERWATCH_STORE`` or ``./.inferwatch``;
    ``store=False`` turns it off), which `iw.query.open()` reads. If the application has already
    installed SDK providers, inferwatch uses them and adds only its tag-stamping span processor.
    ``metric_tags`` names the low-cardinality tags allowed on metrics. With ``logs`` (the
    default) structlog events and stdlib log records are bridged to OTel logs. With
    ``internal_metrics`` the SDK's own ``otel.sdk.*`` metrics count queue drops and export
    failures of inferwatch's pipelines. What is queued is flushed when the process ends — at
    exit, at a multiprocessing worker's end and on SIGTERM, also when a server handles it
    (uvicorn, gunicorn; docs/deployment.md) — within ``shutdown_timeout_ms`` (5 s), which also
    bounds `shutdown()`; what could not be sent by then is counted and logged.
    ``flush_on_sigterm=False`` leaves SIGTERM alone (then only a normal exit flushes).
    ``alerts`` (policies, `AlertRules` or a YAML path) are evaluated in the process on their
    own interval and stopped within `shutdown()`'s deadline (docs/alerts.md).
    """
    global _current
    settings = from_arguments(locals())
    scrubbing = scrubber(settings)
    extras = (*span_processors, *metric_readers, *log_processors)
    with _lock:
        if _current is not None and _current[0] == settings and _current[1] == extras:
            return settings
        if _current is not None:
            _logs.uninstall()
            _current[2].shutdown(_current[0].shutdown_timeout_ms)
            _current = None
            set_state(None)
        errors.set_strict(settings.strict)
        try:
            state = _build_state(settings, span_processors, metric_readers, log_processors)
        except Exception as exc:  # e.g. a metric reader already registered elsewhere
            raise ConfigurationError(f"could not set up telemetry providers: {exc}") from exc
        _current = (settings, extras, state)
        _privacy.install(scrubbing)
        set_state(state)
        _exit_guard.want(settings.flush_on_sigterm)
    return settings


def shutdown(timeout_ms: float | None = None) -> None:
    """Flush and stop what `configure()` set up, within ``timeout_ms`` (default: the configured
    ``shutdown_timeout_ms``, 5 s); later spans are dropped.

    Another thread holding the configuration (a `configure()` or `shutdown()` under way) is
    waited for within the same deadline, after which this call gives up and returns.
    """
    global _current
    if timeout_ms is None:
        timeout_ms = _shutdown_timeout_ms()
    if not _lock.acquire(timeout=max(timeout_ms, 0) / 1000):
        errors.log_internal_error("shutdown", TimeoutError("configuration busy past deadline"))
        return
    try:
        if _current is None:
            return
        _logs.uninstall()
        _current[2].shutdown(timeout_ms)
        _current = None
        set_state(None)
        _privacy.install(None)
    finally:
        _lock.release()
        _exit_guard.want(False)


def flush(timeout_ms: float | None = None) -> bool:
    """Export everything recorded so far and keep going: spans and logs, then a collection of
    the metrics, within ``timeout_ms`` (default: ``shutdown_timeout_ms``, 5 s). For a process
    that may be frozen or ended without warning once a unit of work is done (serverless, a
    batch step). False when the deadline passed first (what was left is still queued).
    """
    state = _current[2] if _current is not None else None
    if state is None:
        return True
    return state.flush(_shutdown_timeout_ms() if timeout_ms is None else timeout_ms)


def _flush_at_exit() -> None:
    """atexit, multiprocessing workers' exit and SIGTERM (`_exit`): flush within a deadline."""
    try:
        shutdown()
    except Exception as exc:
        errors.log_internal_error("shutdown.exit", exc)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a thread of the parent may have held it at fork time


forks.on_fork_in_child(_after_fork_in_child)


def _shutdown_timeout_ms() -> float:
    current = _current
    return current[0].shutdown_timeout_ms if current else lifecycle.DEFAULT_SHUTDOWN_TIMEOUT_MS


_exit_guard = lifecycle.install(
    _flush_at_exit, lambda: _shutdown_timeout_ms() / 1000, switching_tracers
)


def _build_state(
    settings: Settings,
    span_processors: Sequence[SpanProcessor],
    metric_readers: Sequence[MetricReader],
    log_processors: Sequence[LogRecordProcessor],
) -> State:
    build = Build(settings)
    with sdk_self_metrics(settings.internal_metrics):
        feature_readers = readers.readers(settings, metric_readers)
        # First: the others report into it.
        meter_provider = build.meter_provider([*metric_readers, *feature_readers])
        tracer_provider = build.tracer_provider(span_processors, meter_provider)
        logger_provider = None
        if settings.logs:
            logger_provider = build.logger_provider(log_processors, meter_provider)
            _logs.install(logger_provider)
    # Shut down in this order: spans and logs flush before the meter takes its last reading.
    owned = sorted(build.owned, key=lambda provider: isinstance(provider, MeterProvider))
    return State(
        settings.metric_tags,
        settings.max_classes,
        tracer_provider,
        meter_provider,
        owned,
        batch_processors=build.batch_processors,
        logger_provider=logger_provider,
        metrics_exported=build.metrics_exported or bool(metric_readers),
    )
