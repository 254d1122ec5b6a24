"""Alert policies: declared once, evaluated in the process, rendered for Prometheus and Grafana.

>>> rules = iw.alerts.load_rules("collector_config/alerts.yaml")
>>> iw.configure(service_name="fraud-api", alerts=rules)        # evaluated in-process
>>> text = iw.alerts.render_prometheus_rules(rules, target="UnderscoreEscapingWithSuffixes")

``python -m inferwatch.alerts render POLICIES.yaml --out DIR [--target T]`` writes the
Prometheus rule file and the Grafana dashboard, with the metric names of the path ``T`` the
metrics take into Prometheus (`TARGETS`; default ``otel-python``). See docs/alerts.md.
"""

from inferwatch.alerts.grafana import render_grafana_dashboard
from inferwatch.alerts.loader import AlertsArgument, load_rules, rules_from
from inferwatch.alerts.notification import Notification
from inferwatch.alerts.policy import (
    AlertPolicy,
    AlertRules,
    CallableChannel,
    LogChannel,
    PolicyError,
    RateLimit,
    WebhookChannel,
)
from inferwatch.alerts.prometheus import render_prometheus_rules
from inferwatch.alerts.reader import AlertReader
from inferwatch.alerts.targets import DEFAULT_TARGET, TARGETS, Target

__all__ = [
    "DEFAULT_TARGET",
    "TARGETS",
    "AlertPolicy",
    "AlertReader",
    "AlertRules",
    "AlertsArgument",
    "CallableChannel",
    "LogChannel",
    "Notification",
    "PolicyError",
    "RateLimit",
    "Target",
    "WebhookChannel",
    "load_rules",
    "render_grafana_dashboard",
    "render_prometheus_rules",
    "rules_from",
]
