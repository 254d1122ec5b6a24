"""``configure(alerts=...)``: the policies, checked at configuration, and the in-process reader.

The reader (`inferwatch.alerts.reader`) evaluates the policies on the metrics of the process at
each collection, on its own interval, and stops within `shutdown()`'s deadline.
"""

from __future__ import annotations

from inferwatch.alerts.loader import AlertsArgument, rules_from
from inferwatch.alerts.policy import AlertRules
from inferwatch.alerts.reader import AlertReader


def setting(value: AlertsArgument) -> AlertRules | None:
    """Rules, policies, a mapping or a YAML path, as `AlertRules` (raises `PolicyError`)."""
    return rules_from(value)


def reader(rules: AlertRules) -> AlertReader:
    return AlertReader(rules)
