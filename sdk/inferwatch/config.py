"""`configure()` and `shutdown()`: resource, providers, exporters, validated up front.

Bad configuration raises `ConfigurationError` here, at start-up, never later on the hot path.
Environment variables follow the OpenTelemetry SDK specification (``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_*``, ``OTEL_BSP_*``, ``OTEL_TRACES_SAMPLER*``).
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from pydantic import BaseModel, ConfigDict, Field, SecretBytes, ValidationError, field_validator

from inferwatch import _exit, _internal, semconv
from inferwatch import logs as _logs
from inferwatch import privacy as _privacy
from inferwatch._providers import SwitchingMeterProvider, SwitchingTracerProvider
from inferwatch._refusals import RefusalsCounted
from inferwatch._state import State, set_state
from inferwatch.alerts import AlertReader, AlertRules, AlertsArgument, PolicyError, rules_from
from inferwatch.context import ScopeSpanProcessor
from inferwatch.store import StoreLogExporter, StoreSpanExporter, default_directory

Protocol = Literal["grpc", "http/protobuf"]
_PROTOCOLS = ("grpc", "http/protobuf")


class ConfigurationError(ValueError):
    """Raised by `configure()` (and decorators) for settings that cannot work."""


class Settings(BaseModel):
    """The validated configuration; `configure()` returns it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_name: str | None = None
    service_version: str | None = None
    environment: str | None = None
    endpoint: str | None = None
    protocol: Protocol = "http/protobuf"
    headers: dict[str, str] = Field(default_factory=dict, repr=False)  # credentials, often
    sampling_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    metric_tags: tuple[str, ...] = ()
    max_queue_size: int | None = Field(default=None, gt=0)
    max_export_batch_size: int | None = Field(default=None, gt=0)
    schedule_delay_ms: float | None = Field(default=None, gt=0)
    export_timeout_ms: float | None = Field(default=None, gt=0)
    metric_export_interval_ms: float | None = Field(default=None, gt=0)
    max_classes: int = Field(default=100, gt=0)
    logs: bool = True
    internal_metrics: bool = True
    store: str | None = None
    """The local store directory traces and logs go to without an OTLP endpoint (None: off)."""
    redact: bool = True
    """Scrub tags and log attributes with the default patterns (`inferwatch.privacy`)."""
    redact_keys: tuple[str, ...] = ()
    redact_values: dict[str, str] = Field(default_factory=dict)
    scrub: _privacy.Hook | None = None
    hash_tags: tuple[str, ...] = ()
    hash_key: SecretBytes | None = None
    """From ``hash_key`` or ``$INFERWATCH_HASH_KEY``; never shown (repr: ``**********``)."""
    strict: bool = False
    flush_on_sigterm: bool = False
    alerts: AlertRules | None = None
    """Alert policies evaluated in the process (`inferwatch.alerts`); None: none."""

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"endpoint {value!r} has an invalid port") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"endpoint {value!r} is not an OTLP URL; expected http(s)://host[:port], "
                "e.g. http://localhost:4317 for gRPC or http://localhost:4318 for HTTP"
            )
        del port
        return value.rstrip("/")

    @field_validator("metric_tags")
    @classmethod
    def _no_request_ids_on_metrics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if semconv.ML_REQUEST_ID in value or "request_id" in value:
            raise ValueError("request ids are unbounded and never go on metrics")
        return value


