"""The models' ranking windows, their gauges, and the module-level API of the package."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import Observation

from inferwatch import forks, semconv
from inferwatch.attributes import AttributeValue
from inferwatch.errors import contained
from inferwatch.export.state import bind_instruments
from inferwatch.ranking.settings import RankingSettings
from inferwatch.ranking.windows import RankingWindows, RecordedList
from inferwatch.windows.registry import LiveWindows

_registry: dict[str, RankingWindows] = {}
live: LiveWindows[RankingWindows] = LiveWindows()
"""The registry's windows: observed by the gauges, stopped at exit, reset in a forked child."""
_registry_lock = threading.Lock()


def configure(
    model: str,
    *,
    catalogue_size: int | None = None,
    popularity: Mapping[Any, float] | None = None,
    head_share: float = 0.2,
    window: str | float = "5m",
    min_coverage: float | None = None,
    max_positions: int = 20,
) -> RankingWindows:
    """Declare a ranking model's catalogue, popularity baseline and window (checked here).

    >>> iw.ranking.configure("recs", catalogue_size=50_000, popularity={"i1": 900, "i2": 40},
    ...                      window="1h", min_coverage=0.05)

    ``popularity`` maps item -> interactions in a baseline period; its head is the most popular
    items that together make up ``head_share`` of them, and everything else (items new since
    too) is the long tail. ``min_coverage`` logs one ``ml.ranking.low_coverage`` event each time
    a window's coverage falls below it. CTR is kept for positions 1..``max_positions``.
    Declaring a model again replaces its settings and starts a new window.
    """
    settings = RankingSettings.build(
        window=window,
        catalogue_size=catalogue_size,
        popularity=popularity,
        head_share=head_share,
        min_coverage=min_coverage,
        max_positions=max_positions,
    )
    declared = RankingWindows(model, settings)
    with _registry_lock:
        previous = _registry.get(model)
        _registry[model] = declared
        live.add(declared)
    if previous is not None:
        live.discard(previous)
        previous.stop(timeout=1.0)
    return declared


def windows(model: str) -> RankingWindows | None:
    """The ranking windows of a model (declared or seen), or None."""
    return _registry.get(model)


def _windows_for(model: str) -> RankingWindows:
    found = _registry.get(model)
    if found is not None:
        return found
    with _registry_lock:  # an undeclared model: default settings, coverage-free metrics
        found = _registry.get(model)
        if found is None:
            found = _registry[model] = RankingWindows(model)
            live.add(found)
    return found


def record_ranking(
    model: str, items: Any, positions: Any = None, clicks: Any = None
) -> dict[str, AttributeValue] | None:
    """Record one ranked list served by ``model``, best first; never raises (outside strict mode).

    >>> iw.ranking.record_ranking("recs", ["i42", "i7", "i3"], clicks=[False, True, False])

    Returns the list's span attributes (``ml.ranking.size``, ...), or None when it was rejected.
    `Inference.record_ranking` calls this and puts them on the inference span.
    """
    recorded = record_list(model, items, positions, clicks)
    return None if recorded is None else recorded.attributes


def record_list(
    model: str, items: Any, positions: Any = None, clicks: Any = None
) -> RecordedList | None:
    """`record_ranking`, returning the list as counted (what a later click is looked up in)."""
    try:
        return _windows_for(model).record_list(items, positions, clicks)
    except Exception as exc:
        contained.error("ranking.record", exc)
        return None


def record_clicks(model: str, positions: Any) -> None:
    """Clicks on ``model``'s lists that arrived after serving: their 1-based positions.

    >>> iw.ranking.record_clicks("recs", [2])    # the user clicked the second item shown

    They count in the window open now, against the impressions of that window.
    """
    try:
        _windows_for(model).record_clicks(positions)
    except Exception as exc:
        contained.error("ranking.record_clicks", exc)


def reset() -> None:
    """Stop every model's thread and forget all declarations and windows."""
    with _registry_lock:
        found = list(_registry.values())
        _registry.clear()
    for w in found:
        live.discard(w)
        w.stop(timeout=1.0)


def _ranking_gauges(meter: metrics.Meter) -> None:
    """One set of gauges for all models, on each configuration's meter."""
    for name in (
        semconv.METRIC_RANKING_LISTS,
        semconv.METRIC_RANKING_EXPOSURES,
        semconv.METRIC_RANKING_DISTINCT_ITEMS,
        semconv.METRIC_RANKING_COVERAGE,
        semconv.METRIC_RANKING_GINI,
        semconv.METRIC_RANKING_LONG_TAIL_SHARE,
        semconv.METRIC_RANKING_CTR,
    ):
        live.gauge(meter, name, partial(_points, name))


def _points(name: str, windows: RankingWindows) -> Iterable[Observation]:
    return windows.observations().get(name, ())


def _renew_lock_after_fork() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()


bind_instruments(_ranking_gauges)
forks.on_fork_in_child(_renew_lock_after_fork)
