"""``configure(alerts=...)``: the policies, checked at configuration, and the in-process reader.

The reader (`inferwatch.alerts.reader`) evaluates the policies on the metrics of the process at
each collection, on its own interval, and stops within `shutdown()`'s deadline. The rules'
``target`` (the path the rendered rules expect the metrics to take) is checked against the
application's metric readers: a mismatch is logged once, since rules rendered for the wrong
path return no data and never fire.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.sdk.metrics.export import MetricReader

from inferwatch.alerts.loader import AlertsArgument, rules_from
from inferwatch.alerts.policy import AlertRules
from inferwatch.alerts.reader import AlertReader
from inferwatch.alerts.targets import DEFAULT_TARGET

_log = logging.getLogger("inferwatch")
_PYTHON_EXPORTER = "opentelemetry.exporter.prometheus"


def setting(value: AlertsArgument) -> AlertRules | None:
    """Rules, policies, a mapping or a YAML path, as `AlertRules` (raises `PolicyError`)."""
    return rules_from(value)


def reader(rules: AlertRules, others: Sequence[MetricReader] = ()) -> AlertReader:
    _check_target(rules, others)
    return AlertReader(rules)


def _check_target(rules: AlertRules, others: Sequence[MetricReader]) -> None:
    scraped = any(
        c.__module__.startswith(_PYTHON_EXPORTER) for r in others for c in type(r).__mro__
    )
    if scraped and rules.target != DEFAULT_TARGET:
        _log.warning(
            "alert policies have target %s, but this process's metrics are scraped from the "
            "OTel Python PrometheusMetricReader: rules rendered from them will not find the "
            "metrics (that path is target %s)",
            rules.target,
            DEFAULT_TARGET,
        )
    elif not scraped and rules.target == DEFAULT_TARGET and "target" in rules.model_fields_set:
        _log.warning(
            "alert policies have target %s, but no OTel Python PrometheusMetricReader is among "
            "this process's metric_readers: render the rules for the path the metrics take "
            '(docs/alerts.md, "Where the metrics go")',
            DEFAULT_TARGET,
        )