_log = logging.getLogger("inferwatch")
_lock = threading.Lock()
_switching = SwitchingTracerProvider()
_switching_meters = SwitchingMeterProvider()
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
    flush_on_sigterm: bool = False,
    alerts: AlertsArgument | None = None,
) -> Settings:
    """Set up tracing and metrics for inferwatch; safe to call again (same settings: no-op).

    >>> iw.configure(service_name="fraud-api", endpoint="http://collector:4318",
    ...              metric_tags=["region"])

    Privacy (`inferwatch.privacy`, docs/privacy.md): tags and log attributes are scrubbed with
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
    failures of inferwatch's pipelines. What is queued is flushed at interpreter exit (within
    `EXIT_FLUSH_TIMEOUT_MS`, 5 s). ``flush_on_sigterm=True`` (main thread only) flushes before
    a SIGTERM's default action ends the process; a handler the application installed earlier
    is called instead, and an ignored SIGTERM stays ignored.
    ``alerts`` (policies, `AlertRules` or a YAML path) are evaluated in the process on their
    own interval and stopped within `shutdown()`'s deadline (docs/alerts.md).
    """
    global _current
    settings = _settings(locals())
    scrubber = _scrubber(settings)
    if settings.flush_on_sigterm and threading.current_thread() is not threading.main_thread():
        raise ConfigurationError("flush_on_sigterm installs a signal handler: configure() from "
                                 "the main thread")  # fmt: skip
    extras = (*span_processors, *metric_readers, *log_processors)
    with _lock:
        if _current is not None and _current[0] == settings and _current[1] == extras:
            return settings
        if _current is not None:
            _logs.uninstall()
            _current[2].shutdown()
            _current = None
            set_state(None)
        _internal.set_strict(settings.strict)
        try:
            state = _build_state(settings, span_processors, metric_readers, log_processors)
        except Exception as exc:  # e.g. a metric reader already registered elsewhere
            raise ConfigurationError(f"could not set up telemetry providers: {exc}") from exc
        _current = (settings, extras, state)
        _privacy.install(scrubber)
        set_state(state)
        _sigterm.enable(settings.flush_on_sigterm)
    return settings


def shutdown(timeout_ms: float = 30_000) -> None:
    """Flush and stop what `configure()` set up, within ``timeout_ms``; later spans are dropped.

    Another thread holding the configuration (a `configure()` or `shutdown()` under way) is
    waited for within the same deadline, after which this call gives up and returns.
    """
    global _current
    if not _lock.acquire(timeout=max(timeout_ms, 0) / 1000):
        _internal.log_internal_error("shutdown", TimeoutError("configuration busy past deadline"))
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
        _sigterm.enable(False)


def _flush_at_exit() -> None:
    """atexit, multiprocessing workers' exit and SIGTERM (`_exit`): flush within a deadline."""
    try:
        shutdown(_exit.EXIT_FLUSH_TIMEOUT_MS)
    except Exception as exc:
        _internal.log_internal_error("shutdown.exit", exc)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a thread of the parent may have held it at fork time


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
_sigterm = _exit.install(_flush_at_exit, _switching)


def _settings(arguments: dict[str, Any]) -> Settings:
    env = os.environ
    values = {k: v for k, v in arguments.items() if k in Settings.model_fields}
    values["endpoint"] = arguments["endpoint"] or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None
    values["protocol"] = (
        arguments["protocol"] or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    )
    if values["protocol"] not in _PROTOCOLS:
        raise ConfigurationError(
            f"unknown OTLP protocol {values['protocol']!r}; use one of {', '.join(_PROTOCOLS)}"
        )
    values["headers"] = _parse_headers(arguments["headers"])
    values["metric_tags"] = tuple(arguments["metric_tags"])
    try:
        values["alerts"] = rules_from(arguments["alerts"])
    except PolicyError as exc:
        raise ConfigurationError(f"invalid alert policies: {exc}") from None
    values.update(_privacy_values(arguments))
    store = arguments["store"]
    values["store"] = (
        None
        if store is False
        else os.fspath(
            default_directory() if store is None else Path(store).expanduser().absolute()
        )
    )
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigurationError(f"invalid inferwatch configuration: {problems}") from None


def _privacy_values(arguments: dict[str, Any]) -> dict[str, Any]:
    """The privacy options as Settings fields; strings where lists belong are refused."""
    values: dict[str, Any] = {}
    for name in ("redact_keys", "hash_tags"):
        given = arguments[name]
        if isinstance(given, str | bytes):
            raise ConfigurationError(f"{name} is a list of names, e.g. [{given!r}]")
        values[name] = tuple(given)
    values["redact_values"] = dict(arguments["redact_values"] or {})
    key = arguments["hash_key"]
    if key is None:
        key = os.environ.get(_privacy.HASH_KEY_ENV) or None
    values["hash_key"] = key.encode() if isinstance(key, str) else key
    return values


def _scrubber(settings: Settings) -> _privacy.Scrubber:
    try:
        return _privacy.Scrubber(
            defaults=settings.redact,
            redact_keys=settings.redact_keys,
            redact_values=settings.redact_values,
            scrub=settings.scrub,
            hash_tags=settings.hash_tags,
            hash_key=settings.hash_key.get_secret_value() if settings.hash_key else None,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"invalid inferwatch configuration: {exc}") from None


