"""Global tracer and meter providers that can be re-pointed when `configure()` runs again.

OpenTelemetry lets each global provider be set once per process. inferwatch sets these forwarding
providers once, and each `configure()` points them at fresh SDK providers, so tracers, meters and
instruments that other instrumentation obtained earlier follow the current configuration.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context

# The API's own proxy meter re-creates every instrument on a new provider; it is what the global
# meter provider uses before one is set. We reuse it so that switching works more than once.
from opentelemetry.metrics._internal import _ProxyMeter, _ProxyMeterProvider
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.util import types


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
            name, context, kind, attributes, links, start_time, record_exception,
            set_status_on_exception,
        )  # fmt: skip

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
            name, context, kind, attributes, links, start_time, record_exception,
            set_status_on_exception, end_on_exit,
        ) as span:  # fmt: skip
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
