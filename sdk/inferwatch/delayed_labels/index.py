"""The serving process's memory of recent predictions, by request id, for delayed labels.

Each remembered prediction is one plain tuple of plain values (its metric group's number, when it
was served, what was predicted — a class name, a value, or a batch's array — how many, the
inference span's trace id, span id and flags, whether it is labelled, and the request id): the
garbage collector untracks such tuples, so a full index of a hundred thousand predictions adds
nothing to the collections a serving process pays for (objects would: each full collection would
walk them all). The tuples live in a dict (look-up by request id: the request's prediction, or a
tuple of them when several models served it) and in a FIFO deque (age order), so remembering,
expiring and evicting are each O(1): the deque's head is the oldest. `lookup` hands a label its
predictions as `Entry` objects, made then.

Bounds: a prediction leaves after ``ttl_s`` (expiry) or when ``max_predictions`` are held (eviction
of the oldest), or when a newer prediction of the same request and model replaces it; one leaving
without a label by eviction or replacement is counted. The request ids of the last predictions to
leave are kept a while longer (a quarter of ``max_predictions``) so that a label arriving after
its prediction left is told apart ("expired") from one for a request never seen ("unknown").

Counts per serving window (`WindowScores`) are kept per metric group (model, version, metric
tags) for the last ``windows`` windows of ``window_s`` seconds; an older window is dropped with
its counts, and a label for a prediction served in it is "expired".
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Final

import numpy as np
from opentelemetry.trace import SpanContext

from inferwatch import nowait, semconv
from inferwatch.attributes import AttributeValue
from inferwatch.delayed_labels.scores import WindowScores
from inferwatch.errors import log_internal_error
from inferwatch.forks import renew_lock_after_fork
from inferwatch.windows.rollups import window_label

# What a batch's predictions are stored as: (array, one of these).
VALUES, CLASSES, INDICES = 0, 1, 2
"""Regression values (NaN: none); raw class labels; argmax indices into class names (-1: none)."""
Predicted = str | float | tuple[np.ndarray, int]
MAX_GROUPS = 4096
_MAX_INTERNED = 1024

# A remembered prediction: (group number, served at, predicted, n, trace id, span id, trace
# flags, labelled, request id), each a plain value (see the module docstring).
_Stored = tuple[int, float, Predicted, int, int, int, int, bool, str]
_Held = _Stored | tuple[_Stored, ...]
"""A request's prediction, or its predictions by several models."""
_GROUP: Final = 0
_SERVED_AT: Final = 1
_PREDICTED: Final = 2
_N: Final = 3
_TRACE_ID: Final = 4
_SPAN_ID: Final = 5
_FLAGS: Final = 6
_LABELLED: Final = 7
_REQUEST_ID: Final = 8


def _as_tuple(held: _Held) -> tuple[_Stored, ...]:
    return held if type(held[0]) is tuple else (held,)  # type: ignore[return-value]


def _from_tuple(predictions: tuple[_Stored, ...]) -> _Held:
    return predictions[0] if len(predictions) == 1 else predictions


@functools.lru_cache(maxsize=1024)
def window_start(window: int, window_s: float) -> str:
    """``ml.window.start`` of serving window number ``window`` (``floor(t / window_s)``): its
    start, UTC, ISO 8601 to the second. Fixed width, so the texts sort as the times do."""
    start = datetime.fromtimestamp(window * window_s, timezone.utc)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


class Group:
    """One metric group: a model (version, metric tags) and its recent serving windows."""

    __slots__ = (
        "_names",
        "attributes",
        "evicted",
        "latest",
        "latest_scores",
        "model",
        "number",
        "spec",
        "windows",
    )

    def __init__(self, number: int, attributes: dict[str, AttributeValue], spec: Any) -> None:
        self.number = number
        self.attributes = attributes
        self.spec = spec
        self.model: str = spec.model
        self.windows: dict[int, WindowScores] = {}
        self.latest = -1
        self.latest_scores: WindowScores | None = None
        """The counts of window `latest`, where nearly every prediction is counted."""
        self.evicted = 0
        """Predictions of this group evicted or replaced before their label (cumulative)."""
        self._names: dict[str, str] = {}

    def intern(self, name: str) -> str:
        """One shared string per class name, so entries do not each hold a copy."""
        known = self._names.get(name)
        if known is not None:
            return known
        if len(self._names) < _MAX_INTERNED:
            self._names[name] = name
        return name


