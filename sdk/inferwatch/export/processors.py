"""The span processor inferwatch adds to every tracer provider it uses, its own or the app's."""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from inferwatch import semconv
from inferwatch.instrument.context import current_scope


class ScopeSpanProcessor(SpanProcessor):
    """Stamps the current scope's request id and tags on every span at start."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        scope = current_scope()
        # inferwatch's own spans carry the scope from their start already.
        if scope is not None and semconv.ML_REQUEST_ID not in (span.attributes or ()):
            span.set_attributes(scope.attributes)

    def on_end(self, span: ReadableSpan) -> None:
        return None
