"""The local store writer: OTLP/JSON lines in per-process segment files.

This is where telemetry goes when no OTLP endpoint is configured. The format is the one the
OpenTelemetry Collector ``file`` exporter writes (``format: json``): one complete OTLP/JSON
export request per line, ``{"resourceSpans":[...]}`` for traces and ``{"resourceLogs":[...]}``
for logs, encoded by the OTLP/JSON rules (lowerCamelCase names; trace and span ids as lowercase
hex; enums as integers; 64-bit integers such as timestamps and ``intValue`` as strings; bytes
as base64). Any tool that reads the collector's files reads these, and the other way round.

Layout of a store directory (created ``0o700``; files are ``0o600``)::

    traces-20250101T120000-4242-9f86d081.open.jsonl   open: process 4242 is appending to it
    traces-20250101T115500-4242-3a7bd3e2.jsonl        closed: complete, never written again
    logs-20250101T120000-4242-5e2c8b0a.open.jsonl

A name is ``<signal>-<UTC start, yyyymmddTHHMMSS>-<writer pid>-<random hex>`` followed by
``.open.jsonl`` while the segment is being written and ``.jsonl`` once it is closed. Each
process has its own open segment per signal (no two processes ever append to the same file),
so many workers write side by side without locks. Names sort by start time. A ``*.jsonl`` glob
sees both open and closed segments; readers tell them apart by the ``.open`` infix.

Closing a segment (on rotation and on shutdown) is: ``fsync``, ``close``, rename
``.open.jsonl`` to ``.jsonl`` and ``fsync`` the directory, so a closed segment is complete and
durable. A segment is rotated before a write that would take it past ``max_segment_bytes`` or
once it is older than ``max_segment_age_s`` (checked on each write: an idle process keeps its
segment open). Each line goes to disk with a single ``os.write`` on a descriptor opened
``O_APPEND``: a process that crashes or is killed can only leave its *last* line torn, which
readers skip and count. Data in the page cache survives a process crash; the ``fsync`` on
rotation, ``force_flush`` and shutdown protects against losing the machine.

Retention runs when a segment is first opened and whenever one is closed: closed segments of
the signal whose last write is older than ``retention_s`` are deleted, then the oldest closed
segments until the signal's segments total at most ``max_total_bytes``. Open segments are never
deleted. An open segment whose writer process no longer exists (``kill(pid, 0)`` fails) and
that was last written more than ``max_segment_age_s`` ago is left over from a crash: it is
renamed to its closed name ("sealed"), and readers may treat it as closed too. (The pid test
assumes the writers share a pid namespace, e.g. not several containers sharing one volume.)

After ``os.fork()`` the child never touches the parent's segment: its next write opens a segment
of its own (``os.register_at_fork``).

The default directory is ``$INFERWATCH_STORE``, else ``./.inferwatch`` (`default_directory`),
where ``iw.query.open()`` looks.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from inferwatch import errors, forks
from inferwatch.store.encode import (
    Grouper,
    encode_logs_json,
    encode_logs_protobuf,
    encode_spans_json,
    encode_spans_protobuf,
)
from inferwatch.store.segments import (
    CLOSED_SUFFIX,
    DEFAULT_MAX_SEGMENT_AGE_S,
    DEFAULT_MAX_SEGMENT_BYTES,
    DEFAULT_RETENTION_S,
    OPEN_SUFFIX,
    Signal,
    default_directory,
    parse_segment_name,
    pid_alive,
    validate_signal,
)

if TYPE_CHECKING:
    from inferwatch.store.drops import DropReports

WRITE_FAILED = "write_failed"
"""Why spans did not reach the store (`store.drops`): the disk refused them."""

# Writers alive in this process, so that a forked child can drop its parent's segments.
_WRITERS: weakref.WeakSet[SegmentWriter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for writer in list(_WRITERS):
        writer._forget_after_fork()


forks.on_fork_in_child(_after_fork_in_child)


class SegmentWriter:
    """Appends lines to this process's open segment of one signal in a store directory.

    Thread-safe. ``write_line`` raises ``OSError`` when the disk does; the exporters turn that
    into a failed export. See the module docstring for names, rotation and retention.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        signal: str = "traces",
        *,
        max_segment_bytes: int = DEFAULT_MAX_SEGMENT_BYTES,
        max_segment_age_s: float = DEFAULT_MAX_SEGMENT_AGE_S,
        retention_s: float | None = DEFAULT_RETENTION_S,
        max_total_bytes: int | None = None,
    ) -> None:
        if max_segment_bytes <= 0:
            raise ValueError(f"max_segment_bytes must be positive, not {max_segment_bytes}")
        if max_segment_age_s <= 0:
            raise ValueError(f"max_segment_age_s must be positive, not {max_segment_age_s}")
        if retention_s is not None and retention_s <= 0:
            raise ValueError(f"retention_s must be positive or None, not {retention_s}")
        if max_total_bytes is not None and max_total_bytes <= 0:
            raise ValueError(f"max_total_bytes must be positive or None, not {max_total_bytes}")
        self.directory = Path(directory)
        self.signal: Signal = validate_signal(signal)
        self.max_segment_bytes = max_segment_bytes
        self.max_segment_age_s = max_segment_age_s
        self.retention_s = retention_s
        self.max_total_bytes = max_total_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._opened_at = 0.0
        self._closed = False
        self._retention_checked = False
        self.segments_opened = 0
        self.lines_written = 0
        self.bytes_written = 0
        _WRITERS.add(self)

    @property
    def path(self) -> Path | None:
        """The open segment of this process, if one is open."""
        return self._path

    @property
    def closed(self) -> bool:
        return self._closed

    def write_line(self, line: bytes) -> None:
        """Append one line (without its newline; it must not contain one) to the open segment."""
        if b"\n" in line:
            raise ValueError("a store line cannot contain a newline")
        data = line + b"\n"
        with self._lock:
            if self._closed:
                raise ValueError("the store writer is closed")
            fd = self._fd
            if fd is not None and (
                (self._size > 0 and self._size + len(data) > self.max_segment_bytes)
                or time.monotonic() - self._opened_at >= self.max_segment_age_s
            ):
                self._close_segment()
                fd = None
            if fd is None:
                fd = self._open_segment()
            try:
                written = os.write(fd, data)
                while written < len(data):  # short write: e.g. the disk filled up
                    more = os.write(fd, data[written:])
                    if more <= 0:
                        raise OSError(f"short write to {self._path}")
                    written += more
            except OSError:
                # The segment may now end in a torn line: never append after it.
                self._close_segment(retention=False)
                raise
            self._size += len(data)
            self.lines_written += 1
            self.bytes_written += len(data)

    def flush(self) -> None:
        """``fsync`` the open segment."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)

    def rotate(self) -> None:
        """Close the open segment now; the next write opens a new one."""
        with self._lock:
            if self._fd is not None:
                self._close_segment()

    def close(self) -> None:
        """Close the open segment (``fsync``, rename to closed). Later writes raise."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._fd is not None:
                self._close_segment()
        _WRITERS.discard(self)

    def enforce_retention(self) -> list[Path]:
        """Seal stale segments of dead writers, delete expired and surplus closed segments."""
        with self._lock:
            return self._enforce_retention()

    # Internals; called with the lock held.

    def _open_segment(self) -> int:
        _ensure_directory(self.directory)
        started = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for attempt in range(3):
            name = f"{self.signal}-{started}-{os.getpid()}-{os.urandom(4).hex()}{OPEN_SUFFIX}"
            path = self.directory / name
            try:
                fd = os.open(path, flags, 0o600)
                break
            except FileExistsError:  # the same random token twice in a second: draw again
                if attempt == 2:
                    raise
        if hasattr(os, "fchmod"):
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o600)  # exactly, whatever the umask
        self._fd, self._path, self._size = fd, path, 0
        self._opened_at = time.monotonic()
        self.segments_opened += 1
        if not self._retention_checked:
            self._retention_checked = True
            self._retention_quietly()
        return fd

    def _close_segment(self, retention: bool = True) -> None:
        fd, path = self._fd, self._path
        self._fd, self._path, self._size = None, None, 0
        if fd is None or path is None:
            return
        try:
            os.fsync(fd)
        except OSError as exc:  # e.g. the disk is full; the segment is closed all the same
            errors.log_internal_error("store.fsync", exc)
        with contextlib.suppress(OSError):
            os.close(fd)
        try:
            os.replace(path, path.with_name(path.name[: -len(OPEN_SUFFIX)] + CLOSED_SUFFIX))
            _fsync_directory(path.parent)
        except OSError as exc:  # the data written so far stays readable under its open name
            errors.log_internal_error("store.close", exc)
        if retention:
            self._retention_quietly()

    def _retention_quietly(self) -> None:
        try:
            self._enforce_retention()
        except OSError as exc:
            errors.log_internal_error("store.retention", exc)

    def _enforce_retention(self) -> list[Path]:
        now = time.time()
        mine = self._path
        closed: list[tuple[str, Path, os.stat_result]] = []
        open_bytes = 0
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        for entry in entries:
            parsed = parse_segment_name(entry.name)
            if parsed is None or parsed.signal != self.signal:
                continue
            path = Path(entry.path)
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue
            if parsed.is_open and (
                path == mine
                or now - stat.st_mtime <= self.max_segment_age_s
                or pid_alive(parsed.pid)
            ):
                open_bytes += stat.st_size
                continue
            if parsed.is_open:  # a dead writer's segment: seal it
                sealed = path.with_name(parsed.closed_name)
                try:
                    os.replace(path, sealed)
                except FileNotFoundError:
                    continue
                path = sealed
            closed.append((parsed.closed_name, path, stat))
        closed.sort()
        deleted: list[Path] = []
        total = open_bytes + sum(stat.st_size for _, _, stat in closed)
        for _, path, stat in closed:
            expired = self.retention_s is not None and now - stat.st_mtime > self.retention_s
            surplus = self.max_total_bytes is not None and total > self.max_total_bytes
            if not (expired or surplus):
                continue
            with contextlib.suppress(FileNotFoundError):  # another process's retention did it
                path.unlink()
            total -= stat.st_size
            deleted.append(path)
        return deleted

    def _forget_after_fork(self) -> None:
        """In a forked child: leave the parent's segment to the parent."""
        self._lock = threading.Lock()
        fd = self._fd
        self._fd, self._path, self._size = None, None, 0
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def _ensure_directory(directory: Path) -> None:
    if directory.is_dir():
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        return
    os.chmod(directory, 0o700)  # exactly, whatever the umask


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Exporters

