"""The live drift windows of the process: their drift gauges, and their threads at fork and exit."""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from inferwatch import forks
from inferwatch.drift.compare import ColumnDrift
from inferwatch.export import instruments
from inferwatch.export.state import bind_instruments
from inferwatch.semconv import METRIC_DRIFT_DETECTED, METRIC_DRIFT_P_VALUE, METRIC_DRIFT_SCORE

if TYPE_CHECKING:
    from inferwatch.drift.windows import DriftWindows

_live: weakref.WeakSet[DriftWindows] = weakref.WeakSet()
_gauges_lock = threading.Lock()
_gauge_meters: list[metrics.Meter] = []  # meters that have the drift gauges (a few per process)


def drift_gauges(meter: metrics.Meter, owner: metrics.Meter | None = None) -> None:
    """Create the three drift gauges on `meter`, observing every live window built with
    ``meter=owner`` — ``None`` for the serving path's windows, which each `configure()`'s
    meter publishes (an instrument stays bound to the provider it was created on)."""

    def gauge(name: str, value: Callable[[ColumnDrift], float | None]) -> None:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [
                obs
                for windows in list(_live)
                if windows._meter is owner
                for obs in windows._observations(value)
            ]

        instruments.observable_gauge(meter, name, [observe])

    gauge(METRIC_DRIFT_SCORE, lambda c: c.effect)
    gauge(METRIC_DRIFT_P_VALUE, lambda c: c.p_value)
    gauge(METRIC_DRIFT_DETECTED, lambda c: float(c.drifted))


def _reset_after_fork() -> None:
    for windows in list(_live):
        windows._after_fork_in_child()


def _stop_all() -> None:  # at exit: no thread left inside the sketches
    for windows in list(_live):
        windows.stop(timeout=1.0)


bind_instruments(drift_gauges)  # the serving path's windows, on each configuration's meter
atexit.register(_stop_all)
forks.on_fork_in_child(_reset_after_fork)
