"""Feedback-loop signals for ranked outputs: is the recommender still showing the catalogue?

A recommender retrained on its own click logs drifts into a degenerate feedback loop: what it
shows gets clicked, what gets clicked gets shown. Accuracy can look fine throughout; only the
diversity of what is served reveals it. Per model, every ranked list served feeds a tumbling
window of sketches (O(k) for k items, bounded memory whatever the catalogue size); each closed
window publishes, as observable gauges labelled with ``ml.window``:

* ``ml.ranking.distinct_items`` (aggregate diversity) and ``ml.ranking.coverage`` (distinct items
  / catalogue size, when the catalogue size is declared);
* ``ml.ranking.gini``: Gini coefficient of exposure across items, never-recommended catalogue
  items counting as zero exposure (see `exposure_gini` for how the sketches give it);
* ``ml.ranking.long_tail_share``: share of exposures that went to items outside the head of a
  declared popularity baseline;
* ``ml.ranking.ctr`` by ``ml.ranking.position``: click-through by position, in windows that
  received click feedback (``clicks=`` when serving, or `record_clicks` later).

>>> iw.ranking.configure("recs", catalogue_size=50_000, popularity=baseline_counts, window="1h")
>>> with iw.inference(model="recs") as rec: rec.record_ranking(item_ids)

Items are identified by ``str(item)``: ``42`` and ``"42"`` are the same item.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import datasketches as ds
import numpy as np
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from inferwatch import semconv
from inferwatch._attributes import AttributeValue
from inferwatch._durations import FORMS, parse_duration
from inferwatch._internal import handle_internal_error
from inferwatch._state import State, get_state
from inferwatch._window_thread import WindowThread
from inferwatch.drift.windows import window_label

__all__ = [
    "RankingSettings",
    "RankingStats",
    "RankingWindows",
    "configure",
    "exposure_gini",
    "record_clicks",
    "record_ranking",
    "reset",
    "windows",
]

HLL_LG_K = 14
"""Distinct items: HLL with 2^14 buckets, relative standard error 0.8%."""
FREQ_LG_MAX_K = 12
"""Exposure counts: exact for up to 3,072 distinct items per window, heavy hitters beyond."""
SAMPLE_LG_K = 14
"""Tail of the exposure distribution: a hash sample of 16,384+ items with exact counts."""
HEAD_ERROR_MULTIPLE = 3
"""Items counted as head once their estimate exceeds this multiple of the sketch's error."""
MAX_POSITIONS_LIMIT = 100
_ABSENT = "\x00inferwatch-absent\x00"
_events = logging.getLogger("inferwatch.events")


# ---- settings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RankingSettings:
    """What is declared once per model; `RankingSettings.build` checks every value."""

    window_s: float = 300.0
    catalogue_size: int | None = None
    head: frozenset[str] | None = None
    """Items of the popularity baseline's head (None without a baseline)."""
    head_share: float = 0.2
    min_coverage: float | None = None
    max_positions: int = 20

    @classmethod
    def build(
        cls,
        *,
        window: str | float = "5m",
        catalogue_size: int | None = None,
        popularity: Mapping[Any, float] | None = None,
        head_share: float = 0.2,
        min_coverage: float | None = None,
        max_positions: int = 20,
    ) -> RankingSettings:
        seconds = parse_duration(window) if isinstance(window, str) else _number(window)
        if seconds is None or not (seconds > 0 and math.isfinite(seconds)):
            raise ValueError(f"window {window!r} is not a positive duration like {FORMS}")
        if catalogue_size is not None and (_int(catalogue_size) is None or catalogue_size < 1):
            raise ValueError(f"catalogue_size must be a positive int, got {catalogue_size!r}")
        share = _number(head_share)
        if share is None or not 0 < share < 1:
            raise ValueError(f"head_share must be a fraction in (0, 1), got {head_share!r}")
        if min_coverage is not None:
            floor = _number(min_coverage)
            if floor is None or not 0 < floor <= 1:
                raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage!r}")
            if catalogue_size is None:
                raise ValueError("min_coverage needs catalogue_size: coverage is a share of it")
        positions = _int(max_positions)
        if positions is None or not 1 <= positions <= MAX_POSITIONS_LIMIT:
            raise ValueError(
                f"max_positions must be an int in [1, {MAX_POSITIONS_LIMIT}], got {max_positions!r}"
            )
        head = None if popularity is None else _head(popularity, share, catalogue_size)
        size = None if catalogue_size is None else int(catalogue_size)
        return cls(float(seconds), size, head, share, min_coverage, positions)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    return (
        int(value) if isinstance(value, int | np.integer) and not isinstance(value, bool) else None
    )


