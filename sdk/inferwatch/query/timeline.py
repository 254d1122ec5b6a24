"""Timelines: a slice per time bucket, and when an outcome's rate started to rise.

>>> spans.slice(by=["region"], since="1h", every="1m")       # one row per minute and region
>>> timeline(spans, ["region"], "1h", every="1m").changes     # when each region's errors rose

**Buckets.** Bucket ``b`` holds the spans of ``[origin + b * every, origin + (b + 1) * every)``,
``origin`` being the window's start rounded down to a multiple of ``every`` (since the epoch,
so buckets line up across queries). Every bucket of the window is a row for every combination,
an empty one with zero requests and no rates.

**When it started** (`change_point`). For each bucket ``t`` that has at least
``MIN_BEFORE`` buckets before it in the window, the outcome rate of ``[t, end)`` is compared
with that of ``[start, t)`` (the preceding baseline). The change point is the most likely start
of a step up: the ``t`` with the largest binomial log-likelihood ratio among those where the
rate rises. It is reported only if its one-sided test (`inferwatch.query.bubble.one_sided`:
Fisher's exact test when a cell is under 5, else the two-proportion z-test) gives a p-value of
at most ``alpha / m``, ``m`` being the buckets that could be the start (Bonferroni: the chosen
``t``'s test rejects only if one of the ``m`` would). So on a series whose rate never changes,
a start is reported with probability at most ``alpha`` (the false-alarm rate, per series; 1% by
default); tests/test_timeline.py checks it on simulated series without a change (measured:
0.55% at alpha = 1%, 2.35% at 5%, over 2,000 series each). Falls are not reported: an incident
is a rise in errors, slow, NaN-laden or wrong predictions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from inferwatch.durations import FORMS, parse_duration
from inferwatch.query import sql
from inferwatch.query.spans import (
    MISSING,
    Result,
    iso_time,
    measures,
    slice_columns,
    tag_names,
)

if TYPE_CHECKING:
    from inferwatch.query.spans import Spans

MAX_BUCKETS = 5000
MIN_BEFORE = 3
"""Buckets of baseline a start needs before it."""
DEFAULT_ALPHA = 0.01


@dataclass
class ChangePoint:
    """The verdict on one series: where its rate rose, if it did (``bucket`` None: no change)."""

    bucket: int | None
    started_at: str | None
    p_value: float | None
    threshold: float | None
    """``alpha / tested``: the p-value a start must reach."""
    tested: int
    rate_before: float | None
    rate_after: float | None
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "buckets_tested": self.tested,
            "rate_before": self.rate_before,
            "rate_after": self.rate_after,
            "verdict": self.verdict,
        }


def change_point(
    requests: Sequence[int],
    outcomes: Sequence[int],
    alpha: float = DEFAULT_ALPHA,
    starts: Sequence[str] | None = None,
) -> ChangePoint:
    """The first bucket from which the outcome rate rose above the preceding baseline.

    >>> change_point([100] * 10, [1] * 5 + [30] * 5).bucket
    5

    ``requests[b]`` and ``outcomes[b]`` are bucket ``b``'s counts; ``starts[b]`` its start as
    text (for the verdict). See the module docstring for the test and its false-alarm rate.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    import numpy as np

    from inferwatch.query.bubble import one_sided

    n = np.asarray(requests, dtype=np.int64)
    e = np.asarray(outcomes, dtype=np.int64)
    n_before, e_before = np.cumsum(n) - n, np.cumsum(e) - e
    n_after, e_after = n.sum() - n_before, e.sum() - e_before
    # Candidates: MIN_BEFORE buckets before, requests on both sides, and a bucket with traffic
    # (a start is a bucket where requests were served).
    index = np.arange(len(n))
    candidates = index[(index >= MIN_BEFORE) & (n_before > 0) & (n > 0)]
    if not len(candidates):
        why = (
            "no change tested: fewer than "
            f"{MIN_BEFORE + 1} buckets with requests, {MIN_BEFORE} of them before the rest"
        )
        return ChangePoint(None, None, None, None, 0, None, None, why)
    # The most likely start of a step up: the split with the largest binomial log-likelihood
    # ratio among those where the rate rises (p-values underflow to 0 for large jumps, so they
    # cannot rank the splits); its own test decides, at alpha / m.
    nb, eb, na, ea = (a[candidates].astype(float) for a in (n_before, e_before, n_after, e_after))
    rising = ea / na > eb / nb
    ratio = np.where(rising, _log_likelihood(eb, nb) + _log_likelihood(ea, na), -np.inf)
    t = int(candidates[int(np.argmax(ratio))])
    (p,) = (float(v) for v in one_sided([(e_after[t], n_after[t], e_before[t], n_before[t])]))
    threshold = alpha / len(candidates)
    before, after = e_before[t] / n_before[t], e_after[t] / n_after[t]
    if p > threshold:
        verdict = (
            f"no change: no rise significant at a false-alarm rate of {alpha:g} "
            f"(smallest p {p:.2g} > {alpha:g}/{len(candidates)} buckets tested)"
        )
        return ChangePoint(None, None, p, threshold, len(candidates), None, None, verdict)
    started = starts[t] if starts is not None else None
    verdict = (
        f"rose from {started or f'bucket {t}'}: {before:.3g} before, {after:.3g} since "
        f"(p {p:.2g} <= {alpha:g}/{len(candidates)})"
    )
    return ChangePoint(t, started, p, threshold, len(candidates), before, after, verdict)