def _parse_headers(headers: Mapping[str, str] | str | None) -> dict[str, str]:
    if headers is None:
        return {}
    if isinstance(headers, str):  # the OTEL_EXPORTER_OTLP_HEADERS form: k=v,k2=v2
        pairs = [item.split("=", 1) for item in headers.split(",") if item.strip()]
        if any(len(p) != 2 or not p[0].strip() for p in pairs):
            # Not echoed: headers carry credentials (Authorization, API keys).
            raise ConfigurationError("headers are not of the form key=value,key=value")
        return {k.strip(): v.strip() for k, v in pairs}
    return {str(k): str(v) for k, v in headers.items()}


def _resource(settings: Settings) -> Resource:
    attributes: dict[str, str] = {}
    if settings.service_name:
        attributes[semconv.SERVICE_NAME] = settings.service_name
    if settings.service_version:
        attributes[semconv.SERVICE_VERSION] = settings.service_version
    if settings.environment:
        attributes[semconv.DEPLOYMENT_ENVIRONMENT] = settings.environment
    return Resource.create(attributes)  # merges OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME


_OTLP = "opentelemetry.exporter.otlp.proto"
_EXPORTERS = {
    ("traces", "grpc"): (f"{_OTLP}.grpc.trace_exporter", "OTLPSpanExporter"),
    ("traces", "http/protobuf"): (f"{_OTLP}.http.trace_exporter", "OTLPSpanExporter"),
    ("metrics", "grpc"): (f"{_OTLP}.grpc.metric_exporter", "OTLPMetricExporter"),
    ("metrics", "http/protobuf"): (f"{_OTLP}.http.metric_exporter", "OTLPMetricExporter"),
    ("logs", "grpc"): (f"{_OTLP}.grpc._log_exporter", "OTLPLogExporter"),
    ("logs", "http/protobuf"): (f"{_OTLP}.http._log_exporter", "OTLPLogExporter"),
}