def _head(
    popularity: Mapping[Any, float], share: float, catalogue_size: int | None
) -> frozenset[str]:
    """The most popular items that together make up `share` of the baseline's interactions."""
    if not hasattr(popularity, "items") or isinstance(popularity, str | bytes):
        raise TypeError(
            f"popularity must map item -> interaction count, got {type(popularity).__name__}"
        )
    keys: list[str] = []
    counts: list[float] = []
    for item, count in popularity.items():
        keys.append(_item_key(item))
        value = _number(count)
        if value is None or not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"popularity of {item!r} must be a finite count >= 0, got {count!r}")
        counts.append(value)
    if len(set(keys)) != len(keys):
        raise ValueError("popularity names an item twice (items are compared as str(item))")
    total = math.fsum(counts)
    if not total > 0:
        raise ValueError("popularity needs at least one item with a positive count")
    if catalogue_size is not None and len(keys) > catalogue_size:
        raise ValueError(f"popularity has {len(keys)} items, more than catalogue_size")
    values = np.asarray(counts)
    order = np.lexsort((np.asarray(keys), -values))  # most popular first, ties by name
    needed = int(np.searchsorted(np.cumsum(values[order]), share * total)) + 1
    return frozenset(keys[i] for i in order[:needed])


def _item_key(item: Any) -> str:
    kind = type(item)
    if kind is str:
        return item  # type: ignore[no-any-return]
    if kind is int or (isinstance(item, int | np.integer) and kind is not bool):
        return str(int(item))
    if isinstance(item, np.str_):
        return str(item)
    raise TypeError(f"item ids must be str or int, got {kind.__name__}: {item!r:.40}")


# ---- one closed window ------------------------------------------------------------------------
@dataclass(frozen=True)
class RankingStats:
    """What one closed window says about the ranked lists served in it."""

    window: str
    lists: int
    """Ranked lists recorded (empty ones included)."""
    empty_lists: int
    exposures: int
    """Item impressions: the sum of the lists' lengths."""
    distinct_items: float
    """Aggregate diversity: distinct items shown (exact while ``exact``, else HLL)."""
    coverage: float | None
    """distinct_items / catalogue_size (capped at 1), when the catalogue size is known."""
    gini: float | None
    """Gini coefficient of exposure over the catalogue (or the shown items, catalogue unknown)."""
    exact: bool
    """True when every count was exact (at most 3,072 distinct items in the window)."""
    long_tail_share: float | None
    """Share of exposures outside the popularity baseline's head, when a baseline is known."""
    ctr_by_position: dict[int, float] = field(default_factory=dict)
    """Clicks / impressions per 1-based position, when the window received click feedback."""
    rejected: int = 0
    """Lists that could not be read (counted as internal errors too)."""


class _Window:
    """The sketches and counters of the window being filled (guarded by the owner's lock)."""

    __slots__ = (
        "clicked", "empty_lists", "exposures", "frequent", "has_clicks", "hll", "impressions",
        "lengths", "lists", "long_tail", "rejected", "sample",
    )  # fmt: skip

    def __init__(self, max_positions: int) -> None:
        self.hll = ds.hll_sketch(HLL_LG_K)
        self.frequent = ds.frequent_strings_sketch(FREQ_LG_MAX_K)
        self.sample = ds.update_tuple_sketch(ds.AccumulatorPolicy(), SAMPLE_LG_K)
        self.lists = self.empty_lists = self.exposures = self.long_tail = self.rejected = 0
        self.has_clicks = False
        size = max_positions + 1  # index 0 unused: positions are 1-based
        self.lengths = [0] * size  # lists ranked 1..k, by min(k, max_positions)
        self.impressions = [0] * size  # explicit positions
        self.clicked = [0] * size


