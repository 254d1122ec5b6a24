"""The incident report: the questions of an incident, answered in order, from one window.

>>> report = iw.query.open().incident(since="1h", outcome="error")
>>> print(report); report.to_dict()["started_at"]

1. **When did it start?** The outcome's timeline over all requests (buckets of ``every``,
   about 60 over the window by default) and its change point (`inferwatch.query.timeline`:
   a one-sided test at false-alarm rate ``alpha`` per series).
2. **Where?** Bubble-up (`inferwatch.query.bubble`): the slices over-represented among the
   requests with the outcome, ranked, each with its own timeline and change point.
3. **What do the logs say?** The log records of the failing requests of the top slice against
   those of every other request of the window (joined on trace id), grouped by event and by
   message (numbers and long hex ids masked, so "timeout after 3 s" and "after 5 s" are one
   message): messages over-represented in the slice first, then by count.
4. **Examples**: the newest failing requests of the top slice with their log lines
   (`inferwatch.query.examples`).
5. **Did its inputs drift?** The spans' input summaries of the top slice (share of requests
   with NaNs, mean input length) before and since the start, and the drift events
   (``ml.drift.detected``) logged in the window.

``started_at`` is the change point of all requests; when that series shows none, the one of
the highest-ranked slice that has one (a note says so). Every part says what it cannot show
(spans dropped before the store, no logs, a window older than the stored data).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from inferwatch import semconv
from inferwatch.query import sql
from inferwatch.query.logs import EVENT, requests_filter
from inferwatch.query.spans import Result, iso_time, tag_params
from inferwatch.query.timeline import DEFAULT_ALPHA, ChangePoint, Timeline, timeline

if TYPE_CHECKING:
    from inferwatch.query.spans import Spans

# Bucket widths the default picks from (seconds): the smallest giving at most ~60 buckets.
_NICE_S = (
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    21600,
    43200,
    86400,
)
_TARGET_BUCKETS = 60
# Masked in messages before grouping: long hex runs (ids), then numbers.
_ID_PATTERN = "[0-9a-fA-F]{16,}"
_NUMBER_PATTERN = "[0-9]+"
MESSAGE_COLUMNS = [
    "message", "event", "severity", "in_slice", "outside", "share_in_slice", "share_outside",
]  # fmt: skip


@dataclass
class IncidentSlice:
    """One ranked slice: bubble-up's row, its timeline and change point."""

    row: dict[str, Any]
    timeline: Timeline
    change: ChangePoint

    def to_dict(self, outcome: str) -> dict[str, Any]:
        keys = ("slice", "predicates", "size", "outcomes", "rate", "baseline_rate", "lift")
        found = {k: self.row[k] for k in (*keys, "q_value")}
        found["started_at"] = self.change.started_at
        found["change"] = self.change.to_dict()
        found["timeline"] = _series(self.timeline, outcome)
        return found


