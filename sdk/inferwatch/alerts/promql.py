"""PromQL for a policy: the same statistic, window, filters and groups, on the collector's names.

Series are aggregated ``by (job, <group_by labels>)``: the collector's Prometheus exporter
sets ``job`` from ``service.namespace``/``service.name``, so one rule serves every service and
alerts each one on its own data, as the in-process evaluator does. A ratio whose numerator has
no series yet (no errors at all) is 0, not absent: ``(numerator or denominator * 0)``.
"""

from __future__ import annotations

import re

from inferwatch.alerts.catalog import KNOWN_METRICS, MetricInfo, prometheus_label
from inferwatch.alerts.policy import AlertPolicy, Filter, format_duration

JOB = "job"
_OVER_TIME = {
    "last": "last_over_time",
    "max": "max_over_time",
    "min": "min_over_time",
    "avg": "avg_over_time",
}


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def matchers(*filters: Filter, extra: str = "") -> str:
    """``{label="v", other=~"a|b", present!=""}`` for filters, ANDed (``""`` if none)."""
    parts = [extra] if extra else []
    for key, wanted in (item for f in filters for item in f.items()):
        label = prometheus_label(key)
        if wanted == "*":
            parts.append(f'{label}!=""')
        elif isinstance(wanted, list):
            parts.append(f"{label}=~{_string('|'.join(re.escape(v) for v in wanted))}")
        elif wanted.startswith("!"):
            parts.append(f"{label}!={_string(wanted[1:])}")
        else:
            parts.append(f"{label}={_string(wanted)}")
    return "{" + ", ".join(parts) + "}" if parts else ""


def by_clause(policy: AlertPolicy, *extra: str) -> str:
    labels = [JOB, *extra, *(prometheus_label(k) for k in policy.group_by)]
    return f"by ({', '.join(labels)})"


def _counted(info: MetricInfo) -> str:
    """The series whose increase counts events: ``_total`` of counters, ``_count`` of histograms."""
    return info.prometheus_series("count") if info.kind == "histogram" else info.prometheus_name


def expression(policy: AlertPolicy, selector_extra: str = "") -> str:
    """The PromQL of the policy's statistic (without the comparison)."""
    info = policy.info
    window = f"[{format_duration(policy.window)}]"
    where = policy.where
    by = by_clause(policy)
    statistic = policy.statistic
    if info.kind == "gauge":
        combine = policy.combine_series
        series = f"{info.prometheus_name}{matchers(where, extra=selector_extra)}{window}"
        return f"{combine} {by} ({_OVER_TIME[statistic]}({series}))"
    if statistic == "quantile":
        bucket = info.prometheus_series("bucket")
        series = f"{bucket}{matchers(where, extra=selector_extra)}{window}"
        by_le = by_clause(policy, "le")
        return f"histogram_quantile({policy.quantile!r}, sum {by_le} (rate({series})))"
    counted = _counted(info)

    def total(series: str, *filters: Filter) -> str:
        return f"sum {by} (increase({series}{matchers(*filters, extra=selector_extra)}{window}))"

    if statistic == "increase":
        return total(counted, where)
    if statistic == "rate":
        return f"sum {by} (rate({counted}{matchers(where, extra=selector_extra)}{window}))"
    if statistic == "mean":
        return f"{total(info.prometheus_series('sum'), where)} / {total(counted, where)}"
    # ratio
    if policy.numerator is not None:
        numerator = total(counted, where, policy.numerator)
        denominator = total(counted, where)
    else:
        assert policy.denominator is not None
        numerator = total(counted, where)
        denominator = total(_counted(KNOWN_METRICS[policy.denominator]), where)
    return f"({numerator} or {denominator} * 0) / {denominator}"


def condition(policy: AlertPolicy) -> str:
    """The alerting expression: the statistic compared with the threshold."""
    return f"{expression(policy)} {policy.op} {policy.threshold!r}"
