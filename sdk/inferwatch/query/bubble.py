"""BubbleUp: which tag values, and combinations of up to three, concentrate an outcome?

>>> spans.bubble_up(outcome="error", since="1h")

The method, in the order it runs:

1. **Window and keys.** Requests are the inference spans of the window (``since``/``until``,
   ``where``, ``model``); ``n`` of them, ``e`` with the outcome. Candidate keys are ``keys`` if
   given, else every span attribute key seen in the window with 2 to ``max_distinct`` distinct
   values (a span without the key counts as one more value, ``(missing)``), except numeric
   signals (``ml.input.*``, ``ml.prediction.*``, ``ml.stream.*``, ``error.type``, ``otel.*``,
   ``exception.*``). Request ids are never keys, not even when passed in ``keys``.
2. **Order 1** (Honeycomb BubbleUp's comparison): every ``key=value``, its share of the outcome
   requests against its share of the others, and its rate against the rest's.
3. **Orders 2..max_order** (SliceLine, Sagadeeva & Boehm, SIGMOD 2021): a slice ``s`` of
   ``|s|`` requests, ``e_s`` with the outcome, scores
   ``alpha * ((e_s / |s|) / (e / n) - 1) - (1 - alpha) * (n / |s| - 1)``: its rate relative to
   the overall rate, minus a penalty for being small. All slices of one order come from ONE scan
   (``GROUP BY GROUPING SETS``, slices under ``min_support`` left out). A key set of order
   ``k + 1`` is scanned only if each of its ``k``-subsets produced a slice with a positive score
   and SliceLine's upper bound (a child has at most its smallest parent's size and outcomes) says
   one of its slices can still score above 0.
4. **Significance.** Each slice's outcome rate against the rest's: a one-sided two-proportion
   test (Fisher's exact test when a cell of the 2x2 table is under 5, else the z-test). A slice
   of order 2 or 3 is also tested within each slice it refines (its rate against that slice's
   other requests) and keeps the largest p-value (an intersection-union test): a refinement is
   significant only if it adds to every slice it refines, not merely inherits their excess.
   Then Benjamini-Hochberg over every slice the scans returned, at every order.
5. **Report.** Slices with ``lift > 1`` and ``q_value <= fdr``, ranked by score; a slice of
   order 2 or 3 only if its score beats that of every slice it refines (so ``region=ap-south,
   cohort=new`` is not listed when it merely repeats ``region=ap-south``).

Result rows: ``slice`` (``"region=ap-south, cohort=new"``), ``order``, ``size``, ``outcomes``,
``rate``, ``baseline_rate`` (rate among requests outside the slice), ``lift``
(``rate / baseline_rate``; ``None`` when no request outside the slice has the outcome, i.e.
an infinite lift), ``share_of_outcomes`` (``e_s / e``), ``share_of_baseline`` (the slice's share
of the requests without the outcome), ``score``, ``p_value`` (step 4: for a refinement, the
largest of its tests), ``q_value`` and ``predicates`` (key -> value; ``None`` for "the span lacks
the tag", shown as ``(missing)`` in ``slice``).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from inferwatch.query import sql
from inferwatch.query.spans import MISSING, Result

if TYPE_CHECKING:
    from inferwatch.query.spans import Spans

COLUMNS = [
    "slice", "order", "size", "outcomes", "rate", "baseline_rate", "lift", "share_of_outcomes",
    "share_of_baseline", "score", "p_value", "q_value", "predicates",
]  # fmt: skip
# Numeric signals and per-request identities, not tags: never candidate keys on their own.
SIGNAL_PREFIXES = ("ml.input.", "ml.prediction.", "ml.stream.", "error.type", "otel.", "exception.")
ALWAYS_TAGS = ("ml.model.name", "ml.model.version")
_REQUEST_ID = re.compile(r"(^|[._-])request[._-]?id$", re.IGNORECASE)
# Key sets scanned per order at most: one GROUPING SETS scan costs about 20-25 ms per set per
# million spans on two cores, so this keeps an order under ~5 s for a million spans.
MAX_KEY_SETS = 200
# Fisher's exact test when a cell of the 2x2 table is smaller than this.
_FISHER_BELOW = 5

KeySet = tuple[int, ...]
Values = tuple[str | None, ...]


@dataclass
class _Slice:
    keys: KeySet
    values: Values
    size: int
    outcomes: int
    score: float = -math.inf
    p_value: float = 1.0
    q_value: float = 1.0


@dataclass
class _Totals:
    requests: int
    outcomes: int
    alpha: float
    min_support: int

    def score(self, size: float, outcomes: float) -> float:
        """SliceLine's score of a slice of ``size`` requests, ``outcomes`` of them with it."""
        overall = self.outcomes / self.requests
        return self.alpha * ((outcomes / size) / overall - 1) - (1 - self.alpha) * (
            self.requests / size - 1
        )

    def upper_bound(self, size_ub: int, outcomes_ub: int) -> float:
        """The best score a slice with at most this size and these outcomes can have.

        Sizes range over [min_support, size_ub] and outcomes over [0, min(outcomes_ub, size)];
        the score is monotone between the breakpoints min_support, outcomes_ub and size_ub.
        """
        if size_ub < self.min_support or outcomes_ub <= 0:
            return -math.inf
        sizes = {self.min_support, size_ub, min(max(outcomes_ub, self.min_support), size_ub)}
        return max(self.score(s, min(outcomes_ub, s)) for s in sizes)