Encoding = Literal["direct", "protobuf"]


class _StoreExporter:
    """What the span and log exporters share: a writer, counters, never raising."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None,
        signal: Signal,
        writer: SegmentWriter | None,
        encoding: Encoding,
        writer_options: dict[str, Any],
    ) -> None:
        if encoding not in ("direct", "protobuf"):
            raise ValueError(f"unknown encoding {encoding!r}; use 'direct' or 'protobuf'")
        if writer is None:
            writer = SegmentWriter(
                default_directory() if directory is None else directory, signal, **writer_options
            )
        elif directory is not None or writer_options:
            raise ValueError("give either a writer or a directory and writer options, not both")
        self.writer = writer
        self.encoding = encoding
        self._grouper = Grouper()
        self._shutdown = False
        self.exported = 0  # records written
        self.failed = 0  # records not written
        self.failed_exports = 0  # export calls that failed
        self.drops: DropReports | None = None
        """Where records that could not be written are counted and reported (`store.drops`)."""

    def _export(self, records: Sequence[Any]) -> bool:
        """Write ``records``; count those the disk refused in the drop reports."""
        written = self._write(records)
        drops = self.drops
        if drops is not None:
            if records:
                drops.seen(records[0].resource)
            if not written:
                drops.count(len(records), WRITE_FAILED)
            drops.write()
        return written

    def _write(self, records: Sequence[Any]) -> bool:
        if self._shutdown:
            self.failed += len(records)
            self.failed_exports += 1
            return False
        if not records:
            return True
        try:
            self.writer.write_line(self._encode(records))
        except Exception as exc:
            self.failed += len(records)
            self.failed_exports += 1
            errors.log_internal_error(f"store.export.{self.writer.signal}", exc)
            return False
        self.exported += len(records)
        return True

    def _encode(self, records: Sequence[Any]) -> bytes:
        raise NotImplementedError

    def _shutdown_writer(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        try:
            self.writer.close()
        except Exception as exc:
            errors.log_internal_error("store.shutdown", exc)
        if self.drops is not None:
            self.drops.close()

    def _flush(self) -> bool:
        try:
            self.writer.flush()
        except Exception as exc:
            errors.log_internal_error("store.flush", exc)
            return False
        return True


class StoreSpanExporter(_StoreExporter, SpanExporter):
    """Writes spans to the local store, one OTLP/JSON ``ExportTraceServiceRequest`` a line.

    Pair it with a ``BatchSpanProcessor``: each export call becomes one line. ``export`` never
    raises; failures return ``FAILURE`` and are counted (``failed``, ``failed_exports``).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        writer: SegmentWriter | None = None,
        encoding: Encoding = "direct",
        drops: DropReports | None = None,
        **writer_options: Any,
    ) -> None:
        super().__init__(directory, "traces", writer, encoding, writer_options)
        self.drops = drops

    def _encode(self, records: Sequence[Any]) -> bytes:
        if self.encoding == "protobuf":
            return encode_spans_protobuf(records)
        return encode_spans_json(records, self._grouper)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        written = self._export(spans)
        return SpanExportResult.SUCCESS if written else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._shutdown_writer()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._flush()


class StoreLogExporter(_StoreExporter, LogRecordExporter):
    """Writes log records to the local store, one OTLP/JSON ``ExportLogsServiceRequest`` a line.

    Pair it with a ``BatchLogRecordProcessor``. ``export`` never raises.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        writer: SegmentWriter | None = None,
        encoding: Encoding = "direct",
        drops: DropReports | None = None,
        **writer_options: Any,
    ) -> None:
        super().__init__(directory, "logs", writer, encoding, writer_options)
        self.drops = drops

    def _encode(self, records: Sequence[Any]) -> bytes:
        if self.encoding == "protobuf":
            return encode_logs_protobuf(records)
        return encode_logs_json(records, self._grouper)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        ok = self._export(batch)
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        self._shutdown_writer()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._flush()
