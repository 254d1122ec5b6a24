"""A policy's statistic per group, from the recent collections of its metric.

Each statistic means what its PromQL counterpart in `inferwatch.alerts.promql` computes, so
the in-process alert and the backend's rule agree: ``increase`` and ``rate`` of counters (and
of histogram counts), ``ratio`` of two increases, ``mean`` and ``quantile`` of a histogram
(``histogram_quantile``'s interpolation), and ``last``/``max``/``min``/``avg`` of a gauge's
samples in the window, combined over the group's series.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from inferwatch.alerts.history import HistogramValue, MetricHistory, SeriesKey
from inferwatch.alerts.policy import AlertPolicy, Filter

Group = tuple[str, ...]
"""The values of a policy's group-by attributes ("" where a series lacks one)."""


def label_value(value: Any) -> str:
    """An attribute value as it appears in a Prometheus label (booleans: true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def matches(attributes: Mapping[str, Any], where: Filter) -> bool:
    """``where`` semantics: a value, any of a list, ``"!v"`` not v, ``"*"`` present, ``""``
    absent."""
    for key, wanted in where.items():
        have = attributes.get(key)
        text = "" if have is None else label_value(have)
        if wanted == "*":
            if not text:
                return False
        elif isinstance(wanted, list):
            if text not in wanted:
                return False
        elif wanted.startswith("!"):
            if text == wanted[1:]:
                return False
        elif text != wanted:
            return False
    return True


class _Members:
    """Which series of a metric a policy reads, with their group; cached per series set."""

    def __init__(self, where: Filter, group_by: tuple[str, ...], numerator: Filter | None) -> None:
        self.where = where
        self.group_by = group_by
        self.numerator = numerator
        self._generation = -1
        self._members: dict[SeriesKey, tuple[Group, bool]] = {}

    def of(self, history: MetricHistory) -> dict[SeriesKey, tuple[Group, bool]]:
        if history.generation != self._generation:
            members = {}
            for key, series in history.series.items():
                attributes = series.attributes
                if matches(attributes, self.where):
                    group = tuple(label_value(attributes.get(k, "")) for k in self.group_by)
                    in_numerator = self.numerator is not None and matches(
                        attributes, self.numerator
                    )
                    members[key] = (group, in_numerator)
            self._members = members
            self._generation = history.generation
        return self._members


class PolicyStatistic:
    """Computes one policy's statistic for every group present in the window."""

    def __init__(self, policy: AlertPolicy) -> None:
        self.policy = policy
        self.kind = policy.info.kind
        self._members = _Members(policy.where, policy.group_by, policy.numerator)
        self._denominator = _Members(policy.where, policy.group_by, None)

    def values(
        self, histories: Mapping[str, MetricHistory], now: float
    ) -> dict[Group, float | None]:
        history = histories[self.policy.metric]
        if self.kind == "gauge":
            return self._gauge(history, now)
        return self._counts(histories, history, now)

    def _gauge(self, history: MetricHistory, now: float) -> dict[Group, float | None]:
        statistic = self.policy.statistic
        members = self._members.of(history)
        per_group: dict[Group, list[float]] = {}
        for key, samples in history.samples(now, self.policy.window):
            member = members.get(key)
            if member is None:
                continue
            finite = [v for v in samples if math.isfinite(v)]
            if finite:
                per_group.setdefault(member[0], []).append(_reduce(statistic, finite))
        combine = self.policy.combine_series
        return {group: _reduce(combine, values) for group, values in per_group.items()}

    def _counts(
        self, histories: Mapping[str, MetricHistory], history: MetricHistory, now: float
    ) -> dict[Group, float | None]:
        policy = self.policy
        statistic = policy.statistic
        quantile = statistic == "quantile"
        members = self._members.of(history)
        totals: dict[Group, float] = {}
        numerators: dict[Group, float] = {}
        sums: dict[Group, float] = {}
        buckets: dict[Group, tuple[tuple[float, ...], list[float]]] = {}
        for key, increase in history.increases(now, policy.window, buckets=quantile):
            member = members.get(key)
            if member is None:
                continue
            group, in_numerator = member
            count = increase.count if isinstance(increase, HistogramValue) else increase
            totals[group] = totals.get(group, 0.0) + count
            if in_numerator:
                numerators[group] = numerators.get(group, 0.0) + count
            if isinstance(increase, HistogramValue):
                sums[group] = sums.get(group, 0.0) + increase.sum
                if quantile:
                    _add_buckets(buckets, group, increase)
        if statistic == "increase":
            return dict(totals)
        if statistic == "rate":
            return {g: total / policy.window for g, total in totals.items()}
        if statistic == "mean":
            return {g: sums[g] / t if t > 0 else None for g, t in totals.items()}
        if statistic == "quantile":
            q = policy.quantile or 0.5
            return {g: histogram_quantile(q, *buckets[g]) if g in buckets else None for g in totals}
        if policy.denominator is None:  # ratio of the numerator's points
            return {g: numerators.get(g, 0.0) / t if t > 0 else None for g, t in totals.items()}
        denominators = self._denominator_totals(histories, now)
        groups = totals.keys() | denominators.keys()
        return {
            g: totals.get(g, 0.0) / denominators[g] if denominators.get(g, 0.0) > 0 else None
            for g in groups
        }

    def _denominator_totals(
        self, histories: Mapping[str, MetricHistory], now: float
    ) -> dict[Group, float]:
        assert self.policy.denominator is not None
        history = histories[self.policy.denominator]
        members = self._denominator.of(history)
        totals: dict[Group, float] = {}
        for key, increase in history.increases(now, self.policy.window):
            member = members.get(key)
            if member is not None:
                count = increase.count if isinstance(increase, HistogramValue) else increase
                totals[member[0]] = totals.get(member[0], 0.0) + count
        return totals


def _add_buckets(
    buckets: dict[Group, tuple[tuple[float, ...], list[float]]],
    group: Group,
    increase: HistogramValue,
) -> None:
    found = buckets.get(group)
    if found is None:
        buckets[group] = (increase.bounds, list(increase.buckets))
    elif found[0] == increase.bounds:  # series with other boundaries (a view) cannot merge
        counts = found[1]
        for i, n in enumerate(increase.buckets):
            counts[i] += n


def _reduce(how: str, values: list[float]) -> float:
    if how == "last":
        return values[-1]
    if how == "max":
        return max(values)
    if how == "min":
        return min(values)
    if how == "sum":
        return math.fsum(values)
    return math.fsum(values) / len(values)  # avg


def histogram_quantile(q: float, bounds: tuple[float, ...], counts: list[float]) -> float | None:
    """Prometheus ``histogram_quantile`` over explicit buckets (per-bucket, not cumulative).

    Linear interpolation inside the bucket holding the rank; the first bucket starts at 0 (when
    its upper bound is positive); a rank in the overflow bucket gives the highest finite bound.
    """
    total = math.fsum(counts)
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    for i, n in enumerate(counts):
        if cumulative + n >= rank and n > 0:
            if i == len(bounds):  # the (+Inf) overflow bucket
                return bounds[-1] if bounds else None
            upper = bounds[i]
            if i == 0:
                if upper <= 0:
                    return upper
                lower = 0.0
            else:
                lower = bounds[i - 1]
            return lower + (upper - lower) * (rank - cumulative) / n
        cumulative += n
    return bounds[-1] if bounds else None
