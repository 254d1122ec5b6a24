"""Clicks reported after serving, joined to the ranked list they were made on, by request id.

>>> with iw.inference(model="recs") as rec:         # serving: the list is remembered
...     rec.record_ranking(["i42", "i7", "i3"])
>>> iw.feedback(rec.request_id, clicks=["i7"])       # later: i7 was shown second
'joined'

A ranked list recorded inside an inference is remembered under the inference's request id (its
item keys and positions, and the span's ids), bounded like the prediction index: for the index's
``ttl`` and at most its ``max_predictions`` lists, both set by `iw.configure_feedback`, which also
forgets the lists remembered so far. A reported click finds its item's position there; the click
counts towards CTR by position in the model's window open now (as `iw.ranking.record_clicks`
does), and an ``ml.feedback`` log record links it to the span that served the list.

Each item counts one click per list: a second report of the same click is a "duplicate". An item
the list did not show makes the whole report "invalid" (nothing is counted: the caller's data is
wrong, and counting part of it would hide that).
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from typing import Any

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from inferwatch import nowait, semconv
from inferwatch.delayed_labels import record
from inferwatch.delayed_labels.index import PredictionIndex, current_index
from inferwatch.delayed_labels.instruments import feedback_instruments
from inferwatch.delayed_labels.values import InvalidLabel
from inferwatch.export.state import get_state
from inferwatch.forks import renew_lock_after_fork
from inferwatch.ranking.inputs import item_keys
from inferwatch.ranking.registry import record_clicks
from inferwatch.ranking.settings import item_key
from inferwatch.ranking.windows import RecordedList
from inferwatch.version import __version__


class ServedList:
    """One ranked list served to one request by one model."""

    __slots__ = (
        "clicked",
        "keys",
        "model",
        "ranks",
        "request_id",
        "served_at",
        "span_id",
        "trace_flags",
        "trace_id",
    )

    def __init__(
        self, request_id: str, model: str, recorded: RecordedList, served_at: float, span: Span
    ) -> None:
        self.request_id = request_id
        self.model = model
        self.keys = tuple(recorded.keys)  # a copy: the caller may reuse its list
        self.ranks = None if recorded.ranks is None else tuple(recorded.ranks)
        self.served_at = served_at
        context = span.get_span_context()
        self.trace_id, self.span_id = context.trace_id, context.span_id
        self.trace_flags = int(context.trace_flags)
        self.clicked: set[int] | None = None
        """Indices into ``keys`` of the items already clicked (None: none yet)."""

    def position(self, index: int) -> int:
        return index + 1 if self.ranks is None else self.ranks[index]


# A request's lists: one (nearly always), or a tuple when several models served it.
_Lists = ServedList | tuple[ServedList, ...]


def _as_tuple(lists: _Lists | None) -> tuple[ServedList, ...]:
    return () if lists is None else lists if isinstance(lists, tuple) else (lists,)


class ServedLists:
    """Bounded, thread-safe request id -> served lists (oldest first out, O(1) each)."""

    def __init__(self, index: PredictionIndex) -> None:
        self.index = index
        """The prediction index whose bounds (and clock) these lists follow."""
        self._lock = threading.Lock()
        renew_lock_after_fork(self)
        self._lists: dict[str, _Lists] = {}
        self._order: deque[ServedList] = deque()
        self._pending: deque[tuple[ServedList]] = deque()
        """Lists remembered and not yet added (`remember`)."""

    def __len__(self) -> int:
        with self._lock:
            nowait.settle(self._pending, self._add)
            return len(self._order)

    def remember(self, served: ServedList) -> None:
        """Remember a served list; a serving call never waits for the lock (`inferwatch.nowait`):
        if it is held, the list is queued for the holder, the next call or the next click."""
        nowait.record(self._lock, self._pending, self._add, (served,))

    def _add(self, served: ServedList) -> None:
        index, request_id = self.index, served.request_id
        self._expire(served.served_at - index.ttl_s)
        found = self._lists.get(request_id)
        if found is None:
            self._lists[request_id] = served
        else:  # a newer list of the same model replaces its older one
            kept = [s for s in _as_tuple(found) if s.model != served.model]
            self._lists[request_id] = (*kept, served) if kept else served
        order = self._order
        order.append(served)
        if len(order) > index.max_predictions:
            self._drop(order.popleft())

    def _expire(self, deadline: float) -> None:
        order = self._order
        while order and order[0].served_at < deadline:
            self._drop(order.popleft())

    def _drop(self, served: ServedList) -> None:
        request_id = served.request_id
        found = self._lists.get(request_id)
        if found is served:
            del self._lists[request_id]
        elif isinstance(found, tuple):
            kept = tuple(s for s in found if s is not served)
            self._lists[request_id] = kept if len(kept) > 1 else kept[0]

    def click(
        self, request_id: str, keys: list[str], model: str | None, now: float
    ) -> tuple[str, ServedList | None, list[int]]:
        """(status, the list clicked on, positions of the new clicks), counting them as clicked."""
        with self._lock:
            nowait.settle(self._pending, self._add)
            self._expire(now - self.index.ttl_s)
            lists = [s for s in _as_tuple(self._lists.get(request_id)) if model in (None, s.model)]
            for served in lists:  # the first list (of one model, usually) that showed them all
                try:
                    indices = {served.keys.index(key) for key in keys}
                except ValueError:
                    continue
                clicked = served.clicked
                new = sorted(indices - clicked if clicked is not None else indices)
                if not new:
                    return semconv.LABEL_DUPLICATE, served, []
                if clicked is None:
                    served.clicked = set(new)
                else:
                    clicked.update(new)
                return semconv.LABEL_JOINED, served, [served.position(i) for i in new]
            status = semconv.LABEL_INVALID if lists else semconv.LABEL_UNKNOWN
            return status, None, []


_lock = threading.Lock()
renew_lock_after_fork(sys.modules[__name__])  # this module's `_lock`
_served: ServedLists | None = None


def served_lists() -> ServedLists:
    """The lists remembered for the current prediction index (a new index forgets them)."""
    global _served
    index = current_index()
    found = _served
    if found is None or found.index is not index:
        with _lock:
            found = _served
            if found is None or found.index is not index:
                found = _served = ServedLists(index)
    return found


def remember_ranking(
    request_id: str | None, span: Span, model: str, recorded: RecordedList
) -> None:
    """Remember a list served in an inference, for its clicks. Raises only on internal errors."""
    lists = served_lists()
    if request_id is None or lists.index.max_predictions == 0:
        return
    lists.remember(ServedList(request_id, model, recorded, lists.index.clock(), span))


def clicked_keys(clicks: Any) -> list[str]:
    """The clicked items' keys: one item id, or a sequence of them (at least one)."""
    try:
        keys = [item_key(clicks)] if isinstance(clicks, str | int) else item_keys(clicks)
    except (TypeError, ValueError) as exc:
        raise InvalidLabel(f"clicks must be an item id or a list of item ids: {exc}") from None
    if not keys:
        raise InvalidLabel("clicks names no item")
    return keys


def join_clicks(request_id: str, keys: list[str], at_s: float, model: str | None) -> str:
    """Count a request's clicks into CTR by position; returns the label status (see module)."""
    lists = served_lists()
    index = lists.index
    status, served, positions = lists.click(request_id, keys, model, index.clock())
    if served is None or not positions:
        index.count_unjoined(status)
        return status
    record_clicks(served.model, positions)
    delay = max(0.0, at_s - served.served_at)
    attributes: dict[str, AttributeValue] = {
        semconv.ML_MODEL_NAME: served.model,
        semconv.ML_REQUEST_ID: request_id,
        semconv.ML_LABEL_STATUS: status,
        semconv.ML_LABEL_DELAY: delay,
        semconv.ML_RANKING_CLICKS: len(positions),
        semconv.ML_RANKING_POSITION: positions,
    }
    state = get_state()
    record.emit(
        state.logger_provider,
        __version__,
        attributes,
        at_s,
        served.trace_id,
        served.span_id,
        served.trace_flags,
    )
    feedback_instruments().delay.record(delay, {semconv.ML_MODEL_NAME: served.model})
    return status