def bubble_up(
    spans: Spans,
    outcome: str = "error",
    since: str | datetime | float | None = "1h",
    until: str | datetime | float | None = None,
    *,
    where: Mapping[str, Any] | None = None,
    model: str | None = None,
    max_order: int = 3,
    min_support: int | None = None,
    alpha: float = 0.95,
    keys: Sequence[str] | None = None,
    max_distinct: int = 50,
    top: int | None = 20,
    fdr: float = 0.05,
    slow_ms: float | None = None,
    slow_quantile: float = 0.95,
) -> Result:
    """Tag values and combinations of up to ``max_order`` over-represented among ``outcome``.

    >>> bubble_up(spans, outcome="error", since="1h")
    >>> spans.bubble_up(outcome="slow", slow_ms=250, keys=["region", "cohort", "device"])

    ``min_support`` is the smallest slice considered (default: 1% of the window's requests, at
    least 30); ``alpha`` weighs rate against size in the score (SliceLine); ``fdr`` is the
    Benjamini-Hochberg false discovery rate; ``top`` the number of rows shown (None: all).
    ``outcome``, ``slow_ms`` and ``slow_quantile`` are as in `Spans.slice`. See the module
    docstring for the method and the columns.
    """
    _check_options(max_order, min_support, alpha, max_distinct, top, fdr)
    relation = spans.relation(outcome)
    where_sql, params = spans._window(since, until, where, model)
    notes = spans._outcome_params(relation, where_sql, params, outcome, slow_ms, slow_quantile)
    ((requests, outcomes),) = spans.engine.query(
        sql.totals_query(relation, outcome, where_sql), params
    )
    requests, outcomes = int(requests), int(outcomes)
    notes.insert(0, _window_note(params, requests, outcomes, outcome))
    notes[1:1] = spans.gaps(params)
    if requests == 0:
        notes.append("no inference spans in the window")
        return Result(list(COLUMNS), [], notes)
    if outcomes in (0, requests):
        notes.append(
            f"{'no' if outcomes == 0 else 'every'} request is {outcome}: "
            "nothing can be over-represented"
        )
        return Result(list(COLUMNS), [], notes)
    support = min_support if min_support is not None else max(30, math.ceil(requests / 100))
    totals = _Totals(requests, outcomes, alpha, support)
    notes.append(f"min_support: {support} requests")

    seen = spans.engine.query(sql.seen_keys_query(relation, where_sql), params)
    names, dropped = _candidate_keys(seen, requests, keys, max_distinct)
    notes.append(f"keys: {', '.join(names)}" if names else "keys: none")
    if dropped:
        notes.append("keys dropped: " + "; ".join(f"{k} ({why})" for k, why in dropped))
    if not names:
        notes.append("no candidate tag keys: pass keys=[...]")
        return Result(list(COLUMNS), [], notes)

    def scan(key_sets: list[KeySet]) -> dict[KeySet, dict[Values, _Slice]]:
        return _scan(spans, relation, where_sql, params, outcome, names, key_sets, totals)

    scanned = scan([(i,) for i in range(len(names))])
    for order in range(2, max_order + 1):
        candidates, reason = _next_key_sets(scanned, order, totals)
        if reason:
            notes.append(reason)
        if not candidates:
            break
        scanned.update(scan(candidates))

    # (Spans appended to a live segment between two scans can make a slice outgrow the totals.)
    evaluated = [
        s
        for slices in scanned.values()
        for s in slices.values()
        if s.size < requests and s.outcomes <= outcomes
    ]
    _significance(evaluated, scanned, totals)
    rows = [
        _row(s, names, totals)
        for s in sorted(evaluated, key=lambda s: (-s.score, s.p_value))
        if s.q_value <= fdr
        and _rate_outside(s, totals) < s.outcomes / s.size
        and _beats_ancestors(s, scanned)
    ]
    orders = max(len(k) for k in scanned)
    notes.append(
        f"evaluated {len(evaluated)} slices of {len(scanned)} key sets (orders 1..{orders}), "
        "q-values by Benjamini-Hochberg"
    )
    if not rows:
        notes.append(
            f"nothing significantly over-represented among {outcome} requests (q <= {fdr:g})"
        )
    elif top is not None and len(rows) > top:
        notes.append(f"{len(rows) - top} more significant slices not shown (top={top})")
        rows = rows[:top]
    return Result(list(COLUMNS), rows, notes)


