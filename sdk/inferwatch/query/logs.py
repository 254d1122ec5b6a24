"""Log records during an incident: search them, count them by tag or event, join them to requests.

>>> spans = iw.query.open()
>>> spans.logs(since="1h", where={"region": "ap-south"}, severity="warning", contains="timeout")
>>> spans.logs(since="1h", by=["region", "event"])                    # counts per combination
>>> spans.logs(since="1h", requests={"region": "ap-south"}, outcome="error")  # the slice's logs

The records are those the SDK ships (the application's structlog and `logging` lines with trace
id, request id and tags; inferwatch's events: data checks, drift, alerts, delayed labels), read
from the store's ``logs-*`` segments or the ClickHouse exporter's ``otel_logs`` table, with the
same SQL. A record's *event* is its ``EventName`` (the exporter's column; the SDK sets it from
``otel.event.name``). Every value from the caller (tag names included) is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from inferwatch import semconv
from inferwatch.query import sql
from inferwatch.query.spans import MISSING, iso_time, tag_names, tag_params

if TYPE_CHECKING:
    from inferwatch.query.spans import Result, Spans

SEVERITIES = {
    "trace": 1, "debug": 5, "info": 9, "warn": 13, "warning": 13, "error": 17, "fatal": 21,
    "critical": 21,
}  # fmt: skip
"""``severity=`` names -> the lowest OTel severity number they admit (records at or above)."""

EVENT = f"if(EventName != '', EventName, LogAttributes['{semconv.OTEL_EVENT_NAME}'])"
"""A record's event name: the exporter's column, else the attribute older exporters left."""
# Grouping names that are fields of the record rather than tags.
FIELDS = {"event": EVENT, "severity": "SeverityText", "service": "ServiceName"}
# Attributes shown in their own column, not among the record's attributes.
_OWN_COLUMNS = (semconv.ML_REQUEST_ID, semconv.OTEL_EVENT_NAME)

COLUMNS = ["time", "severity", "event", "body", "trace_id", "request_id", "service", "attributes"]


def severity_number(severity: str | int) -> int:
    """The lowest severity number of ``severity`` (a name in `SEVERITIES` or 1..24)."""
    if isinstance(severity, int) and not isinstance(severity, bool) and 1 <= severity <= 24:
        return severity
    number = SEVERITIES.get(str(severity).strip().lower())
    if number is None:
        raise ValueError(
            f"severity {severity!r} is not one of {', '.join(SEVERITIES)} (or a number 1..24)"
        )
    return number


def requests_filter(present: Sequence[bool], outcome: str | None, model: bool = False) -> str:
    """The window's inference spans with tags ``{sk<i>} = {sv<i>}`` (and the outcome, the
    model): the requests whose log records are wanted."""
    where = sql.window_filter(present, model, prefix="s")
    if outcome is not None:
        where += f" AND ({sql.OUTCOMES[outcome]})"
    return where


def log_filter(
    spans_relation: str,
    present: Sequence[bool],
    *,
    severity: bool = False,
    event: bool = False,
    contains: bool = False,
    trace_id: bool = False,
    request_id: bool = False,
    model: bool = False,
    requests: Sequence[bool] | None = None,
    outcome: str | None = None,
) -> str:
    """Log records in [since, until) passing the filters that are switched on (their values are
    the parameters ``min_severity``, ``event``, ``contains``, ``trace_id``, ``request_id``,
    ``model``; tags ``{wk<i>}``; the requests' tags ``{sk<i>}``)."""
    clauses = [sql.TIME_WINDOW, *sql.tag_filters("LogAttributes", present)]
    if severity:
        clauses.append("SeverityNumber >= {min_severity:UInt8}")
    if event:
        clauses.append(f"{EVENT} = {{event:String}}")
    if contains:
        clauses.append("positionCaseInsensitiveUTF8(Body, {contains:String}) > 0")
    if trace_id:
        clauses.append("TraceId = {trace_id:String}")
    if request_id:
        clauses.append(f"LogAttributes['{semconv.ML_REQUEST_ID}'] = {{request_id:String}}")
    if model:
        # A line logged inside a monitored call carries the request's tags, not the model:
        # it belongs to the model through its trace.
        model_is = f"SpanAttributes['{semconv.ML_MODEL_NAME}'] = {{model:String}}"
        of_model = f"{sql.TIME_WINDOW} AND {model_is}"
        clauses.append(
            f"(LogAttributes['{semconv.ML_MODEL_NAME}'] = {{model:String}} "
            f"OR TraceId IN (SELECT TraceId FROM {spans_relation} WHERE {of_model}))"
        )
    if requests is not None:
        chosen = requests_filter(requests, outcome)
        clauses.append(f"TraceId IN (SELECT TraceId FROM {spans_relation} WHERE {chosen})")
    return " AND ".join(clauses)


def rows_query(logs: str, where: str) -> str:
    """The newest ``{limit}`` records passing ``where``, newest first."""
    hidden = ", ".join(f"'{key}'" for key in _OWN_COLUMNS)
    return f"""
SELECT
    toUnixTimestamp64Nano(Timestamp) AS time_ns,
    SeverityText,
    SeverityNumber,
    {EVENT} AS event,
    Body,
    TraceId,
    LogAttributes['{semconv.ML_REQUEST_ID}'] AS request_id,
    ServiceName,
    mapFilter((k, v) -> k NOT IN ({hidden}), LogAttributes) AS attributes
FROM {logs}
WHERE {where}
ORDER BY Timestamp DESC
LIMIT {{limit:UInt32}}"""


def _group(i: int, name: str) -> str:
    if name in FIELDS:
        return FIELDS[name]
    return f"if(mapContains(LogAttributes, {{k{i}:String}}), LogAttributes[{{k{i}:String}}], NULL)"


def counts_query(logs: str, by: Sequence[str], where: str) -> str:
    """Records, distinct requests (trace ids) and first/last time per combination of ``by``."""
    groups = ", ".join(f"{_group(i, name)} AS g{i}" for i, name in enumerate(by))
    return f"""
SELECT
    {groups},
    count() AS records,
    -- Distinct requests by a 64-bit hash of the trace id: half the time of the strings, and a
    -- collision among a million traces has odds of about 3e-8.
    uniqExactIf(cityHash64(TraceId), TraceId != '') AS requests,
    toUnixTimestamp64Nano(min(Timestamp)) AS first_ns,
    toUnixTimestamp64Nano(max(Timestamp)) AS last_ns
FROM {logs}
WHERE {where}
GROUP BY {", ".join(f"g{i}" for i in range(len(by)))}
ORDER BY records DESC
LIMIT {{limit:UInt32}}"""


def logs(
    spans: Spans,
    since: str | datetime | float | None = "1h",
    until: str | datetime | float | None = None,
    *,
    where: Mapping[str, Any] | None = None,
    severity: str | int | None = None,
    event: str | None = None,
    contains: str | None = None,
    trace_id: str | None = None,
    request_id: str | None = None,
    model: str | None = None,
    requests: Mapping[str, Any] | None = None,
    outcome: str | None = None,
    slow_ms: float | None = None,
    by: Sequence[str] | None = None,
    limit: int = 100,
) -> Result:
    """Log records of [since, until), newest first; with ``by``, counts per combination.

    >>> spans.logs(since="1h", severity="warning", contains="timeout", where={"region": "eu"})
    >>> spans.logs(since="1h", by=["event"], requests={"region": "eu"}, outcome="error")

    Filters (all must hold): ``where`` tags of the record (None: the record lacks the tag),
    ``severity`` at or above a level (`SEVERITIES`), ``event`` name, ``contains`` text in the
    body (case-insensitive), ``trace_id``, ``request_id``, ``model`` (its own attribute or the
    model of its trace). ``requests`` keeps the records of the window's inference spans with
    these tags (joined on trace id), only those with ``outcome`` if given (``slow`` takes
    ``slow_ms``, else the window's p95). ``by`` names tags, or ``event``, ``severity``,
    ``service``: one row per combination with ``records``, ``requests`` (distinct trace ids),
    ``first`` and ``last``. ``limit`` caps the rows.
    """
    from inferwatch.query.spans import Result

    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    if outcome is not None and requests is None:
        requests = {}
    keys = tag_names(by) if by else []
    _, params = spans._window(since, until, None, None)
    present = tag_params(where, params)
    required = tag_params(requests, params, prefix="s") if requests is not None else None
    # The spans are read only to join records to requests (by model, slice or outcome); for
    # "wrong", with their delayed labels.
    joined = model is not None or required is not None
    spans_relation = spans.relation(outcome or "error") if joined else ""
    notes: list[str] = []
    if outcome is not None:
        spans_where = requests_filter(required or [], None)
        notes += spans._outcome_params(spans_relation, spans_where, params, outcome, slow_ms, 0.95)
    given = {
        "min_severity": None if severity is None else severity_number(severity),
        "event": event,
        "contains": contains,
        "trace_id": None if trace_id is None else str(trace_id).strip().lower(),
        "request_id": request_id,
        "model": model,
    }
    params.update({k: v for k, v in given.items() if v is not None})
    params.update({f"k{i}": key for i, key in enumerate(keys)})
    params["limit"] = limit
    columns = [*keys, "records", "requests", "first", "last"] if keys else list(COLUMNS)
    relation = spans.logs_relation()
    if relation is None:
        notes.append("no log records to search: the server has no logs table (otel_logs)")
        return Result(columns, [], notes)
    where_sql = log_filter(
        spans_relation,
        present,
        severity=severity is not None,
        event=event is not None,
        contains=contains is not None,
        trace_id=trace_id is not None,
        request_id=request_id is not None,
        model=model is not None,
        requests=required,
        outcome=outcome,
    )
    if keys:
        rows = spans.engine.query(counts_query(relation, keys, where_sql), params)
        result = [_count(row, keys) for row in rows]
    else:
        rows = spans.engine.query(rows_query(relation, where_sql), params)
        result = [_record(row) for row in rows]
    notes += spans.log_gaps(params) + (spans.unsampled(params) if joined else [])
    if not result:
        notes.append("no log records in the window match")
    elif len(result) == limit:
        what = f"the {limit} largest combinations" if keys else f"the {limit} newest records"
        notes.append(f"{what}; raise the limit to see more")
    return Result(columns, result, notes)


def _record(row: Sequence[Any]) -> dict[str, Any]:
    time_ns, severity, number, event, body, trace_id, request_id, service, attributes = row
    return {
        "time": iso_time(int(time_ns)),
        "severity": severity or _severity_name(int(number)),
        "event": event or None,
        "body": body,
        "trace_id": trace_id or None,
        "request_id": request_id or None,
        "service": service or None,
        "attributes": dict(sorted((attributes or {}).items())),
    }


def _severity_name(number: int) -> str | None:
    """OTel's short name of a severity number (records that carry no severity text)."""
    names = [(21, "FATAL"), (17, "ERROR"), (13, "WARN"), (9, "INFO"), (5, "DEBUG"), (1, "TRACE")]
    return next((name for low, name in names if number >= low), None)


def _count(row: Sequence[Any], keys: Sequence[str]) -> dict[str, Any]:
    groups, (records, requests, first_ns, last_ns) = row[: len(keys)], row[len(keys) :]
    # A tag the record lacks is NULL; a field (event, severity) it lacks is ''.
    record: dict[str, Any] = {
        k: MISSING if g is None or (g == "" and k in FIELDS) else g
        for k, g in zip(keys, groups, strict=True)
    }
    record.update(
        records=int(records),
        requests=int(requests),
        first=iso_time(int(first_ns)),
        last=iso_time(int(last_ns)),
    )
    return record