@dataclass
class Incident:
    """The answers of `incident`; ``str()`` is the text report, `to_dict` the JSON one."""

    outcome: str
    since: str
    until: str
    every_s: float
    requests: int
    outcomes: int
    started_at: str | None
    change: ChangePoint
    overall: Timeline
    slices: list[IncidentSlice]
    top_messages: Result
    examples: Result
    inputs: Result
    drift_events: Result
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "window": {"since": self.since, "until": self.until, "every_s": self.every_s},
            "requests": self.requests,
            "outcomes": self.outcomes,
            "started_at": self.started_at,
            "change": self.change.to_dict(),
            "timeline": _series(self.overall, self.outcome),
            "slices": [s.to_dict(self.outcome) for s in self.slices],
            "top_messages": self.top_messages.rows,
            "examples": self.examples.rows,
            "inputs": self.inputs.rows,
            "drift_events": self.drift_events.rows,
            "notes": self.notes,
        }

    def slice_table(self) -> tuple[list[str], list[dict[str, Any]]]:
        """(columns, rows) of the ranked slices, each with when its outcome rose."""
        columns = ["slice", "size", "outcomes", "rate", "baseline_rate", "lift", "q_value"]
        rows = [{**s.row, "started_at": s.change.started_at or "no change"} for s in self.slices]
        return [*columns, "started_at"], rows

    def __str__(self) -> str:
        from inferwatch.query.render import table

        rate = f" ({self.outcomes / self.requests:.2%})" if self.requests else ""
        parts = [
            f"incident: {self.outcome}, {self.since} .. {self.until} in buckets of "
            f"{self.every_s:g} s: {self.requests} requests, {self.outcomes} {self.outcome}{rate}",
            f"\n1. when did it start? {self.started_at or 'no start found'}",
            f"   all requests: {self.change.verdict}",
            "\n2. where?",
            table(*self.slice_table(), []),
            "\n3. what do the logs of those requests say?",
            table(self.top_messages.columns, self.top_messages.rows, self.top_messages.notes),
            "\n4. examples",
            table(self.examples.columns, self.examples.rows, self.examples.notes),
            "\n5. did the inputs drift?",
            table(self.inputs.columns, self.inputs.rows, self.inputs.notes),
        ]
        drift = self.drift_events
        if drift.rows:
            parts.append(table(drift.columns, drift.rows, drift.notes))
        else:
            parts += [f"note: {note}" for note in drift.notes]
        parts += [f"note: {note}" for note in self.notes]
        return "\n".join(parts)


def default_every(since_ns: int, until_ns: int) -> float:
    """The smallest of a few round widths (10 ms .. 1 day) giving at most ~60 buckets."""
    span_s = (until_ns - since_ns) / 1e9
    return next((s for s in _NICE_S if span_s / s <= _TARGET_BUCKETS), _NICE_S[-1])


def incident(
    spans: Spans,
    since: str | datetime | float | None = "1h",
    until: str | datetime | float | None = None,
    *,
    outcome: str = "error",
    every: str | float | None = None,
    where: Mapping[str, Any] | None = None,
    model: str | None = None,
    slow_ms: float | None = None,
    alpha: float = DEFAULT_ALPHA,
    top: int = 3,
    messages: int = 10,
    examples: int = 5,
) -> Incident:
    """Answer the incident questions for ``outcome`` over [since, until) (module docstring).

    >>> report = incident(spans, since="1h", outcome="error", top=3)
    >>> report.started_at, report.slices[0].row["predicates"]

    ``every`` is the bucket width (default: about 60 buckets); ``where`` and ``model`` narrow
    the requests; ``alpha`` is the change point's false-alarm rate per series; ``top`` the
    slices reported; ``messages`` and ``examples`` the rows of those parts.
    """
    from inferwatch.query.bubble import bubble_up
    from inferwatch.query.examples import examples as failing

    if top < 1:
        raise ValueError(f"top must be at least 1, got {top!r}")
    _, params = spans._window(since, until, None, None)
    start, end = (_moment(params[k]) for k in ("since_ns", "until_ns"))
    if every is None:
        every = default_every(params["since_ns"], params["until_ns"])
    base = dict(where or {})
    window: dict[str, Any] = {
        "every": every, "model": model, "outcome": outcome, "alpha": alpha, "slow_ms": slow_ms,
    }  # fmt: skip
    overall = timeline(spans, [], start, end, where=base, **window)
    nothing = ChangePoint(None, None, None, None, 0, None, None, "no inference spans in the window")
    change = overall.changes.get((), nothing)
    notes = [n for n in overall.result.notes if not n.startswith(f"{outcome} in ")]
    requests = sum(r["requests"] for r in overall.result.rows)
    hits = sum(r[_count_column(outcome)] for r in overall.result.rows)

    ranked = bubble_up(
        spans, outcome, start, end, where=base, model=model, top=top, slow_ms=slow_ms
    )
    notes += [f"bubble-up: {n}" for n in ranked.notes if not n.startswith("window ")]
    slices = []
    for row in ranked.rows:
        found = timeline(spans, [], start, end, where={**base, **row["predicates"]}, **window)
        slices.append(IncidentSlice(row, found, found.changes.get((), change)))
    started_at = change.started_at
    if started_at is None:
        first = next((s for s in slices if s.change.started_at), None)
        if first is not None:
            started_at = first.change.started_at
            notes.append(f"started_at: all requests show no change; {first.row['slice']} does")

    chosen = {**base, **(slices[0].row["predicates"] if slices else {})}
    what = slices[0].row["slice"] if slices else f"every {outcome} request"
    top_messages = _top_messages(spans, params, base, chosen, model, outcome, slow_ms, messages)
    top_messages.notes.insert(0, f"{outcome} requests of {what} against every other request")
    shown = failing(
        spans, start, end, where=chosen, model=model, outcome=outcome, slow_ms=slow_ms,
        limit=examples,
    )  # fmt: skip
    split = overall.starts.index(started_at) if started_at in overall.starts else None
    inputs = _inputs(spans, start, end, chosen, model, overall, split, what)
    drift_events = spans.logs(
        start, until=end, event=semconv.EVENT_DRIFT_DETECTED,
        by=[semconv.ML_MODEL_NAME, semconv.ML_FEATURE], limit=20,
    )  # fmt: skip
    drift_events.notes = (
        [] if drift_events.rows else [f"no drift events ({semconv.EVENT_DRIFT_DETECTED}) logged"]
    )
    return Incident(
        outcome=outcome,
        since=iso_time(params["since_ns"]),
        until=iso_time(params["until_ns"]),
        every_s=overall.every_ns / 1e9,
        requests=requests,
        outcomes=hits,
        started_at=started_at,
        change=change,
        overall=overall,
        slices=slices,
        top_messages=top_messages,
        examples=shown,
        inputs=inputs,
        drift_events=drift_events,
        notes=notes,
    )