def exposure_gini(
    counts: Iterable[float],
    *,
    zeros: float = 0.0,
    exposures: float | None = None,
    tail_sample: Sequence[float] = (),
    tail_items: float = 0.0,
) -> float | None:
    """Gini coefficient of exposure: 0 when every item is shown equally, near 1 when a few are.

    ``counts`` are the exposures of individually known items, ``zeros`` the number of catalogue
    items never shown. Items known only through a uniform sample (``tail_sample``: their exact
    counts) stand for ``tail_items`` items whose exposures add up to ``exposures`` minus the
    known counts. Computed as one minus twice the area under the Lorenz curve of the weighted
    distribution, which for plain counts equals ``sum((2i - n - 1) x_i) / (n sum(x))``.

    >>> exposure_gini([5, 5]), exposure_gini([10], zeros=1)
    (0.0, 0.5)
    """
    head = np.asarray(list(counts), dtype=np.float64)
    values = [head, np.zeros(1)]
    weights = [np.ones(len(head)), np.array([max(zeros, 0.0)])]
    sample = np.asarray(tail_sample, dtype=np.float64)
    rest = (exposures if exposures is not None else head.sum()) - head.sum()
    if len(sample) and tail_items > 0 and rest > 0 and sample.sum() > 0:
        # Ratio estimator: the sample gives the shape of the tail, the exact totals its size.
        values.append(sample * (rest / (sample.sum() * tail_items / len(sample))))
        weights.append(np.full(len(sample), tail_items / len(sample)))
    v, w = np.concatenate(values), np.concatenate(weights)
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    mass = v * w
    total_mass, total_weight = mass.sum(), w.sum()
    if not total_mass > 0:
        return None
    lorenz = np.cumsum(mass) / total_mass
    below = np.concatenate(([0.0], lorenz[:-1]))
    gini = 1.0 - float(((w / total_weight) * (lorenz + below)).sum())
    return min(1.0, max(0.0, round(gini, 12)))  # no -1e-16 for equal exposures


def _stats(w: _Window, settings: RankingSettings, label: str) -> RankingStats:
    """Read a closed window's sketches (see the docs' "How Gini is computed")."""
    n = w.exposures
    catalogue = settings.catalogue_size
    error = int(w.frequent.get_upper_bound(_ABSENT)) if n else 0
    tracked = w.frequent.get_frequent_items(ds.NO_FALSE_NEGATIVES, 0) if n else []
    exact = error == 0
    distinct = float(len(tracked)) if exact else float(w.hll.get_estimate())
    zeros = max(catalogue - distinct, 0.0) if catalogue is not None else 0.0
    if not n:
        gini = None
    elif exact:
        gini = exposure_gini((est for _item, est, _lo, _hi in tracked), zeros=zeros)
    else:
        # Heavy hitters from the frequent-items sketch (counts within `error`), the rest from
        # the hash sample of items, whose counts are exact; split at a multiple of the error.
        threshold = HEAD_ERROR_MULTIPLE * error
        head = [float(est) for _item, est, _lo, _hi in tracked if est > threshold]
        tail = [float(c) for _hash, c in w.sample.compact() if c <= threshold]
        gini = exposure_gini(
            head, zeros=zeros, exposures=float(n), tail_sample=tail,
            tail_items=max(distinct - len(head), float(len(tail))),
        )  # fmt: skip
    ctr: dict[int, float] = {}
    if w.has_clicks:
        shown = 0
        for position in range(settings.max_positions, 0, -1):
            shown += w.lengths[position]  # lists at least this long show this position
            impressions = shown + w.impressions[position]
            if impressions:
                ctr[position] = w.clicked[position] / impressions
    return RankingStats(
        window=label, lists=w.lists, empty_lists=w.empty_lists, exposures=n,
        distinct_items=distinct,
        coverage=min(distinct / catalogue, 1.0) if catalogue is not None else None,
        gini=gini, exact=exact,
        long_tail_share=w.long_tail / n if settings.head is not None and n else None,
        ctr_by_position=dict(sorted(ctr.items())), rejected=w.rejected,
    )  # fmt: skip


