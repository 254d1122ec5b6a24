"""`RankingWindows`: one model's tumbling windows of ranked lists, closed by a daemon thread."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from opentelemetry.metrics import Observation

from inferwatch import nowait, semconv
from inferwatch.attributes import AttributeValue
from inferwatch.errors import contained
from inferwatch.ranking.inputs import check_positions, clicked_indices, first_occurrences, item_keys
from inferwatch.ranking.settings import RankingSettings
from inferwatch.ranking.stats import OpenWindow, RankingStats, summarise
from inferwatch.windows.rollups import window_label
from inferwatch.windows.thread import WindowThread

_events = logging.getLogger("inferwatch.events")


class RecordedList(NamedTuple):
    """A ranked list as counted: item keys (each once), their positions (None: 1..k)."""

    attributes: dict[str, AttributeValue]
    keys: list[str]
    ranks: list[int] | None


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
        self._lock = threading.Lock()  # (a forked child makes new ones: _after_fork_in_child)
        self._close_lock = threading.Lock()
        self._current = OpenWindow(self.settings.max_positions)
        self._pending: deque[tuple[Any, ...]] = deque()
        """Lists recorded and not yet counted (`record_list`)."""
        self._window_start = clock()
        self._history: deque[RankingStats] = deque(maxlen=keep_windows)
        self._below_floor = False
        self._closer = WindowThread(
            f"inferwatch-ranking-{model}",
            lambda: self._window_start + self.settings.window_s,
            self.close_window,
            clock,
            "ranking.close_window",
        )
        self._started = not autostart  # the thread starts with the first list, once
        self._attributes: dict[str, AttributeValue] = {
            semconv.ML_MODEL_NAME: model,
            semconv.ML_WINDOW: self.label,
        }

    # ---- hot path ---------------------------------------------------------------------------
    def record(
        self, items: Any, positions: Any = None, clicks: Any = None
    ) -> dict[str, AttributeValue]:
        """Add one ranked list (best first); returns its span attributes. Raises on bad input.

        ``positions`` are the items' 1-based positions when they are not 1..k; ``clicks`` flags
        the items that were clicked (same length). Items repeated in the list count once, at
        their first position, and the repetition is reported as an internal error.
        """
        return self.record_list(items, positions, clicks).attributes

    def record_list(self, items: Any, positions: Any = None, clicks: Any = None) -> RecordedList:
        """`record`, returning the list as counted too (for clicks reported later)."""
        if not self._started:
            self._started = True
            self.start()
        try:
            keys = item_keys(items)
            k = len(keys)
            ranks = check_positions(positions, k) if positions is not None else None
            clicked = clicked_indices(clicks, k) if clicks is not None else None
        except (TypeError, ValueError):
            with self._lock:
                self._current.rejected += 1
            raise
        duplicates = len(set(keys)) != k
        if duplicates:
            keys, ranks, clicked = first_occurrences(keys, ranks, clicked)
            k = len(keys)
        head = self.settings.head
        tail = k - sum(1 for key in keys if key in head) if head is not None else 0
        # counted now if the lock is free, else queued for the holder, the next list or the
        # window's close (`inferwatch.nowait`)
        nowait.record(self._lock, self._pending, self._count, (keys, ranks, clicked, tail))
        attributes: dict[str, AttributeValue] = {semconv.ML_RANKING_SIZE: k}
        if head is not None:
            attributes[semconv.ML_RANKING_LONG_TAIL_ITEMS] = tail
        if clicked is not None:
            attributes[semconv.ML_RANKING_CLICKS] = len(clicked)
        if duplicates:
            contained.error(
                "ranking.record", ValueError("a ranked list repeats items: counted once each")
            )
        return RecordedList(attributes, keys, ranks)

    def _count(self, keys: list[str], ranks: Any, clicked: Any, tail: int) -> None:
        """One list into the open window (called locked)."""
        w = self._current
        k = len(keys)
        limit = self.settings.max_positions
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

    def record_clicks(self, positions: Any) -> None:
        """Clicks that arrived after serving, by 1-based position; counted in the open window."""
        ranks = check_positions(positions, None)
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
            fresh = OpenWindow(self.settings.max_positions)
            with self._lock:
                nowait.settle(self._pending, self._count)
                closed, self._current = self._current, fresh
                self._window_start = self._clock()
            if not closed.lists:
                return None
            stats = summarise(closed, self.settings, self.label)
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
                self.model,
                stats.coverage,
                floor,
                self.label,
                round(stats.distinct_items),
                extra={
                    "otel.event.name": semconv.EVENT_RANKING_LOW_COVERAGE,
                    semconv.ML_MODEL_NAME: self.model,
                    semconv.ML_WINDOW: self.label,
                    semconv.ML_RANKING_COVERAGE: stats.coverage,
                    semconv.ML_RANKING_MIN_COVERAGE: floor,
                },
            )
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
        self._current = OpenWindow(self.settings.max_positions)
        self._pending = deque()  # the parent's lists are the parent's to count
        self._window_start = self._clock()
        if was_running:  # the parent's thread did not survive: the next list restarts it
            self._started = False
