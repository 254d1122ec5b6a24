"""Delayed labels for queries: the ``ml.feedback`` log records, wherever they are stored.

`iw.feedback` emits one OTel log record per label. In the local store these are lines of the
``logs-*`` segments; `StoreLabels` keeps the feedback records of closed segments in a chDB table
(converted once per process, like the spans) and reads open segments live. On a ClickHouse server
they are rows of the collector exporter's ``otel_logs`` table. Either way the relation has the
``otel_logs`` columns the join needs (`sql.LOG_COLUMNS`), and `sql.labelled_spans` joins it to the
spans by request id, so ``outcome="wrong"`` sees labels that arrived after the spans were written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inferwatch.query import sql
from inferwatch.query.engines import SegmentTable, file_table

LOGS_PREFIX = "logs"
"""Log files are the store's ``logs-*`` segments and other OTLP/JSON files named ``logs*``."""


def _valid_log_lines(path: Path) -> str:
    """OTLP/JSON log rows of the lines of a file that are whole JSON (torn ones skipped)."""
    schema = f"Tuple({sql.OTLP_JSON_LOGS_SCHEMA})"
    return (
        f"(SELECT JSONExtract(line, '{schema}').1 AS resourceLogs "
        f"FROM {file_table(path, 'LineAsString')} WHERE isValidJSON(line))"
    )


class StoreLabels:
    """The feedback records of a store directory (and its reports of dropped spans,
    `sql.STORE_EVENTS`), as an ``otel_logs``-shaped chDB relation."""

    def __init__(self, session: Any, database: str, directory: Path) -> None:
        self._logs = SegmentTable(
            session,
            f"{database}.feedback",
            "Timestamp DateTime64(9), EventName LowCardinality(String), "
            "LogAttributes Map(LowCardinality(String), String)",
            "Timestamp",
            sql.LOG_COLUMNS,
            lambda path: sql.otlp_json_events(_valid_log_lines(path)),
            lambda path: path.name.startswith(LOGS_PREFIX),
            directory,
        )
        self.table = self._logs.table
        self.stats = self._logs.stats

    def relation(self) -> str:
        """A FROM expression of `sql.LOG_COLUMNS`, current as of this call."""
        return self._logs.relation()
