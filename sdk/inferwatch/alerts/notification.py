"""What a channel receives: one alert of one group changing state (or still firing)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Literal

State = Literal["firing", "resolved"]


@dataclass(frozen=True, slots=True)
class Notification:
    """An alert of one policy and group (``ml.model.name=fraud``) that fires or resolved.

    >>> def page(n: Notification) -> None:
    ...     print(n.alert, n.state, n.group, n.value)
    """

    alert: str
    state: State
    severity: str
    summary: str
    description: str
    runbook_url: str | None
    group: dict[str, str]
    """The policy's group-by attributes and their values (empty without group-by)."""
    value: float | None
    """The statistic when the notification was made; None once there is no data."""
    threshold: float
    op: str
    started_at: float
    """Wall-clock time (seconds since the epoch) the alert started firing."""
    at: float
    """Wall-clock time of this notification."""
    labels: dict[str, str] = field(default_factory=dict)
    resource: dict[str, str] = field(default_factory=dict)
    """The process's resource attributes (``service.name``, ...)."""
    suppressed: int = 0
    """Notifications of this alert and channel held back by rate limiting since the last one."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON document a webhook receives (``version`` 1)."""
        return {
            "version": 1,
            "alert": self.alert,
            "state": self.state,
            "severity": self.severity,
            "summary": self.summary,
            "description": self.description,
            "runbook_url": self.runbook_url,
            "group": self.group,
            "labels": self.labels,
            "value": self.value,
            "threshold": self.threshold,
            "op": self.op,
            "started_at": _iso(self.started_at),
            "at": _iso(self.at),
            "resource": self.resource,
            "suppressed": self.suppressed,
        }


def _iso(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
