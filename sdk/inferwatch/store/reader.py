"""Reading the local store (or any file of OTLP/JSON lines, such as the collector's).

Readers never raise on damaged data: a torn last line (what a crash mid-write leaves) and
malformed lines are skipped and counted in a `ReadStats`. They read open segments as well as
closed ones, up to what has been written so far. For names and layout see `inferwatch.store`.

>>> stats = ReadStats()
>>> for span in iter_spans(".inferwatch", stats=stats): ...
>>> stats.torn, stats.malformed
"""

from __future__ import annotations

import base64
import errno
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferwatch.store.segments import CLOSED_SUFFIX, OPEN_SUFFIX, parse_segment_name

__all__ = [
    "ReadStats",
    "StoreNotFound",
    "decode_any_value",
    "iter_logs",
    "iter_requests",
    "iter_segments",
    "iter_spans",
    "read_lines",
]


class StoreNotFound(FileNotFoundError):
    """The store directory (or file) does not exist."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.message = (
            f"no inferwatch store at {os.fspath(path)!r}: it does not exist. The directory is "
            "created by the first export of a process configured without an OTLP endpoint; "
            "check the path (or $INFERWATCH_STORE) and that the application has exported "
            "telemetry (spans are exported in batches, at the latest on iw.shutdown())."
        )
        super().__init__(errno.ENOENT, self.message, os.fspath(path))

    def __str__(self) -> str:
        return self.message


@dataclass
class ReadStats:
    """What a read found: good lines, and the damaged ones it skipped."""

    segments: int = 0  # files read
    lines: int = 0  # complete, well-formed lines yielded
    malformed: int = 0  # lines that are not a JSON object (not at the end of a file)
    torn: int = 0  # a last line without its newline or that does not parse: a crash mid-write
    vanished: int = 0  # files deleted (retention) between listing and reading

    def add(self, other: ReadStats) -> None:
        self.segments += other.segments
        self.lines += other.lines
        self.malformed += other.malformed
        self.torn += other.torn
        self.vanished += other.vanished


def iter_segments(directory: str | os.PathLike[str], signal: str = "traces") -> list[Path]:
    """The segments of `signal` in a store directory, closed and open, oldest first.

    Raises `StoreNotFound` when the directory does not exist.
    """
    if signal not in ("traces", "logs"):
        raise ValueError(f"unknown signal {signal!r}; the store holds traces and logs")
    root = Path(directory)
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        raise StoreNotFound(root) from None
    except NotADirectoryError:
        raise NotADirectoryError(
            errno.ENOTDIR, f"{os.fspath(root)!r} is a file, not a store directory", str(root)
        ) from None
    segments: dict[str, Path] = {}
    for name in names:
        parsed = parse_segment_name(name)
        if parsed is None or parsed.signal != signal:
            continue
        # A listing taken during a rename may show both names: the closed one wins.
        if parsed.is_open and parsed.closed_name in segments:
            continue
        segments[parsed.closed_name] = root / name
    return [segments[key] for key in sorted(segments)]


def read_lines(
    path: str | os.PathLike[str], stats: ReadStats | None = None, *, missing_ok: bool = False
) -> Iterator[Any]:
    """The JSON objects of a JSON-lines file, skipping (and counting) damaged lines.

    An open segment that has been closed (renamed) since it was listed is followed. A missing
    file raises `StoreNotFound`, or with `missing_ok` (a segment that retention deleted since
    it was listed) counts as ``vanished``.
    """
    stats = stats if stats is not None else ReadStats()
    file = _open(Path(path))
    if file is None:
        if not missing_ok:
            raise StoreNotFound(path)
        stats.vanished += 1
        return
    stats.segments += 1
    with file:
        pending: bytes | None = None
        for line in file:
            if pending is not None:
                parsed = _parse(pending)
                if parsed is None:
                    stats.malformed += 1
                else:
                    stats.lines += 1
                    yield parsed
            pending = line if line.strip() else None
        if pending is None:
            return
        parsed = _parse(pending) if pending.endswith(b"\n") else None
        if parsed is None:
            stats.torn += 1
        else:
            stats.lines += 1
            yield parsed


def _open(path: Path) -> Any:
    try:
        return open(path, "rb")  # closed by the caller
    except FileNotFoundError:
        if path.name.endswith(OPEN_SUFFIX):  # closed since it was listed
            closed = path.with_name(path.name[: -len(OPEN_SUFFIX)] + CLOSED_SUFFIX)
            try:
                return open(closed, "rb")
            except FileNotFoundError:
                return None
        return None


def _parse(line: bytes) -> Any:
    try:
        value = json.loads(line)
    except ValueError:  # also UnicodeDecodeError
        return None
    return value if isinstance(value, dict) else None


def _paths(path: str | os.PathLike[str], signal: str) -> list[Path]:
    """A file as it is; for a directory, its segments of `signal`, then its other JSON files.

    Other ``*.json``/``*.jsonl`` files (say, the collector's output copied in) are read too:
    lines of another signal simply hold nothing of this one.
    """
    target = Path(path)
    if target.is_file():
        return [target]
    segments = iter_segments(target, signal)  # raises StoreNotFound
    foreign = sorted(
        p
        for p in target.iterdir()
        if p.suffix in (".json", ".jsonl") and parse_segment_name(p.name) is None and p.is_file()
    )
    return segments + foreign


def iter_requests(
    path: str | os.PathLike[str], signal: str = "traces", stats: ReadStats | None = None
) -> Iterator[dict[str, Any]]:
    """The export requests (one a line) in a store directory's segments or in one file."""
    paths = _paths(path, signal)  # raises StoreNotFound now, not on the first next()
    return _requests(paths, stats if stats is not None else ReadStats())


def _requests(paths: list[Path], stats: ReadStats) -> Iterator[dict[str, Any]]:
    for segment in paths:
        yield from read_lines(segment, stats, missing_ok=True)


# OTLP/JSON values


def decode_any_value(value: Any) -> Any:
    """An OTLP/JSON ``AnyValue`` as a Python value (``{}`` is None; bytes from base64)."""
    if not isinstance(value, dict) or not value:
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])  # also "NaN", "Infinity", "-Infinity"
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [decode_any_value(v) for v in (value["arrayValue"] or {}).get("values", ())]
    if "kvlistValue" in value:
        return decode_attributes((value["kvlistValue"] or {}).get("values"))
    if "bytesValue" in value:
        return base64.b64decode(value["bytesValue"])
    return None