def _otlp_exporter(
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


def _build_state(
    settings: Settings,
    span_processors: Sequence[SpanProcessor],
    metric_readers: Sequence[MetricReader],
    log_processors: Sequence[LogRecordProcessor],
) -> State:
    build = _Build(settings)
    with _sdk_self_metrics(settings.internal_metrics):
        alert_readers = [AlertReader(settings.alerts)] if settings.alerts else []
        # First: the others report into it.
        meter_provider = build.meter_provider([*metric_readers, *alert_readers])
        tracer_provider = build.tracer_provider(span_processors, meter_provider)
        logger_provider = None
        if settings.logs:
            logger_provider = build.logger_provider(log_processors, meter_provider)
            _logs.install(logger_provider)
    # Shut down in this order: spans and logs flush before the meter takes its last reading.
    owned = sorted(build.owned, key=lambda provider: isinstance(provider, MeterProvider))
    return State(
        settings.metric_tags, settings.max_classes, tracer_provider, meter_provider, owned,
        batch_processors=build.batch_processors, logger_provider=logger_provider,
    )  # fmt: skip


_SELF_METRICS = "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"


@contextmanager
def _sdk_self_metrics(enabled: bool) -> Iterator[None]:
    """Turn on the SDK's own queue-drop and export-failure metrics for what is built inside.

    The SDK reads this variable when a batch processor or exporter is constructed; it is set
    only for that moment (and never over a value the application chose), so other
    components of the process keep their defaults.
    """
    if not enabled or _SELF_METRICS in os.environ:
        yield
        return
    os.environ[_SELF_METRICS] = "true"
    try:
        yield
    finally:
        os.environ.pop(_SELF_METRICS, None)


class _Build:
    """Providers for one configuration: the application's own if it installed them, else ours.

    Batch processors and OTLP exporters get the meter provider, so queue drops and export
    failures are counted as the SDK's own `otel.sdk.*` metrics.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.resource = _resource(settings)
        self.owned: list[Any] = []
        self.batch_processors: list[Any] = []

    def _batch_options(self, signal: str) -> dict[str, Any]:
        """Batch settings: the user's, else the OTEL_B*P_* variables, else inferwatch's defaults.

        inferwatch's defaults (a 1 s delay, a queue of 8192) differ from the SDK's (5 s, 2048):
        after a batch is exported the SDK's worker can sleep a full delay while a burst of
        inferences fills the queue, and a full queue drops spans.
        """
        s = self.settings
        prefix = "OTEL_BSP_" if signal == "traces" else "OTEL_BLRP_"
        env = os.environ
        queue = s.max_queue_size or (None if env.get(f"{prefix}MAX_QUEUE_SIZE") else 8192)
        delay = s.schedule_delay_ms or (None if env.get(f"{prefix}SCHEDULE_DELAY") else 1000)
        return {
            "max_queue_size": queue,
            "max_export_batch_size": s.max_export_batch_size,
            "schedule_delay_millis": delay,
            "export_timeout_millis": s.export_timeout_ms,
        }

    def meter_provider(self, metric_readers: Sequence[MetricReader]) -> MeterProvider:
        global_meters = metrics.get_meter_provider()
        if isinstance(global_meters, MeterProvider):  # the application's own SDK provider
            for reader in metric_readers:  # readers can only be given at construction
                _internal.log_internal_error(
                    "configure", RuntimeError(f"metric reader {reader!r} ignored: provider exists")
                )
            return global_meters
        readers = [*metric_readers]
        exporter = _otlp_exporter(self.settings, "metrics")
        if exporter is not None:
            interval = self.settings.metric_export_interval_ms
            readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=interval))
        provider = MeterProvider(
            metric_readers=readers, resource=self.resource, shutdown_on_exit=False
        )
        self.owned.append(provider)
        if global_meters is not _switching_meters:
            metrics.set_meter_provider(_switching_meters)
        _switching_meters.use(provider)
        return provider

    def tracer_provider(
        self, span_processors: Sequence[SpanProcessor], meter_provider: MeterProvider
    ) -> TracerProvider:
        settings = self.settings
        global_tracers = trace.get_tracer_provider()
        if isinstance(global_tracers, TracerProvider):  # the application's own SDK provider
            provider = global_tracers
            if settings.endpoint or settings.sampling_ratio is not None:
                _log.warning(
                    "inferwatch: the application's TracerProvider is in place; its exporters, "
                    "resource and sampler are used, not inferwatch's endpoint/sampling_ratio"
                )
            if not getattr(provider, "_inferwatch_scope_processor", False):
                provider.add_span_processor(ScopeSpanProcessor())
                provider._inferwatch_scope_processor = True  # type: ignore[attr-defined]
        else:
            ratio = settings.sampling_ratio
            sampler = ParentBased(TraceIdRatioBased(ratio)) if ratio is not None else None
            provider = TracerProvider(
                resource=self.resource, sampler=sampler, shutdown_on_exit=False
            )
            provider.add_span_processor(ScopeSpanProcessor())
            exporter = _otlp_exporter(settings, "traces", meter_provider)
            if exporter is None and settings.store is not None:
                exporter = StoreSpanExporter(settings.store)
            if exporter is not None:
                batch = BatchSpanProcessor(
                    exporter, **self._batch_options("traces"), meter_provider=meter_provider
                )
                provider.add_span_processor(batch)
                self.batch_processors.append(batch)
            self.owned.append(provider)
            if global_tracers is not _switching:
                trace.set_tracer_provider(_switching)
            _switching.use(provider)
        for processor in span_processors:
            provider.add_span_processor(processor)
        return provider

    def logger_provider(
        self, log_processors: Sequence[LogRecordProcessor], meter_provider: MeterProvider
    ) -> LoggerProvider:
        global_loggers = get_logger_provider()
        if isinstance(global_loggers, LoggerProvider):  # the application's own SDK provider
            provider = global_loggers
        else:
            provider = LoggerProvider(resource=self.resource, shutdown_on_exit=False)
            exporter = _otlp_exporter(self.settings, "logs", meter_provider)
            if exporter is None and self.settings.store is not None:
                exporter = StoreLogExporter(self.settings.store)
            if exporter is not None:
                batch = BatchLogRecordProcessor(
                    exporter, **self._batch_options("logs"), meter_provider=meter_provider
                )
                provider.add_log_record_processor(batch)
                self.batch_processors.append(batch)
            self.owned.append(provider)
        for processor in log_processors:
            provider.add_log_record_processor(processor)
        return provider
