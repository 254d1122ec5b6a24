"""Global tracer and meter providers that can be re-pointed when `configure()` runs again.

OpenTelemetry lets each global provider be set once per process. inferwatch sets these forwarding
providers once, and each `configure()` points them at fresh SDK providers, so tracers, meters and
instruments that other instrumentation obtained earlier follow the current configuration.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider
from opentelemetry.context import Context

# The API's own proxy meter re-creates every instrument on a new provider; it is what the global
# meter provider uses before one is set. We reuse it so that switching works more than once.
from opentelemetry.metrics._internal import _ProxyMeter, _ProxyMeterProvider
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.util import types

from inferwatch import errors
from inferwatch.export.otlp import otlp_exporter
from inferwatch.export.processors import (
    CountedBatchLogRecordProcessor,
    CountedBatchSpanProcessor,
    ScopeSpanProcessor,
)
from inferwatch.export.settings import Settings, resource
from inferwatch.semconv import EVENT_LOGS_DROPPED
from inferwatch.store import StoreLogExporter, StoreSpanExporter
from inferwatch.store.drops import QUEUE_FULL, DropReports


class SwitchingTracerProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.delegate: trace.TracerProvider = trace.NoOpTracerProvider()

    def use(self, delegate: trace.TracerProvider) -> None:
        self.delegate = delegate

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes | None = None,
    ) -> trace.Tracer:
        key = (instrumenting_module_name, instrumenting_library_version, schema_url, attributes)
        return _SwitchingTracer(self, key)

    def __getattr__(self, name: str) -> Any:  # add_span_processor, force_flush, ... of the SDK
        return getattr(self.delegate, name)


class _SwitchingTracer(trace.Tracer):
    def __init__(self, provider: SwitchingTracerProvider, key: tuple[Any, ...]) -> None:
        self._provider = provider
        self._key = key
        self._for: trace.TracerProvider | None = None
        self._tracer: trace.Tracer = trace.NoOpTracer()

    def _current(self) -> trace.Tracer:
        delegate = self._provider.delegate
        if delegate is not self._for:
            self._tracer = delegate.get_tracer(*self._key)
            self._for = delegate
        return self._tracer

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        return self._current().start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )

    @contextmanager
    def start_as_current_span(  # type: ignore[override]  # the API annotates a private type
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        with self._current().start_as_current_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
            end_on_exit,
        ) as span:
            yield span


class SwitchingMeterProvider(_ProxyMeterProvider):
    """Hands out proxy meters that follow every `use()`, not only the first one."""

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes | None = None,
    ) -> metrics.Meter:
        with self._lock:
            meter = _ProxyMeter(name, version=version, schema_url=schema_url)
            self._meters.append(meter)
            if self._real_meter_provider is not None:
                meter.on_set_meter_provider(self._real_meter_provider)
            return meter

    def use(self, delegate: metrics.MeterProvider) -> None:
        self.on_set_meter_provider(delegate)


switching_tracers = SwitchingTracerProvider()
switching_meters = SwitchingMeterProvider()
"""The global providers inferwatch installs once; each configuration points them anew."""
_log = logging.getLogger("inferwatch")


_SELF_METRICS = "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"


@contextmanager
def sdk_self_metrics(enabled: bool) -> Iterator[None]:
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


class Build:
    """Providers for one configuration: the application's own if it installed them, else ours.

    Batch processors and OTLP exporters get the meter provider, so queue drops and export
    failures are counted as the SDK's own `otel.sdk.*` metrics.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.resource = resource(settings)
        self.owned: list[Any] = []
        self.batch_processors: list[Any] = []
        self.metrics_exported = False
        """Whether the metrics go somewhere: an OTLP exporter, or the application's provider."""

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
                errors.log_internal_error(
                    "configure", RuntimeError(f"metric reader {reader!r} ignored: provider exists")
                )
            self.metrics_exported = True  # its readers are the application's business
            return global_meters
        readers = [*metric_readers]
        exporter = otlp_exporter(self.settings, "metrics")
        if exporter is not None:
            interval = self.settings.metric_export_interval_ms
            readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=interval))
            self.metrics_exported = True
        provider = MeterProvider(
            metric_readers=readers, resource=self.resource, shutdown_on_exit=False
        )
        self.owned.append(provider)
        if global_meters is not switching_meters:
            metrics.set_meter_provider(switching_meters)
        switching_meters.use(provider)
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
            exporter = otlp_exporter(settings, "traces", meter_provider)
            batch: BatchSpanProcessor | None = None
            options = {**self._batch_options("traces"), "meter_provider": meter_provider}
            if exporter is not None:
                batch = CountedBatchSpanProcessor(exporter, **options)
            elif settings.store is not None:  # spans it drops are counted in the store itself
                reports = DropReports(settings.store, self.resource)
                exporter = StoreSpanExporter(settings.store, drops=reports)
                batch = CountedBatchSpanProcessor(
                    exporter, on_drop=lambda: reports.count(1, QUEUE_FULL), **options
                )
            if batch is not None:
                provider.add_span_processor(batch)
                self.batch_processors.append(batch)
            self.owned.append(provider)
            if global_tracers is not switching_tracers:
                trace.set_tracer_provider(switching_tracers)
            switching_tracers.use(provider)
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
            exporter = otlp_exporter(self.settings, "logs", meter_provider)
            options = {**self._batch_options("logs"), "meter_provider": meter_provider}
            batch: BatchLogRecordProcessor | None = None
            if exporter is not None:
                batch = BatchLogRecordProcessor(exporter, **options)
            elif self.settings.store is not None:  # records it drops are counted in the store
                reports = DropReports(
                    self.settings.store, self.resource, EVENT_LOGS_DROPPED, "log records"
                )
                batch = CountedBatchLogRecordProcessor(
                    StoreLogExporter(self.settings.store, drops=reports),
                    on_drop=lambda: reports.count(1, QUEUE_FULL),
                    **options,
                )
            if batch is not None:
                provider.add_log_record_processor(batch)
                self.batch_processors.append(batch)
            self.owned.append(provider)
        for processor in log_processors:
            provider.add_log_record_processor(processor)
        return provider
