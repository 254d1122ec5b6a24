"""Where queries run: chDB (ClickHouse in-process) over OTLP JSON, or a ClickHouse server.

Both engines take the same SQL text with ``{name:Type}`` parameters. The chDB engine converts
closed segment files into a MergeTree table once per process (the first query pays for it) and
reads still-open segments live, skipping (and counting) malformed or torn lines.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from inferwatch.query import sql

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GLOB = re.compile(r"[*?{}\[\]]")
# A torn last line (crash mid-write) or a stray malformed one must not fail the whole query.
_LENIENT = "input_format_allow_errors_ratio = 1, input_format_allow_errors_num = 1000000000"
_NUMBERS = "output_format_json_quote_64bit_integers = 0"


class Engine(Protocol):
    def relation(self) -> str:
        """A FROM expression with the otel_traces columns, current as of this call."""

    def query(self, text: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Rows of a query whose parameters are bound by the engine, never pasted."""


def identifier(name: str, what: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{what} {name!r} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
    return name


def _quote_path(path: Path) -> str:
    text = str(path)
    if _GLOB.search(text):
        raise ValueError(f"segment path {text!r} contains glob characters ClickHouse would expand")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def file_table(path: Path, fmt: str = "JSONEachRow", structure: str | None = None) -> str:
    """A ``file(...)`` table function of ``path`` (OTLP/JSON rows unless ``structure`` given)."""
    if structure is None and fmt == "JSONEachRow":
        structure = sql.OTLP_JSON_SCHEMA
    schema = f", '{structure}'" if structure else ""
    return f"file({_quote_path(path)}, '{fmt}'{schema})"


def _valid_lines(path: Path) -> str:
    """OTLP/JSON rows of the lines of a file that are whole JSON documents (torn ones skipped)."""
    schema = f"Tuple({sql.OTLP_JSON_SCHEMA})"
    return (
        f"(SELECT JSONExtract(line, '{schema}').1 AS resourceSpans "
        f"FROM {file_table(path, 'LineAsString')} WHERE isValidJSON(line))"
    )


@dataclass
class IngestStats:
    """What the chDB engine has read: segments, lines, and the lines it had to skip."""

    segments: int = 0
    lines: int = 0
    skipped_lines: int = 0
    live_segments: list[str] = field(default_factory=list)


class _ChdbSession:
    """chDB allows one embedded server per process: one session, one database per store."""

    _lock = threading.Lock()
    _session: Any = None

    @classmethod
    def get(cls) -> Any:
        with cls._lock:
            if cls._session is None:
                from chdb import session

                path = tempfile.mkdtemp(prefix="inferwatch-chdb-")
                cls._session = session.Session(path)  # type: ignore[no-untyped-call]
                atexit.register(shutil.rmtree, path, ignore_errors=True)
            return cls._session


def chdb_session() -> Any:
    """The process's chDB session (chDB runs one embedded server per process)."""
    return _ChdbSession.get()


class SegmentTable:
    """One kind of segment file of a directory (trace or log segments) as a chDB relation.

    Closed segments are converted into a MergeTree table once per process (with their size and
    mtime, so a rewritten one is read again and a deleted one dropped); open segments, still
    being appended to, are read live. Lines that are not whole JSON (a torn write) are skipped
    and counted.
    """

    # Per table, as the table outlives any one engine: segments converted, what was read.
    _ingested: ClassVar[dict[str, dict[Path, tuple[int, int]]]] = {}
    _stats: ClassVar[dict[str, IngestStats]] = {}
    _lock = threading.Lock()

    def __init__(
        self,
        session: Any,
        table: str,
        ddl: str,
        order_by: str,
        columns: str,
        rows: Callable[[Path], str],
        wanted: Callable[[Path], bool],
        directory: Path,
    ) -> None:
        self._session = session
        self.table = table
        self._columns = columns
        self._rows = rows  # segment file -> a SELECT of `columns` over its whole JSON lines
        self._wanted = wanted
        self.directory = directory
        self.stats = SegmentTable._stats.setdefault(table, IngestStats())
        session.query(
            f"CREATE TABLE IF NOT EXISTS {table} (Segment LowCardinality(String), {ddl}) "
            f"ENGINE = MergeTree ORDER BY ({order_by})"
        )

    def _segments(self) -> tuple[list[Path], list[Path]]:
        """(closed, open) segments. Open ones are still being appended to."""
        closed: list[Path] = []
        live: list[Path] = []
        for path in sorted(self.directory.rglob("*.json*")):
            if path.is_file() and ".cache" not in path.parts and self._wanted(path):
                (live if ".open." in path.name else closed).append(path)
        return closed, live

    def relation(self) -> str:
        """A FROM expression of the columns, current as of this call."""
        with SegmentTable._lock:
            closed, live = self._segments()
            seen = SegmentTable._ingested.setdefault(self.table, {})
            for gone in set(seen) - set(closed):  # deleted by retention, or renamed
                self._forget(gone)
            for path in closed:
                self._ingest(path)
            self.stats.live_segments = [str(p) for p in live]
        if not live:
            return self.table
        parts = [f"SELECT {self._columns} FROM {self.table}"]
        parts += [self._rows(path) for path in live]
        return "(" + "\nUNION ALL\n".join(parts) + ")"

    def _ingest(self, path: Path) -> None:
        seen = SegmentTable._ingested[self.table]
        stat = path.stat()
        version = (stat.st_size, stat.st_mtime_ns)
        if seen.get(path) == version:
            return
        if path in seen:  # appended to since: read it again
            self._forget(path)
        # Line by line, skipping what is not whole JSON (a torn write), rather than the typed
        # JSONEachRow reader, which can swallow the line after a torn one: measured faster too.
        self._session.query(
            f"INSERT INTO {self.table} SELECT {{segment:String}} AS Segment, {self._columns} "
            f"FROM ({self._rows(path)})",
            params=_escaped({"segment": str(path)}),
        )
        text = (
            f"SELECT countIf(line != ''), countIf(isValidJSON(line)) "
            f"FROM {file_table(path, 'LineAsString')}"
        )
        line = self._session.query(text, "CSV").bytes().decode().strip() or "0,0"
        lines, valid = (int(value) for value in line.split(","))
        self.stats.segments += path not in seen
        seen[path] = version
        self.stats.lines += lines
        self.stats.skipped_lines += lines - valid

    def _forget(self, path: Path) -> None:
        """Drop a segment's rows: it changed, or retention deleted the file."""
        self._session.query(
            f"DELETE FROM {self.table} WHERE Segment = {{segment:String}}",
            params=_escaped({"segment": str(path)}),
        )
        SegmentTable._ingested[self.table].pop(path, None)


_SPANS_DDL = (
    "Timestamp DateTime64(9), TraceId String, SpanId String, ParentSpanId String, "
    "SpanName LowCardinality(String), ServiceName LowCardinality(String), "
    "ResourceAttributes Map(LowCardinality(String), String), ScopeName String, "
    "SpanAttributes Map(LowCardinality(String), String), Duration UInt64, "
    "StatusCode LowCardinality(String), StatusMessage String"
)


_LOGS_DDL = (
    "Timestamp DateTime64(9), TraceId String, SpanId String, TraceFlags UInt8, "
    "SeverityText LowCardinality(String), SeverityNumber UInt8, "
    "ServiceName LowCardinality(String), Body String, "
    "ResourceAttributes Map(LowCardinality(String), String), ScopeName String, "
    "LogAttributes Map(LowCardinality(String), String), EventName LowCardinality(String)"
)
LOGS_PREFIX = "logs"
"""Log files are the store's ``logs-*`` segments and other OTLP/JSON files named ``logs*``."""


def _trace_segment(path: Path) -> bool:
    return "log" not in path.name.split("-")[0]


def _log_segment(path: Path) -> bool:
    return path.name.startswith(LOGS_PREFIX)


def _valid_log_lines(path: Path) -> str:
    """OTLP/JSON log rows of the lines of a file that are whole JSON (torn ones skipped)."""
    schema = f"Tuple({sql.OTLP_JSON_LOGS_SCHEMA})"
    return (
        f"(SELECT JSONExtract(line, '{schema}').1 AS resourceLogs "
        f"FROM {file_table(path, 'LineAsString')} WHERE isValidJSON(line))"
    )


class ChdbEngine:
    """The local store, or any directory of OTLP JSON traces files, queried with chDB."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).expanduser().resolve()
        if not self.directory.is_dir():
            raise FileNotFoundError(
                f"no telemetry store at {without_credentials(str(self.directory))!r}: run a "
                "monitored service without an OTLP endpoint to create it, or pass a directory of "
                "OTLP JSON files"
            )
        digest = hashlib.sha1(str(self.directory).encode()).hexdigest()[:12]
        self._database = f"store_{digest}"
        self._session = _ChdbSession.get()
        self._session.query(f"CREATE DATABASE IF NOT EXISTS {self._database}")
        self._spans = SegmentTable(
            self._session,
            f"{self._database}.spans",
            _SPANS_DDL,
            "ServiceName, SpanName, Timestamp",
            sql.SPAN_COLUMNS,
            lambda path: sql.otlp_json_spans(_valid_lines(path)),
            _trace_segment,
            self.directory,
        )
        self.stats = self._spans.stats
        self._logs = SegmentTable(
            self._session,
            f"{self._database}.logs",
            _LOGS_DDL,
            "Timestamp",
            sql.LOG_COLUMNS,
            lambda path: sql.otlp_json_logs(_valid_log_lines(path)),
            _log_segment,
            self.directory,
        )
        self.logs_stats = self._logs.stats
        """What was read of the log segments (by `logs_relation`)."""

    def relation(self) -> str:
        return self._spans.relation()

    def logs_relation(self) -> str:
        """The store's log records with the otel_logs columns (`sql.LOG_COLUMNS`): the
        application's lines, inferwatch's events, delayed labels, reports of dropped spans."""
        return self._logs.relation()

    def query(self, text: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return _chdb_rows(self._session, f"{text}\nSETTINGS {_LENIENT}, {_NUMBERS}", params)


# ClickHouse's escaped text form: (character, escape).
_ESCAPE_PAIRS = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\0", "\\0"))
_ESCAPES = str.maketrans(dict(_ESCAPE_PAIRS))
_UNESCAPES = {escaped: plain for plain, escaped in _ESCAPE_PAIRS}
_ESCAPED = re.compile(r"\\[\\tnr0]")


def escape_text(text: str) -> str:
    """``text`` in ClickHouse's escaped text form (TSV fields, chDB parameter values)."""
    return text.translate(_ESCAPES)


def unescape_text(text: str) -> str:
    """The inverse of `escape_text`."""
    return _ESCAPED.sub(lambda match: _UNESCAPES[match.group()], text)


def _escaped(params: dict[str, Any]) -> dict[str, Any]:
    """chDB reads parameter values in ClickHouse's escaped text form: escape strings for it."""
    return {k: escape_text(v) if isinstance(v, str) else v for k, v in params.items()}


def _chdb_rows(session: Any, text: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    data = json.loads(session.query(text, "JSONCompact", params=_escaped(params)).bytes() or b"{}")
    return [tuple(row) for row in data.get("data", [])]


def _qualified(table: str) -> str:
    database, _, name = table.rpartition(".")
    return ".".join(identifier(p, "table") for p in (database, name) if p)


class ChdbTableEngine:
    """An otel_traces table inside the chDB session (tests: the exporter's exact DDL)."""

    def __init__(self, table: str, logs_table: str | None = None) -> None:
        self._table = _qualified(table)
        self._logs = None if logs_table is None else _qualified(logs_table)
        self.database = self._table.rpartition(".")[0] or "default"
        self._session = _ChdbSession.get()

    def __repr__(self) -> str:
        return f"ChdbTableEngine({self._table})"

    def relation(self) -> str:
        return self._table

    def logs_relation(self) -> str | None:
        """The exporter's ``otel_logs`` table, where delayed labels are, if one was given."""
        return self._logs

    def query(self, text: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return _chdb_rows(self._session, f"{text}\nSETTINGS {_NUMBERS}", params)

    def command(self, text: str, params: dict[str, Any]) -> None:
        """A statement without rows (DDL, INSERT), parameters bound."""
        self._session.query(text, params=_escaped(params))


class ClickHouseEngine:
    """A ClickHouse server where the collector's ClickHouse exporter writes ``otel_traces``.

    ``clickhouse://user:password@host:8123/database?table=otel_traces&secure=1``; user and
    password may also come from ``CLICKHOUSE_USER`` / ``CLICKHOUSE_PASSWORD``. Credentials are
    never part of this object's repr or of any message. Delayed labels are read from the
    exporter's logs table, ``?logs_table=otel_logs`` by default.
    """

    def __init__(self, url: str) -> None:
        address, user, password = _split_credentials(url)
        parts = urlsplit(address)
        if parts.scheme not in ("clickhouse", "clickhouses"):
            raise ValueError(f"not a clickhouse:// URL (scheme {parts.scheme!r})")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        database = identifier(parts.path.strip("/") or "otel", "database")
        table = identifier(options.get("table", "otel_traces"), "table")
        self.database = database
        self._table = f"{database}.{table}"
        self._logs = f"{database}.{identifier(options.get('logs_table', 'otel_logs'), 'table')}"
        self._logs_exist: bool | None = None
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 8123
        secure = parts.scheme == "clickhouses" or options.get("secure") in ("1", "true")
        import clickhouse_connect

        self._client = clickhouse_connect.get_client(
            host=self.host,
            port=self.port,
            username=user or os.environ.get("CLICKHOUSE_USER", "default"),
            password=password or os.environ.get("CLICKHOUSE_PASSWORD", ""),
            database=database,
            secure=secure,
        )

    def __repr__(self) -> str:
        return f"ClickHouseEngine({self.host}:{self.port}, {self._table})"

    def logs_relation(self) -> str | None:
        """The exporter's logs table (``?logs_table=``, default otel_logs), None if missing."""
        if self._logs_exist is None:
            rows = self._client.query(f"EXISTS TABLE {self._logs}").result_rows
            self._logs_exist = bool(rows and rows[0][0])
        return self._logs if self._logs_exist else None

    def relation(self) -> str:
        return self._table

    def query(self, text: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._client.query(text, parameters=params).result_rows]

    def command(self, text: str, params: dict[str, Any]) -> None:
        """A statement without rows (DDL, INSERT), parameters bound."""
        self._client.command(text, parameters=params)


def _split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``(url without user info, user, password)``, user and password percent-decoded.

    The user info ends at the *last* ``@`` (no database, table or option name holds one), so a
    password with an unescaped ``/``, ``?``, ``#`` or ``:`` stays whole and out of the host,
    port, path and of every message about them.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url, None, None
    userinfo, _, address = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return f"{scheme}://{address}", unquote(user) or None, unquote(password) if colon else None


def without_credentials(location: str) -> str:
    """A store location fit for a message: anything before an ``@`` (user info) masked."""
    _, at, address = location.rpartition("@")
    return f"***@{address}" if at else location
