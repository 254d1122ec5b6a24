"""Single requests worth a look: the slowest, the longest inputs, the most NaNs in a window.

>>> spans = iw.query.open()
>>> print(spans.outliers(since="10m", by="duration", limit=20))

One row per inference span, with what identifies it (time, trace id, request id, model and
version) and the span's tags, so the next step (the trace in the tracing backend, the request's
log lines) is one copy-paste away. The SQL reads the same ``otel_traces`` columns as the rest of
`inferwatch.query`, with values as bound parameters only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from inferwatch import semconv
from inferwatch.query.spans import iso_time

if TYPE_CHECKING:
    from inferwatch.query.spans import Result, Spans

# What a span is ranked by, as an expression over one otel_traces row. A batch records the mean
# input length in ml.input.length and the longest in ml.input.length.max (a single input has
# only the former), so "the longest input" is the max where there is one.
_INPUT_LENGTH = (
    "coalesce(toFloat64OrNull(SpanAttributes['ml.input.length.max']), "
    "toFloat64OrNull(SpanAttributes['ml.input.length']))"
)
_NAN_COUNT = "toInt64OrNull(SpanAttributes['ml.input.nan_count'])"
RANKINGS = {
    "duration": ("Duration", "1"),
    "input_length": ("input_length", "input_length IS NOT NULL"),
    "nan_count": ("nan_count", "nan_count > 0"),
}
"""``by`` -> (ORDER BY expression, which spans qualify at all)."""

# Attributes that describe the request rather than tag it: inferwatch's own (ml.*), and the
# error type, which is shown in the status column instead.
_NOT_TAGS = "startsWith(k, 'ml.') OR k = 'error.type'"

COLUMNS = [
    "time",
    "trace_id",
    "request_id",
    "model",
    "version",
    "duration_ms",
    "status",
    "input_length",
    "nan_count",
    "tags",
]


def outliers_query(relation: str, by: str, where: str) -> str:
    """The ``limit`` spans of the window with the largest ``by``, largest first."""
    order, qualifies = RANKINGS[by]
    return f"""
SELECT
    toUnixTimestamp64Nano(Timestamp) AS time_ns,
    TraceId,
    SpanAttributes['{semconv.ML_REQUEST_ID}'] AS request_id,
    SpanAttributes['{semconv.ML_MODEL_NAME}'] AS model,
    SpanAttributes['{semconv.ML_MODEL_VERSION}'] AS version,
    Duration,
    StatusCode,
    SpanAttributes['{semconv.ERROR_TYPE}'] AS error_type,
    {_INPUT_LENGTH} AS input_length,
    {_NAN_COUNT} AS nan_count,
    mapFilter((k, v) -> NOT ({_NOT_TAGS}), SpanAttributes) AS tags
FROM {relation}
WHERE {where}
  AND {qualifies}
ORDER BY {order} DESC, Duration DESC, Timestamp DESC
LIMIT {{limit:UInt32}}"""


def outliers(
    spans: Spans,
    since: str | datetime | float | None = "10m",
    until: str | datetime | float | None = None,
    *,
    by: str = "duration",
    limit: int = 20,
    where: Mapping[str, Any] | None = None,
    model: str | None = None,
) -> Result:
    """The ``limit`` inference spans of [since, until) with the largest ``by``, one row each.

    >>> spans.outliers(since="10m", by="nan_count", where={"region": "ap-south"})

    ``by`` is ``duration`` (the slowest requests), ``input_length`` (the longest inputs: the
    longest item of a batch where recorded) or ``nan_count`` (NaNs in the input; only spans
    with at least one). ``where`` keeps spans whose tags equal the given values; ``model``
    keeps one model. Each row has the span's time (UTC, ISO 8601), trace id, request id, model,
    version, duration in ms, status (``Error (ValueError)`` for a failed call), input length
    and NaN count where recorded, and its tags: the attributes outside ``ml.*``.
    """
    from inferwatch.query.spans import Result

    if by not in RANKINGS:
        raise ValueError(f"by {by!r} is not one of {', '.join(RANKINGS)}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    where_sql, params = spans._window(since, until, where, model)
    relation = spans.engine.relation()
    params["limit"] = limit
    rows = spans.engine.query(outliers_query(relation, by, where_sql), params)
    result = [_record(row) for row in rows]
    notes = spans.gaps(params)
    if not result:
        notes.append(_NONE[by])
    elif len(result) == limit:
        notes.append(f"the {limit} largest by {by}; raise the limit to see more")
    return Result(list(COLUMNS), result, notes)


_NONE = {
    "duration": "no inference spans in the window",
    "input_length": "no inference span in the window records an input length "
    f"({semconv.ML_INPUT_LENGTH})",
    "nan_count": "no inference span in the window had NaNs in its input "
    f"({semconv.ML_INPUT_NAN_COUNT} > 0)",
}


def _record(row: tuple[Any, ...]) -> dict[str, Any]:
    (
        time_ns,
        trace_id,
        request_id,
        model,
        version,
        duration_ns,
        status,
        error_type,
        input_length,
        nan_count,
        tags,
    ) = row
    if isinstance(input_length, float) and input_length.is_integer():
        input_length = int(input_length)
    return {
        "time": iso_time(int(time_ns)),
        "trace_id": trace_id,
        "request_id": request_id or None,
        "model": model or None,
        "version": version or None,
        "duration_ms": int(duration_ns) / 1e6,
        "status": f"{status} ({error_type})" if error_type else status,
        "input_length": input_length,
        "nan_count": nan_count,
        "tags": dict(sorted((tags or {}).items())),
    }
