"""Spans that did not reach the store, reported in the store: what a query over them must say.

Log records that did not reach it are counted and reported the same way, as
``inferwatch.logs.dropped`` events (`iw.query`'s log searches name them).

A span can fail to reach the local store two ways: its batch processor's queue was full (the
writer fell behind a burst; counted exactly by `export.processors.CountedBatchSpanProcessor`) or
the disk refused the write (counted by the `StoreSpanExporter`). Either way `DropReports` has it,
and writes one log event per cause into the store's ``logs`` segments (after an export, at most
once a second, and at shutdown):

    inferwatch.spans.dropped  {inferwatch.dropped.count: 1830, .reason: "queue_full",
                               .first_time_unix_nano: ..., process.pid: 4242, ...}

timestamped with the last drop, under the process's own resource. `iw.query` reads these
(`inferwatch.query.sql.dropped_query`) and every slice, bubble-up and outlier list over a window
they overlap says how many spans of it are missing. (Over OTLP the SDK's own metrics count
drops: ``otel.sdk.processor.span.processed`` with ``error.type``.)
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any

from inferwatch import errors, forks, semconv
from inferwatch.store.encode import encode_event_json
from inferwatch.store.writer import SegmentWriter

QUEUE_FULL = "queue_full"
REPORT_EVERY_S = 1.0
"""A burst of drops becomes one report a second (and a last one at shutdown), not one a batch."""

_REPORTS: weakref.WeakSet[DropReports] = weakref.WeakSet()


class DropReports:
    """Counts spans (or log records) lost on the way to a store directory; writes the counts
    into it as ``event`` records."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        resource: Any,
        event: str = semconv.EVENT_SPANS_DROPPED,
        what: str = "spans",
    ) -> None:
        self._directory = directory
        self._resource = resource
        self.event, self.what = event, what
        self._lock = threading.Lock()
        self._pending: dict[str, list[int]] = {}  # reason -> [count, first ns, last ns]
        self._writer: SegmentWriter | None = None
        self._written_at = -REPORT_EVERY_S
        _REPORTS.add(self)

    def seen(self, resource: Any) -> None:
        """The resource of the spans exported (a forked child's own ``service.instance.id``)."""
        self._resource = resource

    def count(self, n: int, reason: str) -> None:
        now = time.time_ns()
        with self._lock:
            entry = self._pending.get(reason)
            if entry is None:
                self._pending[reason] = [n, now, now]
            else:
                entry[0] += n
                entry[2] = now

    def write(self, final: bool = False) -> None:
        """Write what was counted since the last report, at most once a second unless
        ``final`` (kept for the next one if the write fails)."""
        now = time.monotonic()
        with self._lock:
            if not self._pending or (not final and now - self._written_at < REPORT_EVERY_S):
                return
            self._written_at = now
            pending, self._pending = self._pending, {}
        for reason, (count, first, last) in pending.items():
            try:
                self._write_one(reason, count, first, last)
            except Exception as exc:  # the disk, most likely: try again after the next export
                errors.log_internal_error("store.drops", exc)
                with self._lock:
                    entry = self._pending.setdefault(reason, [0, first, last])
                    entry[0] += count
                    entry[1] = min(entry[1], first)

    def close(self) -> None:
        self.write(final=True)
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception as exc:
                errors.log_internal_error("store.drops", exc)

    def _write_one(self, reason: str, count: int, first: int, last: int) -> None:
        if self._writer is None:
            self._writer = SegmentWriter(self._directory, "logs")
        attributes: dict[str, Any] = {
            semconv.ATTR_DROPPED_COUNT: count,
            semconv.ATTR_DROPPED_REASON: reason,
            semconv.ATTR_DROPPED_FIRST: first,
            "process.pid": os.getpid(),
        }
        instance = self._resource.attributes.get(semconv.SERVICE_INSTANCE_ID)
        if instance is not None:
            attributes[semconv.SERVICE_INSTANCE_ID] = instance
        body = f"{count} {self.what} did not reach the store ({reason})"
        line = encode_event_json(
            self._resource, semconv.INSTRUMENTATION_NAME, last, self.event, body, attributes
        )
        self._writer.write_line(line)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._pending = {}  # the parent's drops are the parent's to report
        self._writer = None


def _after_fork_in_child() -> None:
    for reports in list(_REPORTS):
        reports._after_fork_in_child()


forks.on_fork_in_child(_after_fork_in_child)
