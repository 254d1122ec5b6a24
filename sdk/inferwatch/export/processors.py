"""The span processors inferwatch adds: the scope stamp on every tracer provider it uses (its own
or the app's), and the batch processor of its own pipelines."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from inferwatch import errors, forks, semconv
from inferwatch.instrument.context import current_scope


class ScopeSpanProcessor(SpanProcessor):
    """Stamps the current scope's request id and tags on every span at start."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        scope = current_scope()
        if scope is None:
            return
        # inferwatch's own spans carry the scope from their start already (told apart by their
        # tracer first: cheaper than a look into the attributes, on every inference).
        if span.instrumentation_scope.name == semconv.INSTRUMENTATION_NAME:  # type: ignore[union-attr]
            return
        if semconv.ML_REQUEST_ID not in (span.attributes or ()):
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
        self._counter = _DropCounter(self, BatchSpanProcessor.on_end, on_drop)

    def on_end(self, span: ReadableSpan) -> None:
        self._counter.add(span, span.context.trace_flags.sampled)


class CountedBatchLogRecordProcessor(BatchLogRecordProcessor):
    """The SDK's batch log processor, with every record its full queue drops counted exactly
    (as `CountedBatchSpanProcessor` does for spans): ``on_drop`` is called once per record."""

    def __init__(
        self, exporter: Any, on_drop: Callable[[], None] | None = None, **options: Any
    ) -> None:
        super().__init__(exporter, **options)
        self._counter = _DropCounter(self, BatchLogRecordProcessor.on_emit, on_drop)

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self._counter.add(log_record)


class _DropCounter:
    """Adds to a batch processor's queue with the SDK's ``emit`` (its ``on_end`` / ``on_emit``)
    under the queue's lock, so its "full" check cannot go stale, and calls ``on_drop`` for each
    item the full queue dropped (not after shutdown, when the SDK drops everything)."""

    def __init__(
        self,
        processor: Any,
        emit: Callable[[Any, Any], None],
        on_drop: Callable[[], None] | None,
    ) -> None:
        self._processor = processor
        self._emit = emit
        self._on_drop = on_drop
        self._queue = _locked_queue(processor)

    def add(self, item: Any, counts: bool = True) -> None:
        queue = self._queue
        if queue is None:
            self._emit(self._processor, item)
            return
        with queue.guard.lock:
            full = len(queue) == queue.maxlen
            self._emit(self._processor, item)
        if (
            full
            and counts
            and self._on_drop is not None
            and not getattr(self._processor._batch_processor, "_shutdown", False)
        ):
            self._on_drop()


def _locked_queue(processor: Any) -> _LockedQueue | None:
    """Put a `_LockedQueue` in place of the SDK batch processor's queue (None, said once in the
    log, if the SDK's internals are not what they were)."""
    inner = getattr(processor, "_batch_processor", None)  # the SDK's shared batch processor
    queue = getattr(inner, "_queue", None)
    if isinstance(queue, deque) and queue.maxlen is not None and not queue:
        locked = _LockedQueue(queue.maxlen)
        inner._queue = locked  # type: ignore[union-attr]
        return locked
    errors.log_internal_error(
        "export.batch", RuntimeError("unknown SDK batch queue: drops counted by the SDK")
    )
    return None


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
