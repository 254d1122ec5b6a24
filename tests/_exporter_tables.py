"""The OTel Collector ClickHouse exporter's tables in chDB, filled from a store as it fills them.

The tables are made with the exporter's exact DDL (collector_config/clickhouse/otel_traces.sql
and otel_logs.sql, in a database of the test's choosing); spans and log records are read from a
store written by the SDK and inserted with attribute values as the exporter writes them (strings
in a ``Map(String, String)``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from inferwatch.query.engines import ChdbTableEngine, _ChdbSession
from inferwatch.store import iter_logs, iter_spans

DDL = Path(__file__).resolve().parents[1] / "collector_config" / "clickhouse"


def exported(value: Any) -> str:
    """An attribute value as the ClickHouse exporter writes it into a Map(String, String)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value).removesuffix(".0") if math.isfinite(value) else str(value)
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def ddl(name: str, database: str) -> str:
    text = (DDL / f"{name}.sql").read_text()
    renamed = text.replace("DATABASE IF NOT EXISTS otel;", f"DATABASE IF NOT EXISTS {database};")
    renamed = renamed.replace(f"`otel`.`{name}`", f"`{database}`.`{name}`")
    assert renamed.count(database) == 2, f"{name}.sql's database name moved: update this test"
    return renamed


def insert(rows: list[dict[str, Any]], table: str, columns: str, select: str, tmp: Path) -> None:
    path = tmp / f"{table}.rows.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    _ChdbSession.get().query(f"INSERT INTO {table} {select} FROM file('{path}', 'JSONEachRow', "
                             f"'{columns}')")  # fmt: skip


def exporter_tables(
    store: Path, database: str, tmp: Path, service: str = "serving"
) -> ChdbTableEngine:
    """(Re)create ``database`` with the exporter's tables holding ``store``'s spans and logs."""
    session = _ChdbSession.get()
    session.query(f"DROP DATABASE IF EXISTS {database}")
    session.query(ddl("otel_traces", database))
    session.query(ddl("otel_logs", database))
    spans = [
        {"ts": s["start_ns"], "TraceId": s["trace_id"], "SpanId": s["span_id"],
         "SpanName": s["name"], "Duration": s["end_ns"] - s["start_ns"],
         "StatusCode": ["Unset", "Ok", "Error"][s["status_code"]],
         "StatusMessage": s["status_message"],
         "SpanAttributes": {k: exported(v) for k, v in s["attributes"].items()}}
        for s in iter_spans(store)
    ]  # fmt: skip
    insert(spans, f"{database}.otel_traces",
           "ts Int64, TraceId String, SpanId String, SpanName String, Duration UInt64, "
           "StatusCode String, StatusMessage String, SpanAttributes Map(String, String)",
           "(Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, "
           "ServiceName, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, "
           f"StatusMessage) SELECT fromUnixTimestamp64Nano(ts), TraceId, SpanId, '', '', "
           f"SpanName, 'Internal', '{service}', 'inferwatch', '0.1.0', SpanAttributes, Duration, "
           "StatusCode, StatusMessage", tmp)  # fmt: skip
    logs = [
        {"ts": r["time_ns"] or r["observed_time_ns"], "TraceId": r["trace_id"] or "",
         "SpanId": r["span_id"] or "", "EventName": r["event_name"], "Body": str(r["body"]),
         "TraceFlags": r["flags"] & 0xFF, "SeverityText": r["severity_text"],
         "SeverityNumber": r["severity_number"],
         "LogAttributes": {k: exported(v) for k, v in r["attributes"].items()}}
        for r in iter_logs(store)
    ]  # fmt: skip
    insert(logs, f"{database}.otel_logs",
           "ts Int64, TraceId String, SpanId String, EventName String, Body String, "
           "TraceFlags UInt8, SeverityText String, SeverityNumber UInt8, "
           "LogAttributes Map(String, String)",
           "(Timestamp, TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber, ServiceName, "
           f"Body, ScopeName, LogAttributes, EventName) SELECT fromUnixTimestamp64Nano(ts), "
           f"TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber, '{service}', Body, "
           "'inferwatch', LogAttributes, EventName", tmp)  # fmt: skip
    return ChdbTableEngine(f"{database}.otel_traces", f"{database}.otel_logs")
