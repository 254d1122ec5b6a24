"""`iw.feedback`: a delayed label (ground truth), joined to the prediction it judges.

>>> iw.feedback("r-1", "fraud")                      # hours later, in the same process or not
>>> iw.feedback("r-2", [0, 1, 1], at=labelled_at)    # a batch of three predictions

In the serving process the label meets its prediction in the index (`delayed_labels.index`):
its window's counts move (accuracy, precision, recall and F1, or MAE and RMSE, are derived from
them at collection), the label delay goes into a histogram, and an ``ml.feedback`` log record
links the label to the inference span. In any other process the record carries the request id
and the label, and the query layer joins it to the span later. Nothing here raises into the
caller or waits on I/O: problems with a label are counted (``ml.label.unjoined``) and logged.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue as RecordValue

from inferwatch import semconv
from inferwatch.attributes import AttributeValue
from inferwatch.delayed_labels import record
from inferwatch.delayed_labels.index import (
    CLASSES,
    INDICES,
    VALUES,
    Entry,
    Predicted,
    PredictionIndex,
    current_index,
    set_index,
)
from inferwatch.delayed_labels.instruments import feedback_instruments
from inferwatch.delayed_labels.values import InvalidLabel, class_labels, portable, value_labels
from inferwatch.durations import positive_seconds
from inferwatch.errors import contained, log_internal_error
from inferwatch.export.privacy import scrub_request_id
from inferwatch.export.state import State, get_state
from inferwatch.instrument import observers
from inferwatch.summaries.arrays import as_numpy
from inferwatch.summaries.data_checks import RateLimiter
from inferwatch.summaries.predictions import PredictionSummary, class_name
from inferwatch.version import __version__

MAX_LABELS_ON_RECORD = 256
"""A batch's labels go on its log record up to this many; beyond, only the counts do."""
ERROR = "error"
"""What `feedback` returns when inferwatch itself failed (counted in `iw.internal_errors()`)."""

_log = logging.getLogger("inferwatch.labels")
_limiter = RateLimiter(60.0)