def _check_options(
    max_order: int,
    min_support: int | None,
    alpha: float,
    max_distinct: int,
    top: int | None,
    fdr: float,
) -> None:
    if max_order < 1:
        raise ValueError(f"max_order must be at least 1, got {max_order!r}")
    if min_support is not None and min_support < 1:
        raise ValueError(f"min_support must be at least 1, got {min_support!r}")
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    if max_distinct < 2:
        raise ValueError(f"max_distinct must be at least 2, got {max_distinct!r}")
    if top is not None and top < 1:
        raise ValueError(f"top must be at least 1 or None, got {top!r}")
    if not 0 < fdr < 1:
        raise ValueError(f"fdr must be in (0, 1), got {fdr!r}")


def _window_note(params: Mapping[str, Any], requests: int, outcomes: int, outcome: str) -> str:
    start, end = (
        datetime.fromtimestamp(params[k] / 1e9, timezone.utc).isoformat(timespec="seconds")
        for k in ("since_ns", "until_ns")
    )
    rate = f" ({outcomes / requests:.2%})" if requests else ""
    return f"window {start} .. {end}: {requests} requests, {outcomes} {outcome}{rate}"


def is_request_id(key: str) -> bool:
    return bool(_REQUEST_ID.search(key))


def is_signal(key: str) -> bool:
    return key not in ALWAYS_TAGS and key.startswith(SIGNAL_PREFIXES)


def _candidate_keys(
    seen: Iterable[tuple[Any, ...]],
    requests: int,
    keys: Sequence[str] | None,
    max_distinct: int,
) -> tuple[list[str], list[tuple[str, str]]]:
    """(keys to slice by, [(key dropped, why)]) from seen_keys_query rows."""
    # Distinct values, counting "the span lacks the key" as one more.
    distinct = {str(k): int(d) + (int(n) < requests) for k, d, n in seen}
    names: list[str] = []
    dropped: list[tuple[str, str]] = []
    if keys is not None:
        for key in dict.fromkeys([keys] if isinstance(keys, str) else keys):
            if is_request_id(key):
                dropped.append((key, "request id"))
            elif key not in distinct:
                dropped.append((key, "not seen in the window"))
            elif distinct[key] < 2:
                dropped.append((key, "one value in the window"))
            else:
                names.append(key)
        return names, dropped
    for key, count in distinct.items():
        if is_request_id(key):
            dropped.append((key, "request id"))
        elif is_signal(key):
            continue  # numeric signals: by design, not worth a note each
        elif count < 2:
            dropped.append((key, "one value in the window"))
        elif count > max_distinct:
            dropped.append((key, f"{count} distinct values > max_distinct={max_distinct}"))
        else:
            names.append(key)
    return names, dropped


