"""Delayed labels for queries: the ``ml.feedback`` log records, wherever they are stored.

`iw.feedback` emits one OTel log record per label. In the local store these are lines of the
``logs-*`` segments; `StoreLabels` keeps the feedback records of closed segments in a chDB table
(converted once per process, like the spans) and reads open segments live. On a ClickHouse server
they are rows of the collector exporter's ``otel_logs`` table. Either way the relation has the
``otel_logs`` columns the join needs (`sql.LOG_COLUMNS`), and `sql.labelled_spans` joins it to the
spans by request id, so ``outcome="wrong"`` sees labels that arrived after the spans were written.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from inferwatch.query import sql
from inferwatch.query.engines import IngestStats, _escaped, _file

LOGS_PREFIX = "logs"
"""Log files are the store's ``logs-*`` segments and other OTLP/JSON files named ``logs*``."""


def _valid_log_lines(path: Path) -> str:
    """OTLP/JSON log rows of the lines of a file that are whole JSON (torn ones skipped)."""
    schema = f"Tuple({sql.OTLP_JSON_LOGS_SCHEMA})"
    return (
        f"(SELECT JSONExtract(line, '{schema}').1 AS resourceLogs "
        f"FROM {_file(path, 'LineAsString')} WHERE isValidJSON(line))"
    )


class StoreLabels:
    """The feedback records of a store directory, as an ``otel_logs``-shaped chDB relation."""

    # Per table (the table outlives any one engine): log files converted, with size and mtime.
    _ingested: ClassVar[dict[str, dict[Path, tuple[int, int]]]] = {}
    _stats: ClassVar[dict[str, IngestStats]] = {}
    _lock = threading.Lock()

    def __init__(self, session: Any, database: str, directory: Path) -> None:
        self._session = session
        self.directory = directory
        self.table = f"{database}.feedback"
        self.stats = StoreLabels._stats.setdefault(self.table, IngestStats())
        session.query(
            f"CREATE TABLE IF NOT EXISTS {self.table} (Segment LowCardinality(String), "
            "Timestamp DateTime64(9), EventName LowCardinality(String), "
            "LogAttributes Map(LowCardinality(String), String)"
            ") ENGINE = MergeTree ORDER BY Timestamp"
        )

    def _files(self) -> tuple[list[Path], list[Path]]:
        """(closed, open) log files of the directory."""
        closed: list[Path] = []
        live: list[Path] = []
        for path in sorted(self.directory.rglob(f"{LOGS_PREFIX}*.json*")):
            if path.is_file() and ".cache" not in path.parts:
                (live if ".open." in path.name else closed).append(path)
        return closed, live

    def relation(self) -> str:
        """A FROM expression of `sql.LOG_COLUMNS`, current as of this call."""
        with StoreLabels._lock:
            closed, live = self._files()
            seen = StoreLabels._ingested.setdefault(self.table, {})
            for gone in set(seen) - set(closed):
                self._forget(gone)
            for path in closed:
                self._ingest(path)
            self.stats.live_segments = [str(p) for p in live]
        if not live:
            return self.table
        parts = [f"SELECT {sql.LOG_COLUMNS} FROM {self.table}"]
        parts += [sql.otlp_json_feedback(_valid_log_lines(path)) for path in live]
        return "(" + "\nUNION ALL\n".join(parts) + ")"

    def _ingest(self, path: Path) -> None:
        seen = StoreLabels._ingested[self.table]
        stat = path.stat()
        version = (stat.st_size, stat.st_mtime_ns)
        if seen.get(path) == version:
            return
        if path in seen:  # appended to since: read it again
            self._forget(path)
        self._session.query(
            f"INSERT INTO {self.table} SELECT {{segment:String}} AS Segment, {sql.LOG_COLUMNS} "
            f"FROM ({sql.otlp_json_feedback(_valid_log_lines(path))})",
            params=_escaped({"segment": str(path)}),
        )
        self.stats.segments += path not in seen
        seen[path] = version

    def _forget(self, path: Path) -> None:
        self._session.query(
            f"DELETE FROM {self.table} WHERE Segment = {{segment:String}}",
            params=_escaped({"segment": str(path)}),
        )
        StoreLabels._ingested[self.table].pop(path, None)