def _moment(time_ns: int) -> datetime:
    """A time in ns as a datetime, to the microsecond (exactly: no float in between)."""
    micros = time_ns // 1000
    moment = datetime.fromtimestamp(micros // 1_000_000, timezone.utc)
    return moment.replace(microsecond=micros % 1_000_000)


def _count_column(outcome: str) -> str:
    return "errors" if outcome == "error" else outcome


def _series(found: Timeline, outcome: str) -> list[dict[str, Any]]:
    count = _count_column(outcome)
    return [
        {"bucket": r["bucket"], "requests": r["requests"], "outcomes": r[count],
         "rate": r[f"{outcome}_rate"]}
        for rows in found.series.values()
        for r in rows
    ]  # fmt: skip


def messages_query(spans_relation: str, logs: str, window: str, chosen: str) -> str:
    """Log records of the requests passing ``window`` by (event, masked message): how many
    belong to the requests passing ``chosen`` (the slice), how many to the others."""
    message = (
        "replaceRegexpAll(replaceRegexpAll(Body, {id_pattern:String}, '<id>'), "
        "{number_pattern:String}, '<n>')"
    )
    return f"""
SELECT {EVENT} AS event, {message} AS message, anyHeavy(SeverityText) AS severity,
    countIf(inside) AS in_slice, countIf(NOT inside) AS outside
FROM (
    SELECT *, TraceId IN (SELECT TraceId FROM {spans_relation} WHERE {chosen}) AS inside
    FROM {logs}
    WHERE {sql.TIME_WINDOW}
      AND TraceId IN (SELECT TraceId FROM {spans_relation} WHERE {window})
)
GROUP BY event, message"""


def _top_messages(
    spans: Spans,
    params: Mapping[str, Any],
    base: Mapping[str, Any],
    chosen: Mapping[str, Any],
    model: str | None,
    outcome: str,
    slow_ms: float | None,
    limit: int,
) -> Result:
    logs = spans.logs_relation()
    if logs is None:
        return Result(list(MESSAGE_COLUMNS), [], ["no logs table (otel_logs) on the server"])
    window, bound = spans._window(
        _moment(params["since_ns"]), _moment(params["until_ns"]), base, model
    )
    present = tag_params(chosen, bound, prefix="s")
    bound.update(id_pattern=_ID_PATTERN, number_pattern=_NUMBER_PATTERN)
    relation = spans.relation(outcome)
    notes = spans._outcome_params(relation, window, bound, outcome, slow_ms, 0.95)
    text = messages_query(
        relation, logs, window, requests_filter(present, outcome, model is not None)
    )
    rows = spans.engine.query(text, bound)
    inside = sum(int(r[3]) for r in rows)
    outside = sum(int(r[4]) for r in rows)
    found = []
    for event, message, severity, n_in, n_out in rows:
        share_in = int(n_in) / inside if inside else 0.0
        share_out = int(n_out) / outside if outside else 0.0
        found.append(
            {"message": message, "event": event or None, "severity": severity or None,
             "in_slice": int(n_in), "outside": int(n_out), "share_in_slice": share_in,
             "share_outside": share_out}
        )  # fmt: skip
    found = [r for r in found if r["in_slice"]]
    found.sort(key=lambda r: (r["share_in_slice"] <= r["share_outside"], -r["in_slice"]))
    notes += spans.log_gaps(bound) + spans.unsampled(bound)
    if not inside:
        notes.append("the slice's requests have no log record stored")
    return Result(list(MESSAGE_COLUMNS), found[:limit], notes)


def inputs_query(relation: str, where: str) -> str:
    """Input summaries of the spans passing ``where``, before and since ``{split_ns}``."""
    nan = f"toInt64OrZero(SpanAttributes['{semconv.ML_INPUT_NAN_COUNT}']) > 0"
    length = f"toFloat64OrNull(SpanAttributes['{semconv.ML_INPUT_LENGTH}'])"
    return f"""
SELECT Timestamp >= fromUnixTimestamp64Nano({{split_ns:Int64}}) AS since_start,
    count() AS requests, countIf({nan}) AS with_nan, avgOrNull({length}) AS input_length
FROM {relation}
WHERE {where}
GROUP BY since_start
ORDER BY since_start"""


def _inputs(
    spans: Spans,
    start: datetime,
    end: datetime,
    chosen: Mapping[str, Any],
    model: str | None,
    overall: Timeline,
    split: int | None,
    what: str,
) -> Result:
    """The slice's input summaries before and since the start (no start: one row)."""
    columns = ["requests_of", "period", "requests", "nan_share", "mean_input_length"]
    where_sql, params = spans._window(start, end, chosen, model)
    split_ns = params["until_ns"] + 1 if split is None else overall.bucket_ns(split)
    params["split_ns"] = split_ns
    rows: list[dict[str, Any]] = []
    counts: list[tuple[int, int]] = []
    for since_start, requests, with_nan, length in spans.engine.query(
        inputs_query(spans.engine.relation(), where_sql), params
    ):
        period = f"since {iso_time(split_ns)}" if since_start else "before"
        if split is None:
            period = "whole window"
        counts.append((int(with_nan), int(requests)))
        rows.append(
            {"requests_of": what, "period": period, "requests": int(requests),
             "nan_share": int(with_nan) / int(requests),
             "mean_input_length": None if length is None or math.isnan(length) else length}
        )  # fmt: skip
    notes = []
    if len(counts) == 2:
        from inferwatch.query.bubble import one_sided

        (p,) = one_sided([(*counts[1], *counts[0])])
        verdict = "rose" if p <= DEFAULT_ALPHA else "did not rise significantly"
        notes.append(f"the share of inputs with NaNs {verdict} since the start (p {float(p):.2g})")
    return Result(columns, rows, notes)