def _scan(
    spans: Spans,
    relation: str,
    where_sql: str,
    params: Mapping[str, Any],
    outcome: str,
    names: Sequence[str],
    key_sets: list[KeySet],
    totals: _Totals,
) -> dict[KeySet, dict[Values, _Slice]]:
    """Every slice (at least min_support requests) of the key sets, from one query."""
    involved = sorted({i for ks in key_sets for i in ks})
    local = {key: j for j, key in enumerate(involved)}
    bound = {**params, "min_support": totals.min_support}
    bound.update({f"k{j}": names[key] for j, key in enumerate(involved)})
    sets = [[local[i] for i in ks] for ks in key_sets]
    text = sql.grouping_sets_query(relation, len(involved), sets, outcome, where_sql)
    result: dict[KeySet, dict[Values, _Slice]] = {ks: {} for ks in key_sets}
    by_members = {frozenset(s): ks for s, ks in zip(sets, key_sets, strict=True)}
    for row in spans.engine.query(text, bound):
        coded, size, outcomes = row[: len(involved)], int(row[-2]), int(row[-1])
        members = frozenset(j for j, g in enumerate(coded) if g)
        key_set = by_members[members]
        values = tuple(_decode(coded[local[i]]) for i in key_set)
        result[key_set][values] = _Slice(key_set, values, size, outcomes)
        result[key_set][values].score = totals.score(size, outcomes)
    return result


def _decode(coded: str) -> str | None:
    return coded[len(sql.PRESENT) :] if coded.startswith(sql.PRESENT) else None


def _next_key_sets(
    scanned: Mapping[KeySet, Mapping[Values, _Slice]], order: int, totals: _Totals
) -> tuple[list[KeySet], str]:
    """Key sets of ``order`` worth a scan, best first, and a note on what was pruned."""
    positive = {
        ks
        for ks, slices in scanned.items()
        if len(ks) == order - 1 and any(s.score > 0 for s in slices.values())
    }
    joined = {
        tuple(sorted({*a, *b}))
        for a, b in itertools.combinations(sorted(positive), 2)
        if a[:-1] == b[:-1]
    }
    apriori = [
        ks
        for ks in sorted(joined)
        if all(s in positive for s in itertools.combinations(ks, order - 1))
    ]
    bounded = [(bound, ks) for ks in apriori if (bound := _child_bound(ks, scanned, totals)) > 0]
    bounded.sort(key=lambda b: -b[0])
    chosen = [ks for _, ks in bounded[:MAX_KEY_SETS]]
    if not apriori:
        return [], f"order {order}: no key set whose parts all have a positive-score slice"
    note = f"order {order}: {len(chosen)} key sets scanned"
    if len(bounded) < len(apriori):
        note += f", {len(apriori) - len(bounded)} pruned by SliceLine's upper bound"
    if len(chosen) < len(bounded):
        note += f", {len(bounded) - len(chosen)} over the limit of {MAX_KEY_SETS} left out"
    return chosen, note


def _child_bound(
    key_set: KeySet, scanned: Mapping[KeySet, Mapping[Values, _Slice]], totals: _Totals
) -> float:
    """The best score any slice of ``key_set`` can reach, from its parents' sizes and outcomes."""
    parents = [scanned[key_set[:i] + key_set[i + 1 :]] for i in range(len(key_set))]
    best = -math.inf
    for head in scanned[key_set[:-1]]:
        for (last,) in scanned[key_set[-1:]]:
            values = (*head, last)
            size_ub = outcomes_ub = totals.requests
            for i, slices in enumerate(parents):
                parent = slices.get(values[:i] + values[i + 1 :])
                if parent is None:  # under min_support: so is the child
                    break
                size_ub, outcomes_ub = min(size_ub, parent.size), min(outcomes_ub, parent.outcomes)
            else:
                best = max(best, totals.upper_bound(size_ub, outcomes_ub))
    return best


def _rate_outside(s: _Slice, totals: _Totals) -> float:
    return (totals.outcomes - s.outcomes) / (totals.requests - s.size)


