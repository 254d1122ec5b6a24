"""`AlertReader`: an OTel metric reader that evaluates alert policies in the process.

Registered with inferwatch's MeterProvider (``iw.configure(alerts=...)`` does it), it collects
on its own interval on a daemon thread, like the SDK's periodic exporting reader, and hands
each collection to the evaluator instead of an exporter. Notifications leave through their
channels without blocking it. Shutting the provider down stops the thread and gives queued
notifications what is left of the shutdown deadline.

>>> reader = AlertReader(load_rules("alerts.yaml"))
>>> MeterProvider(metric_readers=[reader])   # with your own provider
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.sdk.metrics.export import MetricReader, MetricsData

from inferwatch import forks, semconv
from inferwatch.alerts.dispatch import Dispatcher
from inferwatch.alerts.evaluator import Evaluator
from inferwatch.alerts.notification import Notification
from inferwatch.alerts.policy import AlertRules
from inferwatch.errors import contained, log_internal_error
from inferwatch.export import instruments
from inferwatch.version import __version__


class AlertReader(MetricReader):
    """Evaluates ``rules`` on every collection; collects every ``evaluation_interval``.

    ``clock`` (monotonic seconds) and ``wall_clock`` (epoch seconds) are injectable, and with
    ``autostart=False`` no thread runs: call `collect()` to evaluate.
    """

    def __init__(
        self,
        rules: AlertRules,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        autostart: bool = True,
    ) -> None:
        super().__init__()  # cumulative temporality: windows are differences of totals
        self.rules = rules
        self._clock = clock
        self._wall_clock = wall_clock
        self._evaluator = Evaluator(rules)
        self._dispatcher = Dispatcher(rules, self._count_outcome)
        self._lock = threading.Lock()
        self._evaluating = threading.Lock()  # a force_flush may collect while the thread does
        self._outcomes: Counter[tuple[str, str, str]] = Counter()
        self._notifications: Any = None
        self._stop = threading.Event()
        self._shut_down = False
        self.evaluation_cpu_seconds = 0.0
        """CPU time (this process's thread time) spent evaluating, summed over collections."""
        self._autostart = autostart
        self._thread: threading.Thread | None = None
        self._start_thread()
        this = weakref.WeakMethod(self._after_fork_in_child)  # pre-fork workers evaluate too
        forks.on_fork_in_child(lambda: _call(this))

    def _start_thread(self) -> None:
        if self._autostart and not self._shut_down:
            self._thread = threading.Thread(target=self._run, name="inferwatch-alerts", daemon=True)
            self._thread.start()

    def _after_fork_in_child(self) -> None:
        """Threads do not survive fork: new locks, a new evaluation thread, new workers."""
        self._lock = threading.Lock()
        self._evaluating = threading.Lock()
        self._dispatcher = Dispatcher(self.rules, self._count_outcome)
        self._thread = None
        self._start_thread()

    # -- MetricReader --------------------------------------------------------------------------
    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        with self._evaluating:
            started = time.thread_time()
            try:
                now = self._clock()
                for policy, notification in self._evaluator.evaluate(
                    metrics_data, now, self._wall_clock()
                ):
                    self._dispatcher.send(policy, notification, now)
            except Exception as exc:
                contained.error("alerts.evaluate", exc)
            finally:
                self.evaluation_cpu_seconds += time.thread_time() - started

    def _set_meter_provider(self, meter_provider: MeterProvider) -> None:
        """Called by the SDK's MeterProvider on registration: our own metrics go there too."""
        parent = getattr(super(), "_set_meter_provider", None)
        if parent is not None:
            parent(meter_provider)
        meter = meter_provider.get_meter(semconv.INSTRUMENTATION_NAME, __version__)
        self._notifications = instruments.counter(meter, semconv.METRIC_ALERT_NOTIFICATIONS)
        instruments.observable_gauge(meter, semconv.METRIC_ALERT_ACTIVE, [self._observe_active])

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Stop collecting; deliver queued notifications within ``timeout_millis``."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        self._dispatcher.stop(deadline)

    # -- introspection -------------------------------------------------------------------------
    def outcomes(self) -> dict[tuple[str, str, str], int]:
        """Notifications so far by (alert, channel, outcome): sent, failed, dropped, ..."""
        with self._lock:
            return dict(self._outcomes)

    def firing(self) -> dict[str, list[dict[str, str]]]:
        """The groups of each alert that are firing now (``{}`` entries without group-by)."""
        found: dict[str, list[dict[str, str]]] = {}
        for tracker in self._evaluator.trackers:
            policy = tracker.policy
            for group, state in list(tracker.groups.items()):
                if state.status == "firing":
                    found.setdefault(policy.name, []).append(
                        dict(zip(policy.group_by, group, strict=True))
                    )
        return found

    def values(self) -> dict[str, list[tuple[dict[str, str], float | None]]]:
        """Each policy's statistic at the last evaluation: (group, value) pairs.

        >>> reader.values()["InferenceErrorRateHigh"]
        [({'ml.model.name': 'fraud'}, 0.083)]
        """
        found: dict[str, list[tuple[dict[str, str], float | None]]] = {}
        for tracker in self._evaluator.trackers:
            policy = tracker.policy
            values = self._evaluator.values.get(policy.name, {})
            found[policy.name] = [
                (dict(zip(policy.group_by, group, strict=True)), value)
                for group, value in list(values.items())
            ]
        return found

    # -- internals -----------------------------------------------------------------------------
    def _count_outcome(self, notification: Notification, channel: str, outcome: str) -> None:
        with self._lock:
            self._outcomes[(notification.alert, channel, outcome)] += 1
        counter = self._notifications
        if counter is not None:
            counter.add(
                1,
                {
                    semconv.ATTR_ALERT_NAME: notification.alert,
                    semconv.ATTR_ALERT_CHANNEL: channel,
                    semconv.ATTR_ALERT_OUTCOME: outcome,
                },
            )

    def _observe_active(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(tracker.firing(), {semconv.ATTR_ALERT_NAME: tracker.policy.name})
            for tracker in self._evaluator.trackers
        ]

    def _run(self) -> None:
        interval = self.rules.evaluation_interval
        while not self._stop.wait(interval):
            if self._collect is None:
                log_internal_error(
                    "alerts.collect",
                    RuntimeError(
                        "AlertReader is not registered with a MeterProvider; "
                        "alert policies are not evaluated"
                    ),
                )
                return
            try:
                self.collect(timeout_millis=interval * 1000)
            except Exception as exc:  # the SDK's collection failed; try again next time
                log_internal_error("alerts.collect", exc)


def _call(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    found = method()
    if found is not None:
        found()
