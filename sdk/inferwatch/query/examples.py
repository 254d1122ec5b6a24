"""Failing examples: the requests of a slice that had the outcome, newest first, with their logs.

>>> spans.examples(since="1h", where={"region": "ap-south"}, outcome="error", limit=5)

One row per inference span: its time (UTC ISO 8601), trace id, request id, error type, status
message (as recorded: scrubbed by the SDK's privacy rules before it left the process), duration,
tags, and the request's log lines (joined on the trace id, oldest first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from inferwatch import semconv
from inferwatch.query import sql
from inferwatch.query.logs import EVENT
from inferwatch.query.spans import iso_time

if TYPE_CHECKING:
    from inferwatch.query.spans import Result, Spans

COLUMNS = [
    "time", "trace_id", "request_id", "error_type", "status_message", "duration_ms", "tags",
    "logs",
]  # fmt: skip
# Attributes that describe the request rather than tag it (as in `outliers`).
_NOT_TAGS = "startsWith(k, 'ml.') OR k = 'error.type'"


def examples_query(relation: str, where: str) -> str:
    """The ``{limit}`` newest spans passing ``where``."""
    return f"""
SELECT
    toUnixTimestamp64Nano(Timestamp) AS time_ns,
    TraceId,
    SpanAttributes['{semconv.ML_REQUEST_ID}'] AS request_id,
    SpanAttributes['{semconv.ERROR_TYPE}'] AS error_type,
    StatusMessage,
    Duration,
    mapFilter((k, v) -> NOT ({_NOT_TAGS}), SpanAttributes) AS tags
FROM {relation}
WHERE {where}
ORDER BY Timestamp DESC
LIMIT {{limit:UInt32}}"""


def log_lines_query(logs: str, relation: str, where: str) -> str:
    """Per trace of `examples_query`, its first ``{lines}`` log records, oldest first."""
    return f"""
SELECT TraceId, arraySlice(arraySort(x -> x.1, groupArray(
    (toUnixTimestamp64Nano(Timestamp), SeverityText, {EVENT}, Body))), 1, {{lines:UInt32}})
FROM {logs}
WHERE TraceId IN (SELECT TraceId FROM ({examples_query(relation, where)}))
GROUP BY TraceId"""


def examples(
    spans: Spans,
    since: str | datetime | float | None = "1h",
    until: str | datetime | float | None = None,
    *,
    where: Mapping[str, Any] | None = None,
    model: str | None = None,
    outcome: str = "error",
    slow_ms: float | None = None,
    limit: int = 10,
    lines: int = 5,
) -> Result:
    """The ``limit`` newest requests of [since, until) with ``outcome``, with their log lines.

    >>> spans.examples(since="1h", where={"region": "ap-south"}, limit=5)

    ``where`` keeps spans whose tags have these values (None: the span lacks the tag);
    ``outcome`` as in `Spans.slice`; ``lines`` log records per request at most.
    """
    from inferwatch.query.spans import Result

    for name, value in (("limit", limit), ("lines", lines)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    relation = spans.relation(outcome)
    where_sql, params = spans._window(since, until, where, model)
    notes = spans._outcome_params(relation, where_sql, params, outcome, slow_ms, 0.95)
    notes += spans.gaps(params)
    where_sql += f" AND ({sql.OUTCOMES[outcome]})"
    params.update(limit=limit, lines=lines)
    rows = spans.engine.query(examples_query(relation, where_sql), params)
    logs = spans.logs_relation()
    lines_of: dict[str, list[str]] = {}
    if logs is not None and rows:
        text = log_lines_query(logs, relation, where_sql)
        lines_of = {trace: _lines(found) for trace, found in spans.engine.query(text, params)}
    result = [_record(row, lines_of.get(row[1], [])) for row in rows]
    if not result:
        notes.append(f"no {outcome} request in the window")
    else:
        silent = sum(not r["logs"] for r in result)
        if logs is None:
            notes.append("no log lines: the server has no logs table (otel_logs)")
        elif silent:
            notes.append(
                f"{silent} of {len(result)} requests have no log record stored (not logged, "
                "logs turned off, or lost before the store)"
            )
        if len(result) == limit:
            notes.append(f"the {limit} newest; raise the limit to see more")
    return Result(list(COLUMNS), result, notes)


def _lines(found: Sequence[Sequence[Any]]) -> list[str]:
    return [
        f"{severity or '-'} {f'[{event}] ' if event else ''}{body}"
        for _, severity, event, body in found
    ]


def _record(row: Sequence[Any], lines: list[str]) -> dict[str, Any]:
    time_ns, trace_id, request_id, error_type, message, duration_ns, tags = row
    return {
        "time": iso_time(int(time_ns)),
        "trace_id": trace_id,
        "request_id": request_id or None,
        "error_type": error_type or None,
        "status_message": message or None,
        "duration_ms": int(duration_ns) / 1e6,
        "tags": dict(sorted((tags or {}).items())),
        "logs": lines,
    }