def _significance(
    slices: Sequence[_Slice], scanned: Mapping[KeySet, Mapping[Values, _Slice]], totals: _Totals
) -> None:
    """p-values (intersection-union for refinements) and Benjamini-Hochberg q-values."""
    if not slices:
        return
    import numpy as np
    from scipy import stats

    n, e = totals.requests, totals.outcomes
    p_values = one_sided([(s.outcomes, s.size, e - s.outcomes, n - s.size) for s in slices])
    # A refinement must also be over-represented within each slice it refines (against that
    # slice's other requests): the null is rejected only if every one of these tests rejects it.
    pairs = [(i, a) for i, s in enumerate(slices) for a in _ancestors(s, scanned)]
    if pairs:
        within = one_sided(
            [
                (
                    slices[i].outcomes,
                    slices[i].size,
                    a.outcomes - slices[i].outcomes,
                    a.size - slices[i].size,
                )
                for i, a in pairs
            ]
        )
        np.maximum.at(p_values, np.array([i for i, _ in pairs]), within)
    q_values = stats.false_discovery_control(p_values, method="bh")
    for s, p, q in zip(slices, p_values, q_values, strict=True):
        s.p_value, s.q_value = float(p), float(q)


def one_sided(tables: Sequence[tuple[int, int, int, int]]) -> Any:
    """p-values of "hits/size > other_hits/other_size" for (hits, size, other_hits, other_size).

    Fisher's exact test when a cell of the 2x2 table is under 5, else the two-proportion z-test
    with the pooled rate; 1 where the comparison is empty or the pooled rate is 0 or 1.
    """
    import numpy as np
    from scipy import stats

    hits, size, other_hits, other_size = np.array(tables, dtype=float).reshape(-1, 4).T
    pooled = (hits + other_hits) / np.maximum(size + other_size, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(pooled * (1 - pooled) * (1 / size + 1 / other_size))
        z = (hits / size - other_hits / other_size) / se
    p_values = np.where((other_size > 0) & (se > 0), stats.norm.sf(z), 1.0)
    cells = np.stack([hits, size - hits, other_hits, other_size - other_hits])
    small = (cells.min(axis=0) < _FISHER_BELOW) & (other_size > 0)
    for i in np.flatnonzero(small):
        table = cells[:, i].astype(np.int64).reshape(2, 2)
        p_values[i] = stats.fisher_exact(table, alternative="greater").pvalue
    return np.clip(np.nan_to_num(p_values, nan=1.0), 0.0, 1.0)


def _ancestors(s: _Slice, scanned: Mapping[KeySet, Mapping[Values, _Slice]]) -> list[_Slice]:
    """The slices ``s`` refines (every proper subset of its predicates) that were scanned."""
    found = []
    for r in range(1, len(s.keys)):
        for subset in itertools.combinations(range(len(s.keys)), r):
            keys = tuple(s.keys[i] for i in subset)
            ancestor = scanned.get(keys, {}).get(tuple(s.values[i] for i in subset))
            if ancestor is not None:
                found.append(ancestor)
    return found


def _beats_ancestors(s: _Slice, scanned: Mapping[KeySet, Mapping[Values, _Slice]]) -> bool:
    """A slice of order k > 1 is worth showing only if it scores above every slice it refines."""
    return all(a.score < s.score for a in _ancestors(s, scanned))


def _row(s: _Slice, names: Sequence[str], totals: _Totals) -> dict[str, Any]:
    predicates = {names[k]: v for k, v in zip(s.keys, s.values, strict=True)}
    rate, outside = s.outcomes / s.size, _rate_outside(s, totals)
    return {
        "slice": ", ".join(f"{k}={MISSING if v is None else v}" for k, v in predicates.items()),
        "order": len(s.keys),
        "size": s.size,
        "outcomes": s.outcomes,
        "rate": rate,
        "baseline_rate": outside,
        "lift": rate / outside if outside > 0 else None,
        "share_of_outcomes": s.outcomes / totals.outcomes,
        "share_of_baseline": (s.size - s.outcomes) / (totals.requests - totals.outcomes),
        "score": s.score,
        "p_value": s.p_value,
        "q_value": s.q_value,
        "predicates": predicates,
    }