def decode_attributes(attributes: Any) -> dict[str, Any]:
    """An OTLP/JSON ``KeyValue`` list as a dict."""
    decoded: dict[str, Any] = {}
    for item in attributes or ():
        if isinstance(item, dict) and "key" in item:
            decoded[item["key"]] = decode_any_value(item.get("value"))
    return decoded


def _id(value: Any, size: int) -> str | None:
    """A trace or span id as lowercase hex; None when absent. Also takes base64 ids."""
    if not value or not isinstance(value, str):
        return None
    if len(value) == 2 * size:
        return value.lower()
    try:  # a writer that left protobuf's bytes encoding in place
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return value.lower()
    return raw.hex() if len(raw) == size else value.lower()


def _nanos(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _scope_name(scope_entry: dict[str, Any]) -> tuple[str, str]:
    scope = scope_entry.get("scope") or {}
    return scope.get("name", ""), scope.get("version", "")


def iter_spans(
    path: str | os.PathLike[str], stats: ReadStats | None = None
) -> Iterator[dict[str, Any]]:
    """Every span in a store directory (or any OTLP/JSON traces file or directory), flattened.

    Each span is a dict: ``name, trace_id, span_id, parent_span_id`` (hex, None when absent),
    ``trace_state, kind`` (OTLP: 1 internal .. 5 consumer), ``start_ns, end_ns, status_code``
    (0 unset, 1 ok, 2 error), ``status_message, attributes, resource`` (dicts of Python
    values), ``scope, scope_version, events`` (``name, time_ns, attributes``), ``links``
    (``trace_id, span_id, attributes``). Raises `StoreNotFound` if `path` does not exist.
    """
    paths = _paths(path, "traces")
    return _spans(paths, stats if stats is not None else ReadStats())


def _flattened(
    paths: list[Path], stats: ReadStats, flatten: Callable[[dict[str, Any]], list[dict[str, Any]]]
) -> Iterator[dict[str, Any]]:
    for request in _requests(paths, stats):
        try:
            items = flatten(request)
        except (AttributeError, TypeError, ValueError, KeyError):  # JSON, but not OTLP
            stats.lines -= 1
            stats.malformed += 1
            continue
        yield from items


def _spans(paths: list[Path], stats: ReadStats) -> Iterator[dict[str, Any]]:
    return _flattened(paths, stats, _request_spans)


def _request_spans(request: dict[str, Any]) -> list[dict[str, Any]]:
    spans: list[dict[str, Any]] = []
    for resource_entry in request.get("resourceSpans") or ():
        resource = decode_attributes((resource_entry.get("resource") or {}).get("attributes"))
        for scope_entry in resource_entry.get("scopeSpans") or ():
            scope, scope_version = _scope_name(scope_entry)
            spans.extend(
                _span(span, resource, scope, scope_version)
                for span in scope_entry.get("spans") or ()
            )
    return spans


def _span(span: dict[str, Any], resource: dict[str, Any], scope: str, version: str) -> Any:
    status = span.get("status") or {}
    return {
        "name": span.get("name", ""),
        "trace_id": _id(span.get("traceId"), 16),
        "span_id": _id(span.get("spanId"), 8),
        "parent_span_id": _id(span.get("parentSpanId"), 8),
        "trace_state": span.get("traceState", ""),
        "kind": int(span.get("kind", 0)),
        "start_ns": _nanos(span.get("startTimeUnixNano")),
        "end_ns": _nanos(span.get("endTimeUnixNano")),
        "status_code": int(status.get("code", 0)),
        "status_message": status.get("message", ""),
        "attributes": decode_attributes(span.get("attributes")),
        "resource": resource,
        "scope": scope,
        "scope_version": version,
        "events": [
            {
                "name": event.get("name", ""),
                "time_ns": _nanos(event.get("timeUnixNano")),
                "attributes": decode_attributes(event.get("attributes")),
            }
            for event in span.get("events") or ()
        ],
        "links": [
            {
                "trace_id": _id(link.get("traceId"), 16),
                "span_id": _id(link.get("spanId"), 8),
                "attributes": decode_attributes(link.get("attributes")),
            }
            for link in span.get("links") or ()
        ],
    }


def iter_logs(
    path: str | os.PathLike[str], stats: ReadStats | None = None
) -> Iterator[dict[str, Any]]:
    """Every log record in a store directory (or any OTLP/JSON logs file or directory), flattened.

    Each record is a dict: ``time_ns, observed_time_ns, severity_number, severity_text, body``
    (a Python value), ``attributes, trace_id, span_id`` (hex, None when absent), ``flags,
    event_name, resource, scope, scope_version``. Raises `StoreNotFound` if `path` does not
    exist.
    """
    paths = _paths(path, "logs")
    return _logs(paths, stats if stats is not None else ReadStats())


def _logs(paths: list[Path], stats: ReadStats) -> Iterator[dict[str, Any]]:
    return _flattened(paths, stats, _request_logs)


def _request_logs(request: dict[str, Any]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for resource_entry in request.get("resourceLogs") or ():
        resource = decode_attributes((resource_entry.get("resource") or {}).get("attributes"))
        for scope_entry in resource_entry.get("scopeLogs") or ():
            scope, scope_version = _scope_name(scope_entry)
            records.extend(
                _log(record, resource, scope, scope_version)
                for record in scope_entry.get("logRecords") or ()
            )
    return records


def _log(record: dict[str, Any], resource: dict[str, Any], scope: str, version: str) -> Any:
    return {
        "time_ns": _nanos(record.get("timeUnixNano")),
        "observed_time_ns": _nanos(record.get("observedTimeUnixNano")),
        "severity_number": int(record.get("severityNumber", 0)),
        "severity_text": record.get("severityText", ""),
        "body": decode_any_value(record.get("body")),
        "attributes": decode_attributes(record.get("attributes")),
        "trace_id": _id(record.get("traceId"), 16),
        "span_id": _id(record.get("spanId"), 8),
        "flags": int(record.get("flags", 0)),
        "event_name": record.get("eventName", ""),
        "resource": resource,
        "scope": scope,
        "scope_version": version,
    }
