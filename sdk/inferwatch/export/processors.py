"""The span processors inferwatch adds: the scope stamp on every tracer provider it uses (its own
or the app's), and the batch processor of its own pipelines."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from inferwatch import errors, forks, semconv
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


class CountedBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor, with every span its full queue drops counted exactly.

    The SDK's processor checks whether its queue (a ``deque(maxlen=...)``) is full, counts a drop
    (``otel.sdk.processor.span.processed`` with ``error.type=queue_full``), then adds the span;
    its worker takes spans meanwhile, so a drop can be counted that did not happen and a backend
    adding up received, dropped and failed spans sees more than were made. Here adding a span
    and the worker taking one are under one lock (`_LockedQueue`): the SDK's count is exact, and
    ``on_drop`` (the local store's report) is called once per span dropped. Should the SDK's
    internals change shape, nothing is replaced (said once in the log) and the SDK counts alone.
    """

    def __init__(
        self, exporter: Any, on_drop: Callable[[], None] | None = None, **options: Any
    ) -> None:
        super().__init__(exporter, **options)
        self._on_drop = on_drop
        self._locked: _LockedQueue | None = None
        inner = getattr(self, "_batch_processor", None)  # the SDK's shared batch processor
        queue = getattr(inner, "_queue", None)
        if isinstance(queue, deque) and queue.maxlen is not None and not queue:
            self._locked = inner._queue = _LockedQueue(queue.maxlen)  # type: ignore[union-attr]
        else:
            errors.log_internal_error(
                "export.batch", RuntimeError("unknown SDK batch queue: drops counted by the SDK")
            )

    def on_end(self, span: ReadableSpan) -> None:
        queue = self._locked
        if queue is None:
            super().on_end(span)
            return
        with queue.guard.lock:
            full = len(queue) == queue.maxlen
            super().on_end(span)  # the SDK's emit: its "full" check cannot go stale now
        if (
            full
            and self._on_drop is not None
            and span.context.trace_flags.sampled
            and not getattr(self._batch_processor, "_shutdown", False)
        ):
            self._on_drop()


class _LockedQueue(deque):  # type: ignore[type-arg]
    """The batch processor's queue, whose worker takes spans under `CountedBatchSpanProcessor`'s
    lock."""

    def __init__(self, maxlen: int) -> None:
        super().__init__((), maxlen)
        self.guard = _Guard()

    def pop(self) -> Any:  # type: ignore[override]  # a deque's takes no index
        with self.guard.lock:
            return super().pop()


class _Guard:
    """The queue's lock, renewed in a forked child (the worker may hold it at fork time; a
    deque, compared by contents, cannot be registered for that itself)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        forks.renew_lock_after_fork(self)

    @property
    def lock(self) -> threading.Lock:
        return self._lock