class Entry:
    """One remembered prediction (or batch of predictions) of one request and model, as a
    label sees it (`PredictionIndex.lookup`)."""

    __slots__ = (
        "group",
        "n",
        "predicted",
        "request_id",
        "served_at",
        "span_id",
        "trace_flags",
        "trace_id",
    )

    def __init__(self, request_id: str, group: Group, stored: _Stored) -> None:
        self.request_id = request_id
        self.group = group
        self.served_at = stored[_SERVED_AT]
        self.predicted = stored[_PREDICTED]
        self.n = stored[_N]
        self.trace_id = stored[_TRACE_ID]
        self.span_id = stored[_SPAN_ID]
        self.trace_flags = stored[_FLAGS]

    @property
    def regression(self) -> bool:
        predicted = self.predicted
        return type(predicted) is float or (type(predicted) is tuple and predicted[1] == VALUES)


class PredictionIndex:
    """Bounded, thread-safe request id -> `Entry` index with per-window label counts."""

    def __init__(
        self,
        ttl_s: float,
        max_predictions: int,
        window_s: float,
        windows: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_predictions = max_predictions
        self.window_s = window_s
        self.windows = windows
        self.window_label = window_label(window_s)
        self.clock = clock
        self._lock = threading.Lock()
        renew_lock_after_fork(self)  # a label or the metric reader may hold it at fork time
        self._entries: dict[str, _Held] = {}
        """Request id -> its prediction(s) still held, one per model."""
        self._order: deque[_Stored] = deque()
        """Every prediction remembered (as it was then), oldest first."""
        self._gone: dict[str, None] = {}
        self._gone_order: deque[str] = deque()
        self._gone_max = max_predictions // 4
        self._groups: dict[tuple[tuple[str, AttributeValue], ...], Group] = {}
        self._numbered: list[Group] = []
        self._by_id: dict[int, tuple[dict[str, AttributeValue], Group]] = {}
        self.unjoined: dict[str, int] = {}
        self._pending: deque[tuple[Any, ...]] = deque()
        """Predictions remembered and not yet settled into the index (`remember`)."""
        self._window, self._window_from, self._window_until = -1, math.inf, -math.inf
        """The serving window the last prediction fell in, and its bounds (`_enter_window`)."""

    def __len__(self) -> int:
        with self._lock:
            self._settle()
            return len(self._entries)

    # -- the hot path --------------------------------------------------------------------------

    def remember(
        self,
        request_id: str,
        spec: Any,
        attributes: dict[str, AttributeValue],
        predicted: Predicted,
        n: int,
        context: SpanContext,
    ) -> None:
        """Remember one request's prediction(s).

        A serving call never waits for the index's lock, which two serving threads would
        convoy on (`inferwatch.nowait`, inlined here): if the lock is held, the
        prediction is queued, for the holder, the next call or whatever reads the index next
        (labels, the metric reader) to settle.
        """
        trace_id, span_id, flags = context.trace_id, context.span_id, int(context.trace_flags)
        now = self.clock()
        lock = self._lock
        if lock.acquire(False):
            try:
                if self._pending:
                    self._settle()
                self._add(request_id, spec, attributes, predicted, n, trace_id, span_id, flags, now)
            finally:
                lock.release()
        else:
            self._pending.append(
                (request_id, spec, attributes, predicted, n, trace_id, span_id, flags, now)
            )

    def _settle(self) -> None:
        """Put the queued predictions into the index, in the order they came (called locked)."""
        nowait.settle(self._pending, self._add)

    def _add(
        self,
        request_id: str,
        spec: Any,
        attributes: dict[str, AttributeValue],
        predicted: Predicted,
        n: int,
        trace_id: int,
        span_id: int,
        trace_flags: int,
        now: float,
    ) -> None:
        hit = self._by_id.get(id(attributes))
        if hit is not None and hit[0] is attributes:
            group = hit[1]
        else:
            found = self._group(attributes, spec)
            if found is None:
                log_internal_error("feedback.remember", RuntimeError("too many metric groups"))
                return
            group = found
        group.spec = spec
        if type(predicted) is str:
            predicted = group.intern(predicted)
        number = group.number
        stored: _Stored = (
            number, now, predicted, n, trace_id, span_id, trace_flags, False, request_id
        )  # fmt: skip
        order = self._order
        if order and order[0][_SERVED_AT] < now - self.ttl_s:
            self._expire(now)
        entries = self._entries
        held = entries.get(request_id)
        if held is None:
            entries[request_id] = stored
        elif held[_GROUP] == number:  # the request's model again (a group is one model)
            if not held[_LABELLED]:
                group.evicted += 1
            entries[request_id] = stored
        else:
            entries[request_id] = self._replace(_as_tuple(held), stored)
        order.append(stored)
        if len(order) > self.max_predictions:
            self._drop(order.popleft(), evicted=True)
        if self._window_from <= now < self._window_until:
            window = self._window
        else:
            window = self._enter_window(now)
        scores = group.latest_scores if window == group.latest else group.windows.get(window)
        if scores is None:
            scores = self._new_window(group, window)
        scores.served += n

    def _enter_window(self, now: float) -> int:
        """The number of the serving window of ``now``, kept with its bounds for the next."""
        window = math.floor(now / self.window_s)
        self._window = window
        self._window_from = window * self.window_s
        self._window_until = (window + 1) * self.window_s
        return window

    def _replace(self, held: tuple[_Stored, ...], stored: _Stored) -> _Held:
        """The request's predictions with ``stored`` in place of its model's older one (an open
        one replaced counts as evicted: its label can no longer join it)."""
        groups = self._numbered
        model = groups[stored[_GROUP]].model
        kept = []
        for old in held:
            if groups[old[_GROUP]].model == model:
                if not old[_LABELLED]:
                    groups[old[_GROUP]].evicted += 1
            else:
                kept.append(old)
        kept.append(stored)
        return _from_tuple(tuple(kept))

    def _group(self, attributes: dict[str, AttributeValue], spec: Any) -> Group | None:
        key = tuple(attributes.items())
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= MAX_GROUPS:
                return None
            group = self._groups[key] = Group(len(self._numbered), dict(attributes), spec)
            self._numbered.append(group)
        if len(self._by_id) >= MAX_GROUPS:
            self._by_id.clear()
        self._by_id[id(attributes)] = (attributes, group)  # holding it keeps the id unique
        return group

    def _new_window(self, group: Group, window: int) -> WindowScores:
        attributes = {
            **group.attributes,
            semconv.ML_WINDOW: self.window_label,
            semconv.ML_WINDOW_START: window_start(window, self.window_s),
        }
        scores = group.windows[window] = WindowScores(attributes)
        if window > group.latest:
            group.latest = window
            group.latest_scores = scores
            for old in [w for w in group.windows if w <= window - self.windows]:
                del group.windows[old]
        return scores

    def _expire(self, now: float) -> None:
        order, deadline = self._order, now - self.ttl_s
        while order and order[0][_SERVED_AT] < deadline:
            self._drop(order.popleft(), evicted=False)

    def _drop(self, left: _Stored, evicted: bool) -> None:
        """Take a prediction that left the deque out of the dict (unless a newer one of its
        model replaced it); remember its request id for a while."""
        request_id = left[_REQUEST_ID]
        held = self._entries.get(request_id)
        if held is left:  # held as it was served (one model, no label yet): no search
            if evicted:
                self._numbered[left[_GROUP]].evicted += 1
            del self._entries[request_id]
            self._bury(request_id)
            return
        if held is None:
            return
        number, served_at = left[_GROUP], left[_SERVED_AT]
        predictions = _as_tuple(held)
        for i, stored in enumerate(predictions):
            if stored[_GROUP] == number and stored[_SERVED_AT] == served_at:
                # (the dict's copy: it says whether a label came)
                if evicted and not stored[_LABELLED]:
                    self._numbered[number].evicted += 1
                if len(predictions) == 1:
                    del self._entries[request_id]
                    self._bury(request_id)
                else:
                    self._entries[request_id] = _from_tuple(predictions[:i] + predictions[i + 1 :])
                return

    def _bury(self, request_id: str) -> None:
        if self._gone_max == 0:
            return
        if request_id not in self._gone:
            self._gone[request_id] = None
            self._gone_order.append(request_id)
            if len(self._gone_order) > self._gone_max:
                self._gone.pop(self._gone_order.popleft(), None)

    # -- labels --------------------------------------------------------------------------------

    def lookup(self, request_id: str, model: str | None, now: float) -> tuple[str, list[Entry]]:
        """(status, entries): entries of the request (of ``model`` if given) still open.

        The status is "joined" when there are any (the label may still turn out invalid),
        else why not: "duplicate", "expired" or "unknown".
        """
        with self._lock:
            self._settle()
            self._expire(now)
            held = self._entries.get(request_id)
            if held is None:
                return (
                    semconv.LABEL_EXPIRED if request_id in self._gone else semconv.LABEL_UNKNOWN
                ), []
            found: list[Entry] = []
            status = semconv.LABEL_UNKNOWN
            for stored in _as_tuple(held):
                group = self._numbered[stored[_GROUP]]
                if model is None or group.model == model:
                    if stored[_LABELLED]:
                        status = semconv.LABEL_DUPLICATE
                    elif now - stored[_SERVED_AT] > self.ttl_s:
                        status = semconv.LABEL_EXPIRED
                    else:
                        found.append(Entry(request_id, group, stored))
            return (semconv.LABEL_JOINED, found) if found else (status, [])

    def commit(
        self,
        entry: Entry,
        n: int,
        pairs: list[tuple[str, str]] | None,
        correct: int,
        errors: np.ndarray | None,
    ) -> str:
        """Count a checked label into its window: "joined", else "duplicate" or "expired"."""
        window = math.floor(entry.served_at / self.window_s)
        with self._lock:
            self._settle()  # a newer prediction of the request may replace this one
            if not self._mark_labelled(entry):  # another thread labelled it first
                return semconv.LABEL_DUPLICATE
            scores = entry.group.windows.get(window)
            if scores is None:  # the window was dropped with its counts
                return semconv.LABEL_EXPIRED
            scores.labelled += n
            if pairs is not None:
                scores.add_classes(pairs, correct)
            if errors is not None:
                scores.add_errors(errors)
        return semconv.LABEL_JOINED

    def _mark_labelled(self, entry: Entry) -> bool:
        """Mark the entry's prediction labelled (called locked); False if it already was. One
        that left the index since `lookup` is gone: its label still counts."""
        held = self._entries.get(entry.request_id)
        predictions = () if held is None else _as_tuple(held)
        for i, stored in enumerate(predictions):
            if stored[_GROUP] == entry.group.number and stored[_SERVED_AT] == entry.served_at:
                if stored[_LABELLED]:
                    return False
                labelled = (*stored[:_LABELLED], True, stored[_REQUEST_ID])
                marked = (*predictions[:i], labelled, *predictions[i + 1 :])
                self._entries[entry.request_id] = _from_tuple(marked)
                return True
        return True

    def count_unjoined(self, status: str) -> None:
        with self._lock:
            self.unjoined[status] = self.unjoined.get(status, 0) + 1

    # -- what the metric reader sees -----------------------------------------------------------

    def snapshot(self) -> list[WindowScores]:
        """Copies of the counts of every retained window (windows too old are dropped now)."""
        oldest = math.floor(self.clock() / self.window_s) - self.windows
        with self._lock:
            self._settle()
            views = []
            for group in self._groups.values():
                for window in [w for w in group.windows if w <= oldest]:
                    del group.windows[window]
                views += [scores.copy() for scores in group.windows.values()]
            return views

    def counts(self) -> tuple[dict[tuple[tuple[str, AttributeValue], ...], int], dict[str, int]]:
        """(evictions by metric group, unjoined labels by status), cumulative."""
        with self._lock:
            self._settle()
            evicted = {key: g.evicted for key, g in self._groups.items() if g.evicted}
            return evicted, dict(self.unjoined)


DEFAULT_TTL_S = 86400.0
DEFAULT_MAX_PREDICTIONS = 100_000
DEFAULT_WINDOW_S = 3600.0
DEFAULT_WINDOWS = 24
_current = PredictionIndex(
    DEFAULT_TTL_S, DEFAULT_MAX_PREDICTIONS, DEFAULT_WINDOW_S, DEFAULT_WINDOWS
)


def current_index() -> PredictionIndex:
    """The process's index (`iw.configure_feedback` replaces it)."""
    return _current


def set_index(index: PredictionIndex) -> None:
    global _current
    _current = index
