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

import base64
import contextlib
import importlib
import json
import math
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from inferwatch import _internal

Signal = Literal["traces", "logs"]
SIGNALS: tuple[Signal, ...] = ("traces", "logs")
OPEN_SUFFIX = ".open.jsonl"
CLOSED_SUFFIX = ".jsonl"
DEFAULT_MAX_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_SEGMENT_AGE_S = 300.0
DEFAULT_RETENTION_S = 7 * 24 * 3600.0
STORE_DIR_ENV = "INFERWATCH_STORE"  # as `inferwatch.query.open()` reads it
DEFAULT_DIRECTORY = ".inferwatch"

_NAME = re.compile(
    r"^(?P<signal>traces|logs)-(?P<started>\d{8}T\d{6})-(?P<pid>\d+)-(?P<token>[0-9a-f]+)"
    r"(?P<suffix>\.open\.jsonl|\.jsonl)$"
)
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def default_directory() -> Path:
    """``$INFERWATCH_STORE`` if set, else ``./.inferwatch`` (where `iw.query.open()` looks)."""
    return Path(os.environ.get(STORE_DIR_ENV) or DEFAULT_DIRECTORY).expanduser().absolute()


@dataclass(frozen=True)
class SegmentName:
    """The parts of a segment file name."""

    signal: Signal
    started: str  # UTC, yyyymmddTHHMMSS
    pid: int
    token: str
    is_open: bool

    @property
    def closed_name(self) -> str:
        return f"{self.signal}-{self.started}-{self.pid}-{self.token}{CLOSED_SUFFIX}"

    @property
    def open_name(self) -> str:
        return f"{self.signal}-{self.started}-{self.pid}-{self.token}{OPEN_SUFFIX}"


def parse_segment_name(name: str) -> SegmentName | None:
    """The parts of a segment's file name, or None for a file that is not a segment."""
    match = _NAME.match(name)
    if match is None:
        return None
    signal: Signal = "traces" if match["signal"] == "traces" else "logs"
    return SegmentName(
        signal, match["started"], int(match["pid"]), match["token"], match["suffix"] == OPEN_SUFFIX
    )


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (in our pid namespace)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill would stop the process there: assume it lives
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, but belongs to another user
        return True
    except OSError:
        return False
    return True


def is_stale(path: Path, max_segment_age_s: float = DEFAULT_MAX_SEGMENT_AGE_S) -> bool:
    """An open segment left behind by a dead process: readers may treat it as closed."""
    parsed = parse_segment_name(path.name)
    if parsed is None or not parsed.is_open or pid_alive(parsed.pid):
        return False
    try:
        return time.time() - path.stat().st_mtime > max_segment_age_s
    except FileNotFoundError:  # renamed or deleted meanwhile
        return False


def _validate_signal(signal: str) -> Signal:
    if signal == "traces":
        return "traces"
    if signal == "logs":
        return "logs"
    raise ValueError(f"unknown signal {signal!r}; the store holds {' and '.join(SIGNALS)}")