def _log_likelihood(hits: Any, size: Any) -> Any:
    """Binomial log-likelihood of ``hits`` in ``size`` at the rate ``hits / size`` (vectors)."""
    from scipy.special import xlogy

    return xlogy(hits, hits / size) + xlogy(size - hits, 1 - hits / size)


@dataclass
class Timeline:
    """A bucketed slice: the rows, each combination's series, and its change point."""

    result: Result
    origin_ns: int
    every_ns: int
    starts: list[str]
    """Each bucket's start, UTC ISO 8601."""
    series: dict[tuple[Any, ...], list[dict[str, Any]]] = field(default_factory=dict)
    """Combination (tag values, in ``by`` order) -> its rows, one per bucket."""
    changes: dict[tuple[Any, ...], ChangePoint] = field(default_factory=dict)

    def bucket_ns(self, bucket: int) -> int:
        """The start of bucket ``bucket``, in ns since the epoch."""
        return self.origin_ns + bucket * self.every_ns


def every_seconds(every: str | float) -> float:
    """A bucket width in seconds from ``"1m"``-style text or a number of seconds."""
    seconds = parse_duration(every) if isinstance(every, str) else float(every)
    if seconds is None or not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"every {every!r} is not a positive duration like {FORMS}, 250ms")
    return seconds


def timeline(
    spans: Spans,
    by: Sequence[str],
    since: str | datetime | float | None = "1h",
    until: str | datetime | float | None = None,
    *,
    every: str | float,
    where: Mapping[str, Any] | None = None,
    model: str | None = None,
    outcome: str = "error",
    slow_ms: float | None = None,
    slow_quantile: float = 0.95,
    limit: int = 1000,
    alpha: float = DEFAULT_ALPHA,
) -> Timeline:
    """`Spans.slice` per time bucket of ``every``, with each combination's change point.

    >>> timeline(spans, ["region"], since="1h", every="1m").result

    Rows: ``bucket`` (its start, UTC ISO 8601), the tags, then the slice's columns; sorted by
    combination (most outcomes first, at most ``limit`` combinations), then by time.
    """
    keys = tag_names(by) if by else []
    every_ns = round(every_seconds(every) * 1e9)
    relation = spans.relation(outcome)
    where_sql, params = spans._window(since, until, where, model)
    origin = params["since_ns"] // every_ns * every_ns
    n_buckets = max(1, -(-(params["until_ns"] - origin) // every_ns))
    if n_buckets > MAX_BUCKETS:
        raise ValueError(
            f"every {every!r} makes {n_buckets} buckets of the window: at most {MAX_BUCKETS}"
        )
    params.update({f"k{i}": key for i, key in enumerate(keys)})
    params.update(origin_ns=origin, every_ns=every_ns)
    notes = spans._outcome_params(relation, where_sql, params, outcome, slow_ms, slow_quantile)
    notes += spans.gaps(params) + spans.horizon(params)
    text = sql.timeline_query(relation, len(keys), outcome, where_sql)
    cells: dict[tuple[Any, ...], dict[int, Sequence[Any]]] = {}
    for row in spans.engine.query(text, params):
        bucket, groups = int(row[0]), tuple(row[1 : 1 + len(keys)])
        cells.setdefault(groups, {})[bucket] = row[1 + len(keys) :]
    ranked = sorted(cells, key=lambda g: _totals(cells[g]), reverse=True)
    if len(ranked) > limit:
        notes.append(f"{len(ranked) - limit} more combinations not shown (limit={limit})")
        ranked = ranked[:limit]
    starts = [iso_time(origin + b * every_ns) for b in range(n_buckets)]
    empty = (0, 0, 0, [0, 0, 0], 0)
    columns = ["bucket", *slice_columns(keys, outcome)]
    found = Timeline(Result(columns, [], notes), origin, every_ns, starts)
    for groups in ranked:
        tags = {k: MISSING if g is None else g for k, g in zip(keys, groups, strict=True)}
        series = []
        for b, start in enumerate(starts):
            record: dict[str, Any] = {"bucket": start, **tags}
            record.update(measures(cells[groups].get(b, empty), outcome))
            series.append(record)
        found.series[groups] = series
        found.result.rows.extend(series)
        change = change_point(
            [r["requests"] for r in series],
            [r[outcome if outcome != "error" else "errors"] for r in series],
            alpha,
            starts,
        )
        found.changes[groups] = change
        name = ", ".join(f"{k}={v}" for k, v in tags.items()) or "all requests"
        notes.append(f"{outcome} in {name}: {change.verdict}")
    if not ranked:
        notes.append("no inference spans in the window")
    return found


def _totals(cells: Mapping[int, Sequence[Any]]) -> tuple[int, int]:
    """(outcomes, requests) of a combination over the window: its rank."""
    return sum(int(c[2]) for c in cells.values()), sum(int(c[0]) for c in cells.values())
