"""Rate limiting and routing of notifications to their channels.

Each (alert, channel) pair may send at most ``rate_limit.max`` notifications per
``rate_limit.per`` (the channel's own limit, else the rules' default). What is held back is
counted (outcome ``rate_limited``), logged once when holding back starts, and reported in the
``suppressed`` field of the next notification that goes out.
"""

from __future__ import annotations

import dataclasses
import logging

from inferwatch import semconv
from inferwatch.alerts.channels import Outcome, Worker, log_event, make_worker
from inferwatch.alerts.notification import Notification
from inferwatch.alerts.policy import AlertPolicy, AlertRules, LogChannel, format_duration
from inferwatch.alerts.state import RateLimiter
from inferwatch.errors import log_internal_error

_log = logging.getLogger("inferwatch.alerts")


class Dispatcher:
    def __init__(self, rules: AlertRules, on_outcome: Outcome) -> None:
        self._rules = rules
        self._on_outcome = on_outcome
        self._limiters: dict[str, RateLimiter] = {}
        self._workers: dict[str, Worker] = {}
        self._holding: set[tuple[str, str]] = set()

    def send(self, policy: AlertPolicy, notification: Notification, now: float) -> None:
        """Hand the notification to each of the policy's channels; never blocks or raises."""
        for name in policy.channels:
            key = (policy.name, name)
            suppressed = self._limiter(name).allow(key, now)
            if suppressed is None:
                self._on_outcome(notification, name, semconv.OUTCOME_RATE_LIMITED)
                if key not in self._holding:
                    self._holding.add(key)
                    limit = self._limiter(name)
                    _log.warning(
                        "alert %s: more than %d notifications on channel %s within %s; further "
                        "ones are held back and counted until the rate allows again",
                        policy.name,
                        limit.limit,
                        name,
                        format_duration(limit.period),
                    )
                continue
            self._holding.discard(key)
            if suppressed:
                notification = dataclasses.replace(notification, suppressed=suppressed)
            channel = self._rules.channel(name)
            if isinstance(channel, LogChannel):
                try:
                    log_event(notification)
                except Exception as exc:
                    log_internal_error("alerts.log", exc)
                    self._on_outcome(notification, name, semconv.OUTCOME_FAILED)
                else:
                    self._on_outcome(notification, name, semconv.OUTCOME_SENT)
                continue
            worker = self._workers.get(name)
            if worker is None:
                worker = self._workers[name] = make_worker(name, channel, self._on_outcome)
            worker.submit(notification)

    def _limiter(self, channel: str) -> RateLimiter:
        limiter = self._limiters.get(channel)
        if limiter is None:
            spec = self._rules.channel(channel).rate_limit or self._rules.rate_limit
            limiter = self._limiters[channel] = RateLimiter(spec.max, spec.per)
        return limiter

    def stop(self, deadline: float) -> None:
        """Let the workers deliver what is queued until ``deadline`` (monotonic time)."""
        workers = list(self._workers.values())
        for worker in workers:  # all at once: one slow webhook must not eat the others' time
            worker.close()
        for worker in workers:
            worker.join(deadline)