# ---- per-model windows ------------------------------------------------------------------------
class RankingWindows:
    """Tumbling windows over one model's ranked lists; a daemon thread closes them."""

    def __init__(
        self,
        model: str,
        settings: RankingSettings | None = None,
        *,
        keep_windows: int = 12,
        clock: Callable[[], float] = time.monotonic,
        autostart: bool = True,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise TypeError(f"model must be a non-empty string, got {model!r}")
        self.model = model
        self.settings = settings or RankingSettings()
        self.label = window_label(self.settings.window_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._current = _Window(self.settings.max_positions)
        self._window_start = clock()
        self._history: deque[RankingStats] = deque(maxlen=keep_windows)
        self._below_floor = False
        self._closer = WindowThread(
            f"inferwatch-ranking-{model}", lambda: self._window_start + self.settings.window_s,
            self.close_window, clock, "ranking.close_window",
        )  # fmt: skip
        self._started = not autostart  # the thread starts with the first list, once
        self._attributes: dict[str, AttributeValue] = {
            semconv.ML_MODEL_NAME: model, semconv.ML_WINDOW: self.label,
        }  # fmt: skip

    # ---- hot path ---------------------------------------------------------------------------
    def record(
        self, items: Any, positions: Any = None, clicks: Any = None
    ) -> dict[str, AttributeValue]:
        """Add one ranked list (best first); returns its span attributes. Raises on bad input.

        ``positions`` are the items' 1-based positions when they are not 1..k; ``clicks`` flags
        the items that were clicked (same length). Items repeated in the list count once, at
        their first position, and the repetition is reported as an internal error.
        """
        if not self._started:
            self._started = True
            self.start()
        try:
            keys = _keys(items)
            k = len(keys)
            ranks = _positions(positions, k) if positions is not None else None
            clicked = _clicked(clicks, k) if clicks is not None else None
        except (TypeError, ValueError):
            with self._lock:
                self._current.rejected += 1
            raise
        duplicates = len(set(keys)) != k
        if duplicates:
            keys, ranks, clicked = _first_occurrences(keys, ranks, clicked)
            k = len(keys)
        head = self.settings.head
        tail = k - sum(1 for key in keys if key in head) if head is not None else 0
        limit = self.settings.max_positions
        with self._lock:
            w = self._current
            hll, frequent, sample = w.hll.update, w.frequent.update, w.sample.update
            for key in keys:
                hll(key)
                frequent(key)
                sample(key, 1)
            w.lists += 1
            w.exposures += k
            w.long_tail += tail
            if not k:
                w.empty_lists += 1
            if ranks is None:
                w.lengths[min(k, limit)] += 1
            else:
                for rank in ranks:
                    if rank <= limit:
                        w.impressions[rank] += 1
            if clicked is not None:
                w.has_clicks = True
                for index in clicked:
                    rank = index + 1 if ranks is None else ranks[index]
                    if rank <= limit:
                        w.clicked[rank] += 1
        attributes: dict[str, AttributeValue] = {semconv.ML_RANKING_SIZE: k}
        if head is not None:
            attributes[semconv.ML_RANKING_LONG_TAIL_ITEMS] = tail
        if clicked is not None:
            attributes[semconv.ML_RANKING_CLICKS] = len(clicked)
        if duplicates:
            handle_internal_error(
                "ranking.record", ValueError("a ranked list repeats items: counted once each")
            )
        return attributes

    def record_clicks(self, positions: Any) -> None:
        """Clicks that arrived after serving, by 1-based position; counted in the open window."""
        ranks = _positions(positions, None)
        limit = self.settings.max_positions
        with self._lock:
            w = self._current
            w.has_clicks = True
            for rank in ranks:
                if rank <= limit:
                    w.clicked[rank] += 1

    # ---- windows ----------------------------------------------------------------------------
    def close_window(self) -> RankingStats | None:
        """Summarise the lists of the open window and start a new one; None when it had none."""
        with self._close_lock:
            fresh = _Window(self.settings.max_positions)
            with self._lock:
                closed, self._current = self._current, fresh
                self._window_start = self._clock()
            if not closed.lists:
                return None
            stats = _stats(closed, self.settings, self.label)
            self._history.append(stats)
            self._check_floor(stats)
            return stats

    @property
    def latest(self) -> RankingStats | None:
        """The last closed window's statistics (what the gauges report)."""
        history = self._history
        return history[-1] if history else None

    @property
    def history(self) -> list[RankingStats]:
        """Statistics of the last closed windows (at most ``keep_windows``), oldest first."""
        return list(self._history)

    def _check_floor(self, stats: RankingStats) -> None:
        floor = self.settings.min_coverage
        if floor is None or stats.coverage is None:
            return
        below = stats.coverage < floor
        if below and not self._below_floor:  # once per fall, not every window it stays low
            _events.warning(
                "coverage of model %s fell to %.3g (floor %.3g, %s window): it recommends "
                "%d distinct items",
                self.model, stats.coverage, floor, self.label, round(stats.distinct_items),
                extra={
                    "otel.event.name": semconv.EVENT_RANKING_LOW_COVERAGE,
                    semconv.ML_MODEL_NAME: self.model,
                    semconv.ML_WINDOW: self.label,
                    semconv.ML_RANKING_COVERAGE: stats.coverage,
                    semconv.ML_RANKING_MIN_COVERAGE: floor,
                },
            )  # fmt: skip
        self._below_floor = below

    def observations(self) -> dict[str, list[Observation]]:
        """The gauges' points for the latest closed window, by metric name."""
        stats = self.latest
        if stats is None:
            return {}
        attrs = self._attributes
        points = {
            semconv.METRIC_RANKING_LISTS: [Observation(stats.lists, attrs)],
            semconv.METRIC_RANKING_EXPOSURES: [Observation(stats.exposures, attrs)],
            semconv.METRIC_RANKING_DISTINCT_ITEMS: [Observation(stats.distinct_items, attrs)],
        }
        for name, value in (
            (semconv.METRIC_RANKING_COVERAGE, stats.coverage),
            (semconv.METRIC_RANKING_GINI, stats.gini),
            (semconv.METRIC_RANKING_LONG_TAIL_SHARE, stats.long_tail_share),
        ):
            if value is not None:
                points[name] = [Observation(value, attrs)]
        if stats.ctr_by_position:
            points[semconv.METRIC_RANKING_CTR] = [
                Observation(ctr, {**attrs, semconv.ML_RANKING_POSITION: position})
                for position, ctr in stats.ctr_by_position.items()
            ]
        return points

    # ---- background thread ------------------------------------------------------------------
    def start(self) -> None:
        """Close a window every ``window_s`` on a daemon thread (no-op when running)."""
        self._started = True
        self._closer.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread and wait for it; the open window stays open."""
        self._closer.stop(timeout)

    @property
    def running(self) -> bool:
        return self._closer.running

    def _after_fork_in_child(self) -> None:
        was_running = self._closer.after_fork()
        self._lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._current = _Window(self.settings.max_positions)
        self._window_start = self._clock()
        if was_running:  # the parent's thread did not survive: the next list restarts it
            self._started = False


# ---- input checks (all O(k)) ------------------------------------------------------------------
def _sequence(values: Any, what: str) -> list[Any]:
    if type(values) is list:
        return values
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"{what} must be one-dimensional, got shape {values.shape}")
        return values.tolist()  # type: ignore[no-any-return]
    if values is None or isinstance(values, str | bytes | Mapping | set | frozenset):
        raise TypeError(f"{what} must be a sequence, got {type(values).__name__}")
    if isinstance(values, tuple | Sequence):
        return list(values)
    if hasattr(values, "tolist"):  # pandas Series and Index
        listed = values.tolist()
        if isinstance(listed, list):
            return listed
    raise TypeError(f"{what} must be a list, tuple or 1-D array, got {type(values).__name__}")


def _keys(items: Any) -> list[str]:
    values = _sequence(items, "items")
    kinds = set(map(type, values))
    if kinds <= _STR:
        return values
    if kinds <= _STR_OR_INT:
        return list(map(str, values))
    return [_item_key(x) for x in values]


_STR: set[type] = {str}
_STR_OR_INT: set[type] = {str, int}
_INT: set[type] = {int}
_BOOL: set[type] = {bool}


def _positions(positions: Any, k: int | None) -> list[int]:
    ranks = _sequence(positions, "positions")
    if k is not None and len(ranks) != k:
        raise ValueError(f"{len(ranks)} positions for {k} items")
    if ranks and not (set(map(type, ranks)) <= _INT and min(ranks) >= 1):
        for rank in ranks:
            if _int(rank) is None or rank < 1:
                raise ValueError(f"positions must be ints >= 1 (1 is the top), got {rank!r}")
        ranks = [int(rank) for rank in ranks]  # numpy integers
    return ranks


def _clicked(clicks: Any, k: int) -> list[int]:
    """Indices of the clicked items."""
    flags = _sequence(clicks, "clicks")
    if len(flags) != k:
        raise ValueError(f"{len(flags)} click flags for {k} items")
    if not set(map(type, flags)) <= _BOOL:
        for flag in flags:
            if not isinstance(flag, bool | int | np.bool_ | np.integer) or flag not in (0, 1):
                raise ValueError(f"clicks must be booleans (or 0/1), got {flag!r}")
    return [i for i, flag in enumerate(flags) if flag]


def _first_occurrences(
    keys: list[str], ranks: list[int] | None, clicked: list[int] | None
) -> tuple[list[str], list[int], list[int] | None]:
    """Each item once, at its first position; a click on any copy counts for that one."""
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        first.setdefault(key, index)
    kept = list(first.values())
    new_index = {old: new for new, old in enumerate(kept)}
    kept_ranks = [ranks[i] for i in kept] if ranks is not None else [i + 1 for i in kept]
    kept_clicks = None
    if clicked is not None:
        kept_clicks = sorted({new_index[first[keys[i]]] for i in clicked})
    return list(first), kept_ranks, kept_clicks


# ---- registry, gauges and the module-level API ------------------------------------------------
_registry: dict[str, RankingWindows] = {}
_registry_lock = threading.Lock()
_gauges_for: State | None = None  # the configuration the gauges were made for


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
        window=window, catalogue_size=catalogue_size, popularity=popularity,
        head_share=head_share, min_coverage=min_coverage, max_positions=max_positions,
    )  # fmt: skip
    declared = RankingWindows(model, settings)
    _ensure_gauges()
    with _registry_lock:
        previous = _registry.get(model)
        _registry[model] = declared
    if previous is not None:
        previous.stop(timeout=1.0)
    return declared


def windows(model: str) -> RankingWindows | None:
    """The ranking windows of a model (declared or seen), or None."""
    return _registry.get(model)


def _windows_for(model: str) -> RankingWindows:
    if get_state() is not _gauges_for:
        _ensure_gauges()
    found = _registry.get(model)
    if found is not None:
        return found
    with _registry_lock:  # an undeclared model: default settings, coverage-free metrics
        found = _registry.get(model)
        if found is None:
            found = _registry[model] = RankingWindows(model)
    return found


def record_ranking(
    model: str, items: Any, positions: Any = None, clicks: Any = None
) -> dict[str, AttributeValue] | None:
    """Record one ranked list served by ``model``, best first; never raises (outside strict mode).

    >>> iw.ranking.record_ranking("recs", ["i42", "i7", "i3"], clicks=[False, True, False])

    Returns the list's span attributes (``ml.ranking.size``, ...), or None when it was rejected.
    `Inference.record_ranking` calls this and puts them on the inference span.
    """
    try:
        return _windows_for(model).record(items, positions, clicks)
    except Exception as exc:
        handle_internal_error("ranking.record", exc)
        return None


def record_clicks(model: str, positions: Any) -> None:
    """Clicks on ``model``'s lists that arrived after serving: their 1-based positions.

    >>> iw.ranking.record_clicks("recs", [2])    # the user clicked the second item shown

    They count in the window open now, against the impressions of that window.
    """
    try:
        _windows_for(model).record_clicks(positions)
    except Exception as exc:
        handle_internal_error("ranking.record_clicks", exc)


def reset() -> None:
    """Stop every model's thread and forget all declarations and windows."""
    with _registry_lock:
        found = list(_registry.values())
        _registry.clear()
    for w in found:
        w.stop(timeout=1.0)


def _ensure_gauges() -> None:
    """One set of gauges for all models, made again after each `iw.configure()`.

    Instruments are bound to the meter provider current when they are made, so they follow a
    new configuration only when made anew: checked whenever a list or click is recorded.
    """
    global _gauges_for
    state = get_state()
    with _registry_lock:
        if state is _gauges_for:
            return
        _gauges_for = state
    meter = metrics.get_meter(semconv.INSTRUMENTATION_NAME)
    for name, unit, what in (
        (semconv.METRIC_RANKING_LISTS, "{list}", "Ranked lists served in the window"),
        (semconv.METRIC_RANKING_EXPOSURES, "{item}", "Items shown in the window"),
        (semconv.METRIC_RANKING_DISTINCT_ITEMS, "{item}", "Distinct items shown in the window"),
        (semconv.METRIC_RANKING_COVERAGE, "1", "Share of the catalogue shown in the window"),
        (semconv.METRIC_RANKING_GINI, "1", "Gini coefficient of exposure across items"),
        (semconv.METRIC_RANKING_LONG_TAIL_SHARE, "1", "Share of exposures in the long tail"),
        (semconv.METRIC_RANKING_CTR, "1", "Click-through rate by position"),
    ):
        meter.create_observable_gauge(name, callbacks=[_observe(name)], unit=unit, description=what)


def _observe(name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        points: list[Observation] = []
        for w in list(_registry.values()):
            points += w.observations().get(name, ())
        return points

    return observe


def _stop_all() -> None:  # at exit: no thread left inside the sketches
    for w in list(_registry.values()):
        w.stop(timeout=1.0)


def _reset_after_fork() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for w in list(_registry.values()):
        w._after_fork_in_child()


atexit.register(_stop_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
