"""The span processors inferwatch adds: the scope stamp on every tracer provider it uses (its own
or the app's), and the batch processor of its own pipelines."""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from inferwatch import errors, semconv
from inferwatch.instrument.context import current_scope
from inferwatch.summaries.data_checks import RateLimiter

_log = logging.getLogger("inferwatch")


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
    its worker takes spans meanwhile, so a drop can be counted that did not happen, and one can
    happen that is not counted. Here the queue has no ``maxlen`` (`_DropCounter`): a span that
    finds it at its bound is dropped and counted, in the SDK's metric and by ``on_drop`` (the
    local store's report), and nothing else drops one. Should the SDK's internals change shape,
    nothing is replaced (said once in the log) and the SDK counts alone.
    """

    def __init__(
        self, exporter: Any, on_drop: Callable[[], None] | None = None, **options: Any
    ) -> None:
        super().__init__(exporter, **options)
        self._counter = _DropCounter(self, BatchSpanProcessor.on_end, on_drop, "spans")

    def on_end(self, span: ReadableSpan) -> None:
        self._counter.add(span, span.context.trace_flags.sampled)


class CountedBatchLogRecordProcessor(BatchLogRecordProcessor):
    """The SDK's batch log processor, with every record its full queue drops counted exactly
    (as `CountedBatchSpanProcessor` does for spans): ``on_drop`` is called once per record."""

    def __init__(
        self, exporter: Any, on_drop: Callable[[], None] | None = None, **options: Any
    ) -> None:
        super().__init__(exporter, **options)
        self._counter = _DropCounter(self, BatchLogRecordProcessor.on_emit, on_drop, "log records")

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self._counter.add(log_record)


class _DropCounter:
    """Adds to a batch processor's queue with the SDK's ``emit`` (its ``on_end`` / ``on_emit``)
    unless the queue holds its bound already: then the item is dropped here, counted in the
    SDK's metric and by ``on_drop``, and said in the log (a line a minute at most).

    The queue put in place of the SDK's has no ``maxlen``, so it drops nothing unseen, and no
    lock is taken on the way in: two threads adding at once may take it one past its bound. (A
    lock held while adding and taken by the export worker for every item it took made serving
    threads and the worker convoy on it: two threads ended half the spans per second of one,
    benchmarks/bench_export_queue.py.)
    """

    def __init__(
        self,
        processor: Any,
        emit: Callable[[Any, Any], None],
        on_drop: Callable[[], None] | None,
        items: str,
    ) -> None:
        self._processor = processor
        self._emit = emit
        self._on_drop = on_drop
        self._items = items
        self._inner: Any = None
        self._limit = 0
        self._queue = self._unbounded_queue()
        self._said = RateLimiter(60.0)

    def add(self, item: Any, counts: bool = True) -> None:
        queue = self._queue
        # (after shutdown the SDK drops, and counts, whatever comes)
        if queue is not None and len(queue) >= self._limit and counts and not self._inner._shutdown:
            self._drop()
            return
        self._emit(self._processor, item)

    def _drop(self) -> None:
        inner = self._inner
        # The SDK's emit wakes the worker when it finds it asleep on a full batch (a wake-up
        # can be missed: its worker clears the event after exporting); a dropped item must too.
        awaken = inner._worker_awaken  # (a forked child has a new one)
        if not awaken.is_set():
            awaken.set()
        inner._metrics.drop_items(1)
        if self._on_drop is not None:
            self._on_drop()
        held_back = self._said.allow(("export.queue_full", self._items))
        if held_back is not None:
            _log.warning(
                "inferwatch: the export queue is full (%d): %d %s dropped since the last such "
                "line, each counted", self._limit, held_back + 1, self._items,
            )  # fmt: skip

    def _unbounded_queue(self) -> deque[Any] | None:
        """Put a deque without ``maxlen`` in place of the SDK batch processor's queue and take
        over its bound (None, said once in the log, if the SDK's internals are not what they
        were)."""
        inner: Any = getattr(self._processor, "_batch_processor", None)  # the SDK's
        queue = getattr(inner, "_queue", None)
        if (
            isinstance(queue, deque)
            and queue.maxlen is not None
            and not queue
            and isinstance(getattr(inner, "_max_queue_size", None), int)
            and hasattr(getattr(inner, "_metrics", None), "drop_items")
            and isinstance(getattr(inner, "_shutdown", None), bool)
            and isinstance(getattr(inner, "_worker_awaken", None), threading.Event)
        ):
            self._inner, self._limit = inner, queue.maxlen
            unbounded: deque[Any] = deque()
            inner._queue = unbounded
            inner._max_queue_size = sys.maxsize  # the SDK's own "full" check: never (it is ours)
            return unbounded
        errors.log_internal_error(
            "export.batch", RuntimeError("unknown SDK batch queue: drops counted by the SDK")
        )
        return None
