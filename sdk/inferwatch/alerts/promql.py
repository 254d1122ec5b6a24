"""PromQL for a policy: the same statistic, window, filters and groups, on the target's names.

Series are aggregated ``by (job, <group_by labels>)``: every path into Prometheus sets ``job``
(the scrape job, or ``service.namespace``/``service.name`` where the collector or Prometheus'
OTLP receiver translates), so one rule serves every service and alerts each one on its own data,
as the in-process evaluator does. A ratio whose numerator has no series yet (no errors at all)
is 0, not absent: ``(numerator or denominator * 0)``. Names a target keeps in UTF-8
(``ml.model.name``) are quoted, as Prometheus 3 reads them: ``{"ml.x_total", "ml.model.name"="a"}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from inferwatch.alerts.catalog import KNOWN_METRICS, MetricInfo
from inferwatch.alerts.policy import AlertPolicy, AlertRules, Filter, format_duration
from inferwatch.alerts.targets import (
    DEFAULT_TARGET,
    Target,
    is_legacy_label_name,
    is_legacy_metric_name,
    label_name,
)

JOB = "job"
_OVER_TIME = {
    "last": "last_over_time",
    "max": "max_over_time",
    "min": "min_over_time",
    "avg": "avg_over_time",
}


def chosen(
    policies: AlertRules | Sequence[AlertPolicy], target: Target | None
) -> tuple[tuple[AlertPolicy, ...], Target]:
    """The policies, and the target: the one given, else the rules', else the default."""
    if isinstance(policies, AlertRules):
        return policies.policies, target or policies.target
    return tuple(policies), target or DEFAULT_TARGET


def string(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def label(key: str, target: Target = DEFAULT_TARGET) -> str:
    """The label of an OTel attribute as PromQL writes it (quoted when not a legacy name)."""
    name = label_name(key, target)
    return name if is_legacy_label_name(name) else string(name)


def selector(series: str, matchers: Sequence[str] = ()) -> str:
    """``name{matchers}``, or ``{"name", matchers}`` for a name only UTF-8 allows."""
    if is_legacy_metric_name(series):
        return series + ("{" + ", ".join(matchers) + "}" if matchers else "")
    return "{" + ", ".join([string(series), *matchers]) + "}"


def matchers(*filters: Filter, target: Target = DEFAULT_TARGET) -> list[str]:
    """``label="v"``, ``other=~"a|b"``, ``present!=""`` for the filters, ANDed."""
    parts = []
    for key, wanted in (item for f in filters for item in f.items()):
        name = label(key, target)
        if wanted == "*":
            parts.append(f'{name}!=""')
        elif isinstance(wanted, list):
            parts.append(f"{name}=~{string('|'.join(re.escape(v) for v in wanted))}")
        elif wanted.startswith("!"):
            parts.append(f"{name}!={string(wanted[1:])}")
        else:
            parts.append(f"{name}={string(wanted)}")
    return parts


def by_clause(policy: AlertPolicy, *extra: str, target: Target = DEFAULT_TARGET) -> str:
    labels = [JOB, *extra, *(label(k, target) for k in policy.group_by)]
    return f"by ({', '.join(labels)})"


def _counted(info: MetricInfo, target: Target) -> str:
    """The series whose increase counts events: counters, or the ``_count`` of histograms."""
    return info.prometheus_series("count" if info.kind == "histogram" else "", target)


def expression(
    policy: AlertPolicy, selector_extra: Sequence[str] = (), target: Target = DEFAULT_TARGET
) -> str:
    """The PromQL of the policy's statistic (without the comparison).

    ``selector_extra``: matchers added to every selector (a dashboard's ``job=~"$job"``).
    """
    info = policy.info
    window = f"[{format_duration(policy.window)}]"
    where = policy.where
    by = by_clause(policy, target=target)
    statistic = policy.statistic

    def series(name: str, *filters: Filter) -> str:
        return selector(name, [*selector_extra, *matchers(*filters, target=target)]) + window

    if info.kind == "gauge":
        samples = series(info.prometheus_name(target), where)
        return f"{policy.combine_series} {by} ({_OVER_TIME[statistic]}({samples}))"
    if statistic == "quantile":
        buckets = series(info.prometheus_series("bucket", target), where)
        by_le = by_clause(policy, "le", target=target)
        return f"histogram_quantile({policy.quantile!r}, sum {by_le} (rate({buckets})))"
    counted = _counted(info, target)

    def total(name: str, *filters: Filter) -> str:
        return f"sum {by} (increase({series(name, *filters)}))"

    if statistic == "increase":
        return total(counted, where)
    if statistic == "rate":
        return f"sum {by} (rate({series(counted, where)}))"
    if statistic == "mean":
        return f"{total(info.prometheus_series('sum', target), where)} / {total(counted, where)}"
    # ratio
    if policy.numerator is not None:
        numerator = total(counted, where, policy.numerator)
        denominator = total(counted, where)
    else:
        assert policy.denominator is not None
        numerator = total(counted, where)
        denominator = total(_counted(KNOWN_METRICS[policy.denominator], target), where)
    return f"({numerator} or {denominator} * 0) / {denominator}"


def condition(policy: AlertPolicy, target: Target = DEFAULT_TARGET) -> str:
    """The alerting expression: the statistic compared with the threshold."""
    return f"{expression(policy, target=target)} {policy.op} {policy.threshold!r}"