# Writers alive in this process, so that a forked child can drop its parent's segments.
_WRITERS: weakref.WeakSet[SegmentWriter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for writer in list(_WRITERS):
        writer._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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
        self.signal: Signal = _validate_signal(signal)
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
            _internal.log_internal_error("store.fsync", exc)
        with contextlib.suppress(OSError):
            os.close(fd)
        try:
            os.replace(path, path.with_name(path.name[: -len(OPEN_SUFFIX)] + CLOSED_SUFFIX))
            _fsync_directory(path.parent)
        except OSError as exc:  # the data written so far stays readable under its open name
            _internal.log_internal_error("store.close", exc)
        if retention:
            self._retention_quietly()

    def _retention_quietly(self) -> None:
        try:
            self._enforce_retention()
        except OSError as exc:
            _internal.log_internal_error("store.retention", exc)

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
# OTLP/JSON encoding, written directly from the SDK's readable spans and log records as JSON
# text. It is what `MessageToDict(encode_spans(spans), use_integers_for_enums=True)` gives once
# the ids are turned into hex (`encode_spans_protobuf`, the reference the tests compare with),
# about eight times faster (~14 us against ~120 us for a span of 15 attributes, in batches of
# 512). Empty and zero fields are left out, as proto3's JSON mapping does.

_json_str: Callable[[str], str] = json.encoder.encode_basestring_ascii  # '"..."', ASCII only
_DUMPS = json.JSONEncoder(separators=(",", ":")).encode
_KEYS: dict[str, str] = {}  # attribute key -> '{"key":"<key>","value":'


def _key(key: str) -> str:
    prefix = _KEYS.get(key)
    if prefix is None:
        if len(_KEYS) >= 4096:
            _KEYS.clear()
        prefix = _KEYS[key] = '{"key":' + _json_str(key) + ',"value":'
    return prefix


def _value_json(value: Any) -> str:
    """An attribute value as OTLP/JSON ``AnyValue`` text."""
    kind = type(value)
    if kind is str:
        return '{"stringValue":' + _json_str(value) + "}"
    if kind is bool:
        return '{"boolValue":true}' if value else '{"boolValue":false}'
    if kind is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return '{"intValue":"' + int.__repr__(value) + '"}'
        raise ValueError(f"integer {value} does not fit in 64 bits")
    if kind is float:
        if math.isfinite(value):
            return '{"doubleValue":' + float.__repr__(value) + "}"
        return '{"doubleValue":"' + _non_finite(value) + '"}'
    return _DUMPS(_any_value(value))


def _any_value(value: Any) -> dict[str, Any]:
    """An attribute value as an OTLP/JSON ``AnyValue`` dict (for nested and unusual values)."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": bool(value)}
    if isinstance(value, str):
        return {"stringValue": str(value)}
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return {"intValue": str(int(value))}
        raise ValueError(f"integer {value} does not fit in 64 bits")
    if isinstance(value, float):
        number = float(value)
        return {"doubleValue": number if math.isfinite(number) else _non_finite(number)}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Sequence):
        values = [_any_value(v) for v in value]
        return {"arrayValue": {"values": values} if values else {}}
    if isinstance(value, Mapping):
        pairs = [{"key": str(k), "value": _any_value(v)} for k, v in value.items()]
        return {"kvlistValue": {"values": pairs} if pairs else {}}
    raise TypeError(f"invalid attribute value type {type(value).__name__}")


def _non_finite(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _attributes(attributes: Mapping[str, Any] | None) -> str:
    """A ``KeyValue`` list as JSON text; "" when there is nothing to write."""
    if not attributes:
        return ""
    parts = []
    keys, json_str = _KEYS, _json_str
    for key, value in attributes.items():  # the common types inline: this is the hot loop
        prefix = keys.get(key) or _key(key)
        kind = type(value)
        if kind is str:
            parts.append(prefix + '{"stringValue":' + json_str(value) + "}}")
        elif kind is int and _INT64_MIN <= value <= _INT64_MAX:
            parts.append(prefix + '{"intValue":"' + int.__repr__(value) + '"}}')
        elif kind is float and value - value == 0.0:  # finite
            parts.append(prefix + '{"doubleValue":' + float.__repr__(value) + "}}")
        else:
            try:
                parts.append(prefix + _value_json(value) + "}")
            except (TypeError, ValueError) as exc:  # as the OTLP exporters do: skip it
                _internal.log_internal_error("store.encode", exc)
    return "[" + ",".join(parts) + "]" if parts else ""


def _scope(scope: Any) -> str:
    if scope is None:
        return "{}"
    parts = []
    if scope.name:
        parts.append('"name":' + _json_str(scope.name))
    if scope.version:
        parts.append('"version":' + _json_str(scope.version))
    attributes = _attributes(scope.attributes)
    if attributes:
        parts.append('"attributes":' + attributes)
    return "{" + ",".join(parts) + "}"


def _resource(resource: Any) -> str:
    attributes = _attributes(resource.attributes)
    return '{"attributes":' + attributes + "}" if attributes else "{}"


class _Grouper:
    """Groups records by resource, then scope, as the OTLP encoders do; caches their encoding."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Any, str]] = {}

    def encoded(self, thing: Any, encode: Callable[[Any], str]) -> str:
        hit = self._cache.get(id(thing))
        if hit is not None and hit[0] is thing:
            return hit[1]
        if len(self._cache) >= 64:
            self._cache.clear()
        value = encode(thing)
        self._cache[id(thing)] = (thing, value)  # holding `thing` keeps its id from being reused
        return value

    def group(
        self, records: Iterable[Any], encode: Callable[[Any], str]
    ) -> list[tuple[Any, list[tuple[Any, list[str]]]]]:
        by_resource: dict[int, tuple[Any, dict[Any, list[str]]]] = {}
        for record in records:
            resource = record.resource
            slot = by_resource.get(id(resource))
            if slot is None:
                slot = by_resource[id(resource)] = (resource, {})
            scope = record.instrumentation_scope or None
            slot[1].setdefault(scope, []).append(encode(record))
        groups: list[tuple[Any, dict[Any, list[str]]]] = []
        for resource, scopes in by_resource.values():  # merge equal resources (rare)
            for known, known_scopes in groups:
                if known == resource:
                    for scope, items in scopes.items():
                        known_scopes.setdefault(scope, []).extend(items)
                    break
            else:
                groups.append((resource, scopes))
        return [(resource, list(scopes.items())) for resource, scopes in groups]

    def request(
        self, records: Iterable[Any], encode: Callable[[Any], str], names: tuple[str, str, str]
    ) -> bytes:
        outer, middle, inner = names
        resources = []
        for resource, scopes in self.group(records, encode):
            scope_parts = []
            for scope, items in scopes:
                part = f'{{"scope":{self.encoded(scope, _scope)},"{inner}":[{",".join(items)}]'
                if scope is not None and scope.schema_url:
                    part += ',"schemaUrl":' + _json_str(scope.schema_url)
                scope_parts.append(part + "}")
            part = f'{{"resource":{self.encoded(resource, _resource)},"{middle}":['
            part += ",".join(scope_parts) + "]"
            if resource.schema_url:
                part += ',"schemaUrl":' + _json_str(resource.schema_url)
            resources.append(part + "}")
        return f'{{"{outer}":[{",".join(resources)}]}}'.encode("ascii")


def _span(span: ReadableSpan) -> str:
    context = span.get_span_context()
    if context is None:
        raise ValueError(f"span {span.name!r} has no span context")
    parts = [f'{{"traceId":"{context.trace_id:032x}","spanId":"{context.span_id:016x}"']
    trace_state = context.trace_state
    if trace_state:
        state = ",".join(f"{k}={v}" for k, v in trace_state.items())
        parts.append(',"traceState":' + _json_str(state))
    parent = span.parent
    if parent is not None:
        parts.append(f',"parentSpanId":"{parent.span_id:016x}"')
    if span.name:
        parts.append(',"name":' + _json_str(span.name))
    # SDK kinds count from INTERNAL=0, OTLP's from INTERNAL=1 (0 is "unspecified").
    parts.append(f',"kind":{span.kind.value + 1}')
    if span.start_time:
        parts.append(f',"startTimeUnixNano":"{span.start_time}"')
    if span.end_time:
        parts.append(f',"endTimeUnixNano":"{span.end_time}"')
    attributes = _attributes(span.attributes)
    if attributes:
        parts.append(',"attributes":' + attributes)
    if span.dropped_attributes:
        parts.append(f',"droppedAttributesCount":{span.dropped_attributes}')
    if span.events:
        events = []
        for event in span.events:
            fields = []
            if event.timestamp:
                fields.append(f'"timeUnixNano":"{event.timestamp}"')
            if event.name:
                fields.append('"name":' + _json_str(event.name))
            attributes = _attributes(event.attributes)
            if attributes:
                fields.append('"attributes":' + attributes)
            if event.dropped_attributes:
                fields.append(f'"droppedAttributesCount":{event.dropped_attributes}')
            events.append("{" + ",".join(fields) + "}")
        parts.append(',"events":[' + ",".join(events) + "]")
    if span.dropped_events:
        parts.append(f',"droppedEventsCount":{span.dropped_events}')
    if span.links:
        links = []
        for link in span.links:
            linked = link.context
            item = f'{{"traceId":"{linked.trace_id:032x}","spanId":"{linked.span_id:016x}"'
            attributes = _attributes(link.attributes)
            if attributes:
                item += ',"attributes":' + attributes
            if link.dropped_attributes:
                item += f',"droppedAttributesCount":{link.dropped_attributes}'
            links.append(item + f',"flags":{0x300 if linked.is_remote else 0x100}}}')
        parts.append(',"links":[' + ",".join(links) + "]")
    if span.dropped_links:
        parts.append(f',"droppedLinksCount":{span.dropped_links}')
    status = span.status
    code = status.status_code.value
    fields = []
    if status.description:
        fields.append('"message":' + _json_str(status.description))
    if code:
        fields.append(f'"code":{code}')
    parts.append(',"status":{' + ",".join(fields) + "}")
    # SpanFlags: "has is_remote" always, "is_remote" for a remote parent.
    parts.append(',"flags":768}' if parent is not None and parent.is_remote else ',"flags":256}')
    return "".join(parts)


def _log_record(readable: ReadableLogRecord) -> str:
    record = readable.log_record
    parts = []
    if record.timestamp:
        parts.append(f'"timeUnixNano":"{record.timestamp}"')
    severity = getattr(record.severity_number, "value", None)
    if severity:
        parts.append(f'"severityNumber":{int(severity)}')
    if record.severity_text:
        parts.append('"severityText":' + _json_str(record.severity_text))
    try:
        body = _value_json(record.body)
    except (TypeError, ValueError):  # where the protobuf encoder would fail the whole batch
        body = '{"stringValue":' + _json_str(repr(record.body)) + "}"
    parts.append('"body":' + body)
    attributes = _attributes(record.attributes)
    if attributes:
        parts.append('"attributes":' + attributes)
    if readable.dropped_attributes:
        parts.append(f'"droppedAttributesCount":{readable.dropped_attributes}')
    flags = int(record.trace_flags) if record.trace_flags is not None else 0
    if flags:
        parts.append(f'"flags":{flags}')
    if record.trace_id:
        parts.append(f'"traceId":"{record.trace_id:032x}"')
    if record.span_id:
        parts.append(f'"spanId":"{record.span_id:016x}"')
    if record.observed_timestamp:
        parts.append(f'"observedTimeUnixNano":"{record.observed_timestamp}"')
    if record.event_name:
        parts.append('"eventName":' + _json_str(record.event_name))
    return "{" + ",".join(parts) + "}"


_SPAN_NAMES = ("resourceSpans", "scopeSpans", "spans")
_LOG_NAMES = ("resourceLogs", "scopeLogs", "logRecords")


def encode_spans_json(spans: Sequence[ReadableSpan], grouper: _Grouper | None = None) -> bytes:
    """One OTLP/JSON ``ExportTraceServiceRequest`` line (no newline) for these spans."""
    return (grouper or _Grouper()).request(spans, _span, _SPAN_NAMES)


def encode_logs_json(
    records: Sequence[ReadableLogRecord], grouper: _Grouper | None = None
) -> bytes:
    """One OTLP/JSON ``ExportLogsServiceRequest`` line (no newline) for these log records."""
    return (grouper or _Grouper()).request(records, _log_record, _LOG_NAMES)


# The reference encoding: the OTLP exporters' protobuf messages, through protobuf's JSON mapping.


def _message_to_dict(message: Any) -> dict[str, Any]:
    json_format: Any = importlib.import_module("google.protobuf.json_format")
    result: dict[str, Any] = json_format.MessageToDict(message, use_integers_for_enums=True)
    return result


def _hex_ids(item: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        value = item.get(key)
        if value:
            item[key] = base64.b64decode(value).hex()


def encode_spans_protobuf(spans: Sequence[ReadableSpan]) -> bytes:
    """As `encode_spans_json`, via ``encode_spans`` and ``MessageToDict`` (slower)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    request = _message_to_dict(encode_spans(spans))
    for resource in request.get("resourceSpans", ()):
        for scope in resource.get("scopeSpans", ()):
            for span in scope.get("spans", ()):
                _hex_ids(span, ("traceId", "spanId", "parentSpanId"))
                for link in span.get("links", ()):
                    _hex_ids(link, ("traceId", "spanId"))
    return _DUMPS(request).encode("utf-8")


def encode_logs_protobuf(records: Sequence[ReadableLogRecord]) -> bytes:
    """As `encode_logs_json`, via ``encode_logs`` and ``MessageToDict`` (slower)."""
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

    request = _message_to_dict(encode_logs(records))
    for resource in request.get("resourceLogs", ()):
        for scope in resource.get("scopeLogs", ()):
            for record in scope.get("logRecords", ()):
                _hex_ids(record, ("traceId", "spanId"))
    return _DUMPS(request).encode("utf-8")


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
        self._grouper = _Grouper()
        self._shutdown = False
        self.exported = 0  # records written
        self.failed = 0  # records not written
        self.failed_exports = 0  # export calls that failed

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
            _internal.log_internal_error(f"store.export.{self.writer.signal}", exc)
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
            _internal.log_internal_error("store.shutdown", exc)

    def _flush(self) -> bool:
        try:
            self.writer.flush()
        except Exception as exc:
            _internal.log_internal_error("store.flush", exc)
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
        **writer_options: Any,
    ) -> None:
        super().__init__(directory, "traces", writer, encoding, writer_options)

    def _encode(self, records: Sequence[Any]) -> bytes:
        if self.encoding == "protobuf":
            return encode_spans_protobuf(records)
        return encode_spans_json(records, self._grouper)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS if self._write(spans) else SpanExportResult.FAILURE

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
        **writer_options: Any,
    ) -> None:
        super().__init__(directory, "logs", writer, encoding, writer_options)

    def _encode(self, records: Sequence[Any]) -> bytes:
        if self.encoding == "protobuf":
            return encode_logs_protobuf(records)
        return encode_logs_json(records, self._grouper)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        ok = self._write(batch)
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        self._shutdown_writer()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._flush()
