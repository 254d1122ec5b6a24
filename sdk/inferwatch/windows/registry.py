"""The live windows of one feature: observed by its gauges, stopped at exit, reset after a fork.

Drift and ranking keep windows per model that close on daemon threads (`windows.thread`). A
`LiveWindows` holds them weakly (a model's windows live as long as their owner keeps them),
answers the feature's observable gauges with the points of every live window, stops their
threads at interpreter exit (no thread left inside a sketch when the interpreter ends), and in a
forked child resets each one (the parent's threads did not survive the fork).
"""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from inferwatch import forks
from inferwatch.export import instruments


class Window(Protocol):
    def stop(self, timeout: float | None = None) -> None: ...

    def _after_fork_in_child(self) -> None: ...


W = TypeVar("W", bound=Window)


class LiveWindows(Generic[W]):
    """``live.add(windows)`` when made; ``gauge(meter, ...)`` for each observable gauge."""

    def __init__(self, stop_timeout_s: float = 1.0) -> None:
        self._live: weakref.WeakSet[W] = weakref.WeakSet()
        self._stop_timeout_s = stop_timeout_s
        atexit.register(self.stop_all)
        forks.on_fork_in_child(self._after_fork_in_child)

    def add(self, windows: W) -> None:
        self._live.add(windows)

    def discard(self, windows: W) -> None:
        """No longer observed (replaced by a new declaration), though someone still holds it."""
        self._live.discard(windows)

    def __iter__(self) -> Iterator[W]:
        return iter(list(self._live))  # a copy: windows come and go while a reader collects

    def gauge(
        self,
        meter: metrics.Meter,
        name: str,
        observe: Callable[[W], Iterable[Observation]],
        include: Callable[[W], bool] | None = None,
    ) -> None:
        """The observable gauge ``name`` (of `semconv.INSTRUMENTS`) on `meter`, reporting
        ``observe(w)`` for every live window (those `include` accepts)."""

        def callback(options: CallbackOptions) -> Iterable[Observation]:
            return [
                point
                for windows in self
                if include is None or include(windows)
                for point in observe(windows)
            ]

        instruments.observable_gauge(meter, name, [callback])

    def stop_all(self) -> None:
        for windows in self:
            windows.stop(timeout=self._stop_timeout_s)

    def _after_fork_in_child(self) -> None:
        for windows in self:
            windows._after_fork_in_child()
