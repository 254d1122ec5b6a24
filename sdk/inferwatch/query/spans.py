"""`Spans`: slicing stored inference spans by tags during an incident.

>>> spans = iw.query.open()
>>> print(spans.slice(by=["region", "cohort"], since="1h"))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from inferwatch import semconv
from inferwatch.durations import FORMS, parse_duration
from inferwatch.query import sql
from inferwatch.query.engines import Engine

if TYPE_CHECKING:
    from inferwatch.query.incident import Incident

MISSING = "(missing)"
_TIME_FORMS = f"a duration ago like {FORMS}; an ISO 8601 time; or a datetime"


def parse_time(value: str | datetime | float | None, now: datetime, what: str) -> datetime:
    """A point in time: None is now; '1h' is an hour before now; ISO 8601; epoch seconds."""
    if value is None:
        return now
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        seconds = parse_duration(value)
        if seconds is not None:
            return now - timedelta(seconds=seconds)
        try:
            return parse_time(datetime.fromisoformat(value), now, what)
        except ValueError:
            pass
    raise ValueError(f"{what} {value!r} is not a time: use {_TIME_FORMS}")


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def iso_time(time_ns: int) -> str:
    """A time in ns since the epoch as UTC ISO 8601 to the millisecond: 2026-12-07T18:30:02.120Z."""
    moment = datetime.fromtimestamp(time_ns // 1_000_000_000, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{time_ns % 1_000_000_000 // 1_000_000:03d}Z"


@dataclass
class Result:
    """Rows of a query, with notes about what the rows do not show."""

    columns: list[str]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        from inferwatch.query.render import table

        return table(self.columns, self.rows, self.notes)


class Spans:
    """Inference spans in a store (chDB) or a ClickHouse server, sliced with one SQL model."""

    def __init__(self, engine: Engine, now: datetime | None = None) -> None:
        self.engine = engine
        self._now = now

    def _window(
        self,
        since: str | datetime | float | None,
        until: str | datetime | float | None,
        where: Mapping[str, Any] | None,
        model: str | None,
    ) -> tuple[str, dict[str, Any]]:
        now = self._now or datetime.now(timezone.utc)
        start, end = parse_time(since, now, "since"), parse_time(until, now, "until")
        params: dict[str, Any] = {"since_ns": _nanos(start), "until_ns": _nanos(end)}
        present = tag_params(where, params)
        if model is not None:
            params["model"] = str(model)
        return sql.window_filter(present, model is not None), params

    def slice(
        self,
        by: Sequence[str],
        since: str | datetime | float | None = "1h",
        until: str | datetime | float | None = None,
        *,
        where: Mapping[str, Any] | None = None,
        model: str | None = None,
        outcome: str = "error",
        slow_ms: float | None = None,
        slow_quantile: float = 0.95,
        limit: int = 1000,
        every: str | float | None = None,
        alpha: float = 0.01,
    ) -> Result:
        """Requests, errors, latency and NaN share per combination of tag values.

        >>> spans.slice(by=["region"], since="1h", outcome="slow")
        >>> spans.slice(by=["region"], since="1h", every="1m")  # a timeline: a row per minute

        ``outcome`` is ``error``, ``slow`` (over ``slow_ms``, else over the ``slow_quantile``
        of the window's durations), ``nan`` (inputs with NaNs) or ``wrong`` (predictions that
        delayed labels marked wrong). Rows are sorted by that outcome; a span without a tag is
        counted under ``(missing)``; ``where`` keeps spans whose tags have the given values
        (None: spans without the tag). With ``every`` (a duration such as ``"1m"``, or
        seconds), one row per time bucket and combination (`inferwatch.query.timeline`), and a
        note per combination on when its outcome rate rose (a test at false-alarm rate
        ``alpha``); ``limit`` then caps the combinations.
        """
        if every is not None:
            from inferwatch.query.timeline import timeline

            return timeline(
                self, by, since, until, every=every, where=where, model=model, outcome=outcome,
                slow_ms=slow_ms, slow_quantile=slow_quantile, limit=limit, alpha=alpha,
            ).result  # fmt: skip
        keys = tag_names(by)
        relation = self.relation(outcome)
        where_sql, params = self._window(since, until, where, model)
        params.update({f"k{i}": key for i, key in enumerate(keys)})
        params["limit"] = int(limit)
        notes = self._outcome_params(relation, where_sql, params, outcome, slow_ms, slow_quantile)
        notes += self.gaps(params)
        rows = self.engine.query(sql.slice_query(relation, len(keys), outcome, where_sql), params)
        result = []
        for row in rows:
            record: dict[str, Any] = {
                k: MISSING if g is None else g for k, g in zip(keys, row, strict=False)
            }
            record.update(measures(row[len(keys) :], outcome))
            result.append(record)
        for key in keys:
            if result and all(r[key] == MISSING for r in result):
                notes.append(f"no span in the window has the tag {key!r}")
        if not result:
            notes.append("no inference spans in the window")
        return Result(slice_columns(keys, outcome), result, notes)

    def bubble_up(
        self, outcome: str = "error", since: str | datetime | float | None = "1h", **options: Any
    ) -> Result:
        """Tag values and combinations over-represented among ``outcome`` requests.

        >>> spans.bubble_up(outcome="error", since="1h", max_order=3)

        See `inferwatch.query.bubble.bubble_up` for the options and the method.
        """
        from inferwatch.query.bubble import bubble_up

        return bubble_up(self, outcome=outcome, since=since, **options)

    def outliers(self, since: str | datetime | float | None = "10m", **options: Any) -> Result:
        """The slowest (or longest-input) requests of the window, one row per span.

        >>> spans.outliers(since="10m", by="duration")

        See `inferwatch.query.outliers.outliers` for the options.
        """
        from inferwatch.query.outliers import outliers

        return outliers(self, since=since, **options)

    def logs(self, since: str | datetime | float | None = "1h", **options: Any) -> Result:
        """Log records of the window, newest first; with ``by``, counts per combination.

        >>> spans.logs(since="1h", where={"region": "eu"}, severity="warning", contains="timeout")

        See `inferwatch.query.logs.logs` for the filters and the columns.
        """
        from inferwatch.query.logs import logs

        return logs(self, since=since, **options)

    def examples(self, since: str | datetime | float | None = "1h", **options: Any) -> Result:
        """The newest requests with an outcome (errors by default), with their log lines.

        >>> spans.examples(since="1h", where={"region": "ap-south"}, limit=5)

        See `inferwatch.query.examples.examples` for the options and the columns.
        """
        from inferwatch.query.examples import examples

        return examples(self, since=since, **options)

    def incident(self, since: str | datetime | float | None = "1h", **options: Any) -> Incident:
        """When it started, where, what the logs say, examples, and the inputs: one report.

        >>> report = spans.incident(since="1h", outcome="error"); print(report)

        See `inferwatch.query.incident.incident` for the options and what it returns.
        """
        from inferwatch.query.incident import incident

        return incident(self, since=since, **options)

    def logs_relation(self) -> str | None:
        """The log records (otel_logs columns) where the engine has them, else None."""
        logs = getattr(self.engine, "logs_relation", None)
        return logs() if logs is not None else None

    def relation(self, outcome: str = "error") -> str:
        """The spans to query for ``outcome``: for "wrong", joined to their delayed labels.

        Labels come from the ``ml.feedback`` log records where the engine has them (the store's
        log segments, a ClickHouse ``otel_logs`` table), joined by request id (see
        `sql.labelled_spans`); spans that carry ``ml.prediction.correct`` themselves keep it
        unless a label says otherwise.
        """
        relation = self.engine.relation()
        labels = self.logs_relation() if outcome == "wrong" else None
        if labels is None:
            return relation
        return sql.labelled_spans(relation, sql.labels_query(labels))

    def horizon(self, params: dict[str, Any], logs: bool = False) -> list[str]:
        """A note when the window starts before the oldest stored span (log record, with
        ``logs``): nothing earlier can be shown, whether retention deleted it or it was never
        written."""
        relation = self.logs_relation() if logs else self.engine.relation()
        if relation is None:
            return []
        rows = self.engine.query(
            f"SELECT toUnixTimestamp64Nano(min(Timestamp)), count() FROM {relation}", {}
        )
        oldest, count = (int(v or 0) for v in rows[0]) if rows else (0, 0)
        what = "log record" if logs else "span"
        if not count:
            return [f"no {what}s stored at all"]
        # Data starting a moment after the window (1% of it) is a window chosen around it.
        if oldest - params["since_ns"] <= (params["until_ns"] - params["since_ns"]) // 100:
            return []
        return [
            f"the window starts at {iso_time(params['since_ns'])} but the oldest stored {what} "
            f"is from {iso_time(oldest)}: nothing earlier is stored (deleted by retention, or "
            "not yet written)"
        ]

    def log_gaps(self, params: dict[str, Any]) -> list[str]:
        """Notes on what log results miss: log records reported dropped before the store, no
        log records stored, a window that starts before the oldest one."""
        dropped = self._dropped(params, semconv.EVENT_LOGS_DROPPED, "log records")
        return dropped + self.horizon(params, logs=True)

    def unsampled(self, params: dict[str, Any]) -> list[str]:
        """A note on the window's log records whose trace was sampled out (their trace flags
        say so): no span of theirs is stored, so no join to requests can reach them."""
        relation = self.logs_relation()
        if relation is None:
            return []
        text = (
            "SELECT countIf(TraceId != '' AND bitAnd(TraceFlags, 1) = 0) "
            f"FROM {relation} WHERE {sql.TIME_WINDOW}"
        )
        rows = self.engine.query(text, params)
        count = int(rows[0][0]) if rows else 0
        if not count:
            return []
        return [
            f"{count:,} log records of the window belong to traces that were sampled out (no "
            "span stored): the requests they belong to cannot be told, so they are left out"
        ]

    def gaps(self, params: dict[str, Any]) -> list[str]:
        """Notes on what the window's results miss: spans reported dropped before the store
        (`inferwatch.store.drops`) by a writer whose report overlaps the window."""
        return self._dropped(params, semconv.EVENT_SPANS_DROPPED, "spans")

    def _dropped(self, params: dict[str, Any], event: str, what: str) -> list[str]:
        relation = self.logs_relation()
        if relation is None:
            return []
        rows = self.engine.query(sql.dropped_query(relation, event), params)
        count, processes, reasons = rows[0] if rows else (0, 0, [])
        if not count:
            return []
        processes = int(processes)
        return [
            f"incomplete: {int(count):,} {what} of this window did not reach the store "
            f"({', '.join(reasons)}; {processes} process{'es' if processes != 1 else ''}): "
            "the counts here miss them"
        ]

    def _outcome_params(
        self,
        relation: str,
        where_sql: str,
        params: dict[str, Any],
        outcome: str,
        slow_ms: float | None,
        slow_quantile: float,
    ) -> list[str]:
        if outcome not in sql.OUTCOMES:
            raise ValueError(f"outcome {outcome!r} is not one of {', '.join(sql.OUTCOMES)}")
        if outcome != "slow":
            return []
        if slow_ms is not None:
            params["slow_ns"] = int(slow_ms * 1e6)
            return [f"slow: over {slow_ms:g} ms"]
        if not 0 < slow_quantile < 1:
            raise ValueError(f"slow_quantile must be in (0, 1), got {slow_quantile!r}")
        (threshold,) = self.engine.query(
            sql.quantile_query(relation, where_sql), {**params, "q": slow_quantile}
        )[0]
        params["slow_ns"] = int(threshold or 0)
        return [
            f"slow: over the p{slow_quantile * 100:g} of the window, "
            f"{(threshold or 0) / 1e6:.3g} ms"
        ]


def tag_names(by: Sequence[str]) -> list[str]:
    if isinstance(by, str):
        by = [by]
    keys = [str(k) for k in by]
    if any(not k for k in keys):
        raise ValueError("tag names must be non-empty")
    return keys


def slice_columns(keys: Sequence[str], outcome: str) -> list[str]:
    """The columns of a slice: the tags, then `measures`."""
    columns = [*keys, "requests", "errors", "error_rate", "p50_ms", "p95_ms", "p99_ms"]
    columns.append("nan_share")
    if outcome != "error":
        columns += [outcome, f"{outcome}_rate"]
    return columns


def measures(values: Sequence[Any], outcome: str) -> dict[str, Any]:
    """A slice row's measures from `sql.slice_query`'s columns after the tags. Rates and
    latencies of a combination without requests (an empty time bucket) are None."""
    requests, errors, outcomes, latency, nan_requests = values
    empty = requests == 0

    def rate(count: int) -> float | None:
        return None if empty else count / requests

    record: dict[str, Any] = {
        "requests": requests,
        "errors": errors,
        "error_rate": rate(errors),
        "p50_ms": None if empty else latency[0] / 1e6,
        "p95_ms": None if empty else latency[1] / 1e6,
        "p99_ms": None if empty else latency[2] / 1e6,
        "nan_share": rate(nan_requests),
    }
    if outcome != "error":
        record[outcome], record[f"{outcome}_rate"] = outcomes, rate(outcomes)
    return record


def tag_params(
    where: Mapping[str, Any] | None, params: dict[str, Any], prefix: str = "w"
) -> list[bool]:
    """Bind ``where`` (tag -> value; None: the tag is missing) as ``{<prefix>k<i>}`` and
    ``{<prefix>v<i>}`` in ``params``; whether each tag must be present (`sql.tag_filters`)."""
    present = []
    for i, (key, value) in enumerate((where or {}).items()):
        params[f"{prefix}k{i}"] = str(key)
        if value is not None:
            params[f"{prefix}v{i}"] = _as_stored(value)
        present.append(value is not None)
    return present


def _as_stored(value: Any) -> str:
    """A filter value as the ClickHouse exporter stores attribute values (strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
