"""The live drift windows of the process and their gauges (`inferwatch.windows.registry`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from opentelemetry import metrics

from inferwatch.drift.compare import Tested, test_verdict
from inferwatch.export.state import bind_instruments
from inferwatch.semconv import METRIC_DRIFT_DETECTED, METRIC_DRIFT_P_VALUE, METRIC_DRIFT_SCORE
from inferwatch.windows.registry import LiveWindows

if TYPE_CHECKING:
    from inferwatch.drift.windows import DriftWindows

live: LiveWindows[DriftWindows] = LiveWindows()
_published_lock = threading.Lock()
_published: list[metrics.Meter] = []  # meters given to windows (`meter=`): a few per process


def drift_gauges(meter: metrics.Meter, owner: metrics.Meter | None = None) -> None:
    """Create the three drift gauges on `meter`, observing every live window built with
    ``meter=owner`` — ``None`` for the serving path's windows, which each `configure()`'s
    meter publishes (an instrument stays bound to the provider it was created on)."""

    def built_with_owner(windows: DriftWindows) -> bool:
        return windows.meter is owner

    def gauge(name: str, value: Callable[[Tested], float | None]) -> None:
        live.gauge(meter, name, lambda windows: windows.observations(value), built_with_owner)

    gauge(METRIC_DRIFT_SCORE, lambda c: c.effect)
    gauge(METRIC_DRIFT_P_VALUE, lambda c: c.p_value)
    gauge(METRIC_DRIFT_DETECTED, lambda c: float(test_verdict(c)))


def publish_on(meter: metrics.Meter) -> None:
    """The drift gauges on a meter given to windows, made once per meter for all its windows:
    the SDK keeps only the first callbacks of a repeated instrument name."""
    with _published_lock:
        if any(m is meter for m in _published):
            return
        _published.append(meter)
    drift_gauges(meter, owner=meter)


bind_instruments(drift_gauges)  # the serving path's windows, on each configuration's meter
