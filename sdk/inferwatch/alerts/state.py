"""Alert state per policy and group: pending → firing → resolved, as Prometheus does it.

A condition that starts holding makes the group *pending*; once it has held for the policy's
``for`` it *fires* and notifies once (deduplication: a firing alert does not notify again,
unless ``renotify`` is set and that long has passed). When the condition stops holding (or its
data is gone) for longer than ``keep_firing_for``, the alert *resolves* and notifies that. A
pending alert whose condition stops holding goes back to inactive without a word.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from inferwatch.alerts.policy import AlertPolicy
from inferwatch.alerts.statistics import Group

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
Change = Literal["firing", "renotify", "resolved"]


@dataclass(slots=True)
class GroupState:
    status: Literal["pending", "firing"]
    since: float
    """Monotonic time the condition started holding."""
    last_held: float
    value: float | None
    fired_at: float = math.nan
    """Wall-clock time the alert fired."""
    last_notified: float = math.nan


@dataclass(frozen=True, slots=True)
class Transition:
    group: Group
    change: Change
    state: GroupState


class Tracker:
    """The state machine of one policy, over all of its groups."""

    def __init__(self, policy: AlertPolicy) -> None:
        self.policy = policy
        self.holds = _OPS[policy.op]
        self.groups: dict[Group, GroupState] = {}

    def update(
        self, values: Mapping[Group, float | None], now: float, wall: float
    ) -> list[Transition]:
        """Advance every group with this evaluation's values; returns what must be notified."""
        policy = self.policy
        changes: list[Transition] = []
        for group in values.keys() | self.groups.keys():
            value = values.get(group)
            holding = value is not None and self.holds(value, policy.threshold)
            state = self.groups.get(group)
            if holding:
                if state is None:
                    state = self.groups[group] = GroupState("pending", now, now, value)
                state.last_held = now
                state.value = value
                if state.status == "pending" and now - state.since >= policy.for_:
                    state.status = "firing"
                    state.fired_at = wall
                    state.last_notified = now
                    changes.append(Transition(group, "firing", state))
                elif state.status == "firing" and _due(state, policy.renotify, now):
                    state.last_notified = now
                    changes.append(Transition(group, "renotify", state))
            elif state is not None:
                if state.status == "pending":
                    del self.groups[group]
                elif now - state.last_held >= policy.keep_firing_for:
                    del self.groups[group]
                    state.value = value
                    changes.append(Transition(group, "resolved", state))
        return changes

    def firing(self) -> int:
        return sum(1 for s in list(self.groups.values()) if s.status == "firing")


def _due(state: GroupState, renotify: float | None, now: float) -> bool:
    return renotify is not None and now - state.last_notified >= renotify


class RateLimiter:
    """At most ``limit`` notifications per ``period`` for each (alert, channel); counts the rest."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self._sent: dict[tuple[str, str], deque[float]] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def allow(self, key: tuple[str, str], now: float) -> int | None:
        """None if held back, else how many were held back since the last one allowed."""
        sent = self._sent.setdefault(key, deque())
        while sent and now - sent[0] >= self.period:
            sent.popleft()
        if len(sent) >= self.limit:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        sent.append(now)
        return self._suppressed.pop(key, 0)