def configure_feedback(
    *,
    ttl: str | float = "1d",
    max_predictions: int = 100_000,
    window: str | float = "1h",
    windows: int = 24,
    clock: Callable[[], float] | None = None,
) -> None:
    """Size the index of remembered predictions and the serving windows of the label metrics.

    >>> iw.configure_feedback(ttl="7d", max_predictions=1_000_000, window="1d", windows=14)

    Predictions are remembered for ``ttl`` (and at most ``max_predictions``; 0 turns
    remembering off). Scores are kept per serving window of ``window``, for the last
    ``windows`` windows. ``clock`` (epoch seconds) is for tests. Replaces the current index:
    predictions remembered so far are forgotten.
    """
    ttl_s = positive_seconds(ttl, "ttl")
    window_s = positive_seconds(window, "window")
    for name, value in (("max_predictions", max_predictions), ("windows", windows)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if max_predictions < 0:
        raise ValueError(f"max_predictions must be 0 (off) or more, got {max_predictions}")
    if windows < 1:
        raise ValueError(f"windows must be at least 1, got {windows}")
    if clock is not None and not callable(clock):
        raise TypeError("clock must be a callable returning epoch seconds")
    set_index(PredictionIndex(ttl_s, max_predictions, window_s, windows, clock or time.time))


# -- the hot path: called by Inference.record_prediction --------------------------------------


def remember_prediction(
    request_id: str | None,
    span: Span,
    spec: Any,
    attributes: dict[str, AttributeValue],
    summary: PredictionSummary,
    y: Any,
) -> None:
    """Remember a recorded prediction for its delayed label. Never raises (strict mode aside)."""
    index = current_index()
    if request_id is None or index.max_predictions == 0:
        return
    try:
        predicted = _predicted(summary, y)
        if predicted is None:
            return
        index.remember(
            request_id, spec, attributes, predicted, summary.count, span.get_span_context()
        )
    except Exception as exc:
        contained.error("feedback.remember", exc)


def _predicted(summary: PredictionSummary, y: Any) -> Predicted | None:
    n = summary.count
    if summary.kind == "classification":
        if n == 1:
            return summary.classes[0][0] if summary.classes else None
        array = as_numpy(y)
        if array.dtype.kind in "fc" and array.ndim == 2 and array.shape[1] > 1:  # probabilities
            indices = np.argmax(array, axis=1)
            indices[np.isnan(array).any(axis=1)] = -1
            return (indices, INDICES) if indices.size == n else None
        flat = array.reshape(-1).copy()
        return (flat, CLASSES) if flat.size == n else None
    if summary.kind == "regression":
        if n == 1:
            return summary.values[0] if summary.values else None
        array = as_numpy(y)
        values = (array.real if array.dtype.kind == "c" else array).astype(np.float64).reshape(-1)
        return (values, VALUES) if values.size == n else None
    return None


# -- labels ------------------------------------------------------------------------------------


def feedback(
    request_id: str,
    label: Any = None,
    at: datetime | float | None = None,
    *,
    model: str | None = None,
    clicks: Any = None,
) -> str:
    """Report the true label of a request's prediction(s); returns how it was joined.

    >>> iw.feedback(request_id, "fraud")
    'joined'
    >>> iw.feedback(request_id, clicks=["i7"])   # an item of the ranked list the request served
    'joined'

    ``label``: a class (as predicted: a name, or an index into ``class_names``) or a number
    (regression); for a batch of ``n`` predictions, ``n`` of them. ``clicks`` instead of a
    label: the item id(s) clicked in the list recorded with ``rec.record_ranking`` (they count
    towards CTR by position; see `inferwatch.ranking.clicks`). ``at``: when the label was
    observed (a datetime, or epoch seconds; default now). ``model``: which model's prediction,
    when several served the request (default: each of them).

    Returns "joined", or why not: "unknown" (no such prediction here; the log record lets the
    store or backend join it later), "expired" (it left the index, or its window the metrics),
    "duplicate" (already labelled; the first label counts), "invalid" (wrong type or shape),
    or "error". Never raises (strict mode aside) and never waits on I/O.
    """
    try:
        return _feedback(request_id, label, at, model, clicks)
    except Exception as exc:
        contained.error("feedback", exc)
        return ERROR


def _feedback(request_id: Any, label: Any, at: Any, model: Any, clicks: Any) -> str:
    index = current_index()
    state = get_state()
    now = index.clock()
    try:
        request_id = _request_id(request_id)
        at_s = _at(at, now)
        if model is not None and not isinstance(model, str):
            raise InvalidLabel(f"model must be a string, not {type(model).__name__}")
        if (label is None) == (clicks is None):
            raise InvalidLabel("give a label or clicks (one of them)")
        joiner = None if clicks is None else observers.provider("clicks")
        keys = None if joiner is None else joiner.clicked_keys(clicks)
    except InvalidLabel as exc:
        return _invalid(index, exc)
    if joiner is not None:
        status: str = joiner.join_clicks(request_id, keys, at_s, model)
        if status not in (semconv.LABEL_JOINED, semconv.LABEL_UNKNOWN):
            _warn(status, request_id)
        return status
    status, entries = index.lookup(request_id, model, now)
    if not entries:
        return _not_here(state, index, status, request_id, label, at_s, model)
    statuses = [_join(state, index, entry, label, at_s) for entry in entries]
    return semconv.LABEL_JOINED if semconv.LABEL_JOINED in statuses else statuses[0]


def _request_id(value: Any) -> str:
    """The request id as spans carry it: scrubbed by the same rule (hashed, if so configured)."""
    if isinstance(value, str | int | uuid.UUID) and not isinstance(value, bool) and value != "":
        scrubbed = scrub_request_id(value)
        if scrubbed is not None:
            return scrubbed
    raise InvalidLabel(f"request_id must be a non-empty string, not {value!r}")


def _at(value: Any, now: float) -> float:
    if value is None:
        return now
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise InvalidLabel(f"at must be a datetime or epoch seconds, not {value!r}")


def _not_here(
    state: State,
    index: PredictionIndex,
    status: str,
    request_id: str,
    label: Any,
    at_s: float,
    model: str | None,
) -> str:
    """No open prediction here: a duplicate is dropped, anything else goes out for a late join."""
    if status != semconv.LABEL_DUPLICATE:
        try:
            value = portable(label)
        except InvalidLabel as exc:
            return _invalid(index, exc)
        attributes: dict[str, RecordValue] = {
            semconv.ML_REQUEST_ID: request_id,
            semconv.ML_LABEL_STATUS: status,
            semconv.ML_LABEL_VALUE: value,
        }
        if model is not None:
            attributes[semconv.ML_MODEL_NAME] = model
        record.emit(state.logger_provider, __version__, attributes, at_s)
    index.count_unjoined(status)
    if status != semconv.LABEL_UNKNOWN:  # expected where labels come from another process
        _warn(status, request_id)
    return status


def _join(state: State, index: PredictionIndex, entry: Entry, label: Any, at_s: float) -> str:
    group = entry.group
    class_names = group.spec.class_names
    n = entry.n
    pairs: list[tuple[str, str]] | None = None
    errors: np.ndarray | None = None
    correct = 0
    attributes: dict[str, RecordValue] = {
        **group.attributes,
        semconv.ML_REQUEST_ID: entry.request_id,
    }
    try:
        if entry.regression:
            labels: Any = value_labels(label, n)
            errors = _predicted_values(entry) - labels
            errors = errors[np.isfinite(errors)]
            if n == 1:
                attributes[semconv.ML_LABEL_VALUE] = float(labels[0])
                if errors.size:
                    attributes[semconv.ML_PREDICTION_ERROR] = float(errors[0])
            else:
                attributes[semconv.ML_LABEL_COUNT] = n
                if errors.size:
                    attributes[semconv.ML_LABEL_ABS_ERROR] = float(np.abs(errors).mean())
                if n <= MAX_LABELS_ON_RECORD:
                    attributes[semconv.ML_LABEL_VALUE] = labels.tolist()
        else:
            labels = class_labels(label, n, class_names)
            guesses = _predicted_classes(entry, class_names)
            scored = [(t, p) for t, p in zip(labels, guesses, strict=True) if p is not None]
            wrong = sum(t != p for t, p in scored)
            correct = len(scored) - wrong
            cap = state.class_label
            pairs = [(cap(group.model, t), cap(group.model, p)) for t, p in scored]
            if n == 1:
                attributes[semconv.ML_LABEL_VALUE] = labels[0]
            else:
                attributes[semconv.ML_LABEL_COUNT] = n
                attributes[semconv.ML_LABEL_WRONG] = wrong
                if n <= MAX_LABELS_ON_RECORD:
                    attributes[semconv.ML_LABEL_VALUE] = labels
            if scored:
                attributes[semconv.ML_PREDICTION_CORRECT] = wrong == 0
    except InvalidLabel as exc:
        return _invalid(index, exc)
    status = index.commit(entry, n, pairs, correct, errors)
    if status == semconv.LABEL_DUPLICATE:  # another thread's label got there first
        index.count_unjoined(status)
        _warn(status, entry.request_id)
        return status
    delay = max(0.0, at_s - entry.served_at)
    attributes[semconv.ML_LABEL_STATUS] = status
    attributes[semconv.ML_LABEL_DELAY] = delay
    if status == semconv.LABEL_JOINED and state.metrics_exported:
        attributes[semconv.ML_LABEL_COUNTED] = True
    record.emit(
        state.logger_provider,
        __version__,
        attributes,
        at_s,
        entry.trace_id,
        entry.span_id,
        entry.trace_flags,
    )
    if status == semconv.LABEL_JOINED:
        feedback_instruments().delay.record(delay, group.attributes)
        _tell_label_observers(group.spec, label)
    else:
        index.count_unjoined(status)
        _warn(status, entry.request_id)
    return status


def _predicted_values(entry: Entry) -> np.ndarray:
    predicted = entry.predicted
    if isinstance(predicted, tuple):
        return predicted[0]
    return np.array([predicted], dtype=np.float64)


def _predicted_classes(entry: Entry, class_names: Sequence[str] | None) -> list[str | None]:
    """The predicted class names, as the span and metrics name them; None for no prediction."""
    predicted = entry.predicted
    if isinstance(predicted, str):
        return [predicted]
    if not isinstance(predicted, tuple):
        return [None]
    array, code = predicted
    if code == INDICES:
        return [None if i < 0 else class_name(i, class_names) for i in array.tolist()]
    values = array.tolist() if array.dtype.kind != "O" else list(array)
    return [class_name(v, class_names) for v in values]


def _tell_label_observers(spec: Any, label: Any) -> None:
    """A checked label, as given, to the model's observers (drift windows: label shift).

    As given: the baseline profile was built from the user's own labels (names or indices),
    and the windows name classes the way the profile does.
    """
    for observer in spec.label_observers:
        with contained(f"observer.{observer.name}"):
            observer.on_label(label)


def _invalid(index: PredictionIndex, exc: InvalidLabel) -> str:
    index.count_unjoined(semconv.LABEL_INVALID)
    log_internal_error("feedback.label", exc)  # the caller's data: counted and logged, not raised
    return semconv.LABEL_INVALID


def _warn(status: str, request_id: str) -> None:
    suppressed = _limiter.allow(("feedback", status))
    if suppressed is None:
        return
    more = f" ({suppressed} more since the last such warning)" if suppressed else ""
    _log.warning(
        "inferwatch: %s label for request %s ignored by the metrics%s", status, request_id, more
    )
