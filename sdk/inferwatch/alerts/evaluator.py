"""One evaluation: take a collection, compute every policy's statistic, advance its state.

Pure logic on explicit clocks (no threads), so it can be driven step by step; the
`AlertReader` runs it on each collection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.metrics.export import MetricsData

from inferwatch.alerts.catalog import KNOWN_METRICS
from inferwatch.alerts.history import MetricHistory, record_all
from inferwatch.alerts.notification import Notification
from inferwatch.alerts.policy import AlertPolicy, AlertRules
from inferwatch.alerts.state import Tracker, Transition
from inferwatch.alerts.statistics import Group, PolicyStatistic
from inferwatch.errors import contained

_RESOURCE_PREFIXES = ("service.", "deployment.", "host.name", "k8s.")


class Evaluator:
    """The histories, statistics and state machines of a set of policies."""

    def __init__(self, rules: AlertRules) -> None:
        self.rules = rules
        horizons: dict[str, tuple[Any, float]] = {}
        for policy in rules.policies:
            for name in (policy.metric, policy.denominator):
                if name is None:
                    continue
                info = policy.info if name == policy.metric else KNOWN_METRICS[name]
                _, horizon = horizons.get(name, (info.kind, 0.0))
                horizons[name] = (info.kind, max(horizon, policy.window))
        self.histories = {
            name: MetricHistory(name, kind, horizon) for name, (kind, horizon) in horizons.items()
        }
        self._statistics = [PolicyStatistic(p) for p in rules.policies]
        self.trackers = [Tracker(p) for p in rules.policies]
        self.values: dict[str, Mapping[Group, float | None]] = {}
        """Each policy's statistic per group at the last evaluation."""

    def evaluate(
        self, data: MetricsData, now: float, wall: float
    ) -> list[tuple[AlertPolicy, Notification]]:
        """Record ``data`` taken at ``now`` (monotonic); the notifications it causes."""
        resource = record_all(self.histories, data, now).get("attributes", {})
        attributes = {
            str(k): str(v) for k, v in resource.items() if str(k).startswith(_RESOURCE_PREFIXES)
        }
        out: list[tuple[AlertPolicy, Notification]] = []
        for statistic, tracker in zip(self._statistics, self.trackers, strict=True):
            policy = statistic.policy
            try:
                values = self.values[policy.name] = statistic.values(self.histories, now)
                for transition in tracker.update(values, now, wall):
                    out.append((policy, _notification(policy, transition, wall, attributes)))
            except Exception as exc:  # one policy's bug must not silence the others
                contained.error("alerts.evaluate", exc)
        return out


def _notification(
    policy: AlertPolicy, transition: Transition, wall: float, resource: Mapping[str, str]
) -> Notification:
    state = transition.state
    return Notification(
        alert=policy.name,
        state="resolved" if transition.change == "resolved" else "firing",
        severity=policy.severity,
        summary=policy.summary or policy.default_summary(),
        description=policy.description,
        runbook_url=policy.runbook_url,
        group=dict(zip(policy.group_by, transition.group, strict=True)),
        value=state.value,
        threshold=policy.threshold,
        op=policy.op,
        started_at=state.fired_at,
        at=wall,
        labels=dict(policy.labels),
        resource=dict(resource),
    )
