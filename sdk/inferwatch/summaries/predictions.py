"""Fast summaries of what comes out of a model: values, classes, NaN and out-of-range counts.

Each function accepts anything and never raises for a value it does not understand; it records
what it can and counts the rest in ``unsupported``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from inferwatch import semconv
from inferwatch.attributes import AttributeValue
from inferwatch.export import privacy
from inferwatch.summaries.arrays import sample, try_as_numpy

SpanValue = AttributeValue | tuple[str, ...] | tuple[float, ...]
"""A span attribute value: a scalar, or a batch's rows."""

MAX_CLASS_LABEL = 64
"""A string prediction longer than this is generated text, reported as its class `__text__`."""

PredictionKind = Literal["auto", "regression", "classification"]


@dataclass(slots=True)
class PredictionSummary:
    kind: str
    count: int = 0
    nan_count: int = 0
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    values: list[float] = field(default_factory=list)
    """A sample of finite predicted values for the value histogram."""
    classes: list[tuple[str, int]] = field(default_factory=list)
    unsupported: int = 0
    out_of_range: int = 0
    """Values outside the range given to `summarize_prediction` (0 without one)."""
    rows: tuple[str, ...] | tuple[float, ...] | None = None
    """A batch of 2 to `semconv.MAX_ROWS_ON_SPAN` predictions: each row's class name ("" for a
    row without one) or value, in order."""

    def attributes(self) -> dict[str, SpanValue]:
        """Span attributes; a single prediction gets its value (as mean) or class, no count."""
        attrs: dict[str, SpanValue] = {}
        if self.count != 1:
            attrs[semconv.ML_PREDICTION_COUNT] = self.count
        if self.nan_count:
            attrs[semconv.ML_PREDICTION_NAN_COUNT] = self.nan_count
        if self.mean is not None:
            attrs[semconv.ML_PREDICTION_MEAN] = self.mean
            if self.count != 1:
                attrs[semconv.ML_PREDICTION_MIN] = self.min  # type: ignore[assignment]
                attrs[semconv.ML_PREDICTION_MAX] = self.max  # type: ignore[assignment]
        if self.classes:
            attrs[semconv.ML_PREDICTION_CLASS] = max(self.classes, key=lambda c: c[1])[0]
        if self.unsupported:
            attrs[semconv.ML_PREDICTION_UNSUPPORTED] = self.unsupported
            attrs[semconv.ML_PREDICTION_TYPE] = self.kind
        if self.out_of_range:
            attrs[semconv.ML_PREDICTION_OUT_OF_RANGE] = self.out_of_range
        if self.rows is not None:
            name = semconv.ML_PREDICTION_CLASSES if self.classes else semconv.ML_PREDICTION_VALUES
            attrs[name] = self.rows
        return attrs


def summarize_prediction(
    y: Any,
    kind: PredictionKind = "auto",
    class_names: Sequence[str] | None = None,
    valid_range: tuple[float, float] | None = None,
) -> PredictionSummary:
    """Summary of a prediction: numeric values (regression, scores) or predicted classes.

    ``kind="auto"`` reads floats as values, integers, booleans and strings as class labels, and a
    2-D float array with several columns as class probabilities (argmax per row). With
    ``valid_range`` numeric values outside it are counted in ``out_of_range``.

    >>> summarize_prediction(np.array([0.2, 0.4])).mean
    0.30000000000000004
    """
    kind_of_y = type(y)
    if kind_of_y is float and kind != "classification":  # the common single score, no numpy
        if y != y or y in (math.inf, -math.inf):
            return PredictionSummary("regression", count=1, nan_count=int(y != y))
        summary = PredictionSummary("regression", 1, 0, y, y, y, [y])
        if valid_range is not None and not valid_range[0] <= y <= valid_range[1]:
            summary.out_of_range = 1
        return summary
    module = kind_of_y.__module__
    if module.startswith("torch") and hasattr(y, "detach"):
        y = try_as_numpy(y)
        if y is None:
            return PredictionSummary("Tensor", unsupported=1)
    elif module.startswith("pandas") and hasattr(y, "to_numpy"):
        y = y.to_numpy()
    if not isinstance(y, np.ndarray):
        if y is None or not isinstance(y, bool | int | float | str | np.generic | list | tuple):
            return PredictionSummary(type(y).__name__, unsupported=1)
        try:
            y = np.asarray(y)
        except Exception:  # ragged lists; items whose own __array__ raises
            return PredictionSummary(type(y).__name__, unsupported=1)
    dtype_kind = y.dtype.kind
    if dtype_kind in "fc" and kind != "classification" and not _is_probabilities(y, kind):
        return _values(y.real if dtype_kind == "c" else y, valid_range)
    if dtype_kind in "iub" and kind == "regression":
        return _values(y.astype(np.float64), valid_range)
    if dtype_kind in "fc":
        if y.ndim == 2 and y.shape[1] > 1:  # probabilities: rows with a NaN have no class
            if not np.isnan(np.maximum.reduce(y, axis=None, initial=-np.inf)):
                return _classes(np.argmax(y, axis=1), class_names, 0)
            invalid = np.isnan(y).any(axis=1)
            summary = _classes(np.argmax(y[~invalid], axis=1), class_names, int(invalid.sum()))
            summary.count = y.shape[0]
            if 1 < summary.count <= semconv.MAX_ROWS_ON_SPAN:  # the valid rows' classes, in order
                valid = (
                    summary.rows if summary.rows is not None else [c for c, _ in summary.classes]
                )
                names = iter(valid)  # (with one valid row or none, its class is the only one)
                rows: tuple[str, ...] = tuple(
                    "" if bad else str(next(names)) for bad in invalid.tolist()
                )
                summary.rows = rows
            return summary
        return _classes(y, class_names, 0)
    if dtype_kind in "iubUSO":
        return _classes(y, class_names, 0)
    return PredictionSummary(str(y.dtype), unsupported=y.size)


def _is_probabilities(y: np.ndarray, kind: PredictionKind) -> bool:
    return kind == "auto" and y.ndim == 2 and y.shape[1] > 1


def _values(y: np.ndarray, valid_range: tuple[float, float] | None = None) -> PredictionSummary:
    flat = y.reshape(-1)
    n = flat.size
    summary = PredictionSummary("regression", count=n)
    if n == 0:
        return summary
    if 1 < n <= semconv.MAX_ROWS_ON_SPAN:  # (a non-finite value is no attribute value: none)
        rows = flat.astype(np.float64, copy=False).tolist()
        if all(math.isfinite(v) for v in rows):
            summary.rows = tuple(rows)
    low, high = float(np.minimum.reduce(flat)), float(np.maximum.reduce(flat))
    if not (math.isfinite(low) and math.isfinite(high)):
        summary.nan_count = int(np.count_nonzero(np.isnan(flat)))
        flat = flat[np.isfinite(flat)]
        if flat.size == 0:
            return summary
        low, high = float(np.minimum.reduce(flat)), float(np.maximum.reduce(flat))
    # Sum first when it cannot overflow (the usual case); else scale first. Narrow floats
    # (float32 tensors) are summed in float64: two float32 values near its max overflow.
    acc = np.float64 if flat.dtype.itemsize < 8 else None
    if max(-low, high) * flat.size < 1e300:
        summary.mean = float(np.add.reduce(flat, dtype=acc)) / flat.size
    else:  # scaled into [-1, 1]: neither the sum of such values nor the mean can overflow
        scale = max(-low, high)
        ratio = float(np.add.reduce(flat / scale, dtype=acc)) / flat.size
        summary.mean = min(max(ratio, low / scale), high / scale) * scale
    summary.min, summary.max = low, high
    if valid_range is not None and (low < valid_range[0] or high > valid_range[1]):
        outside = (flat < valid_range[0]) | (flat > valid_range[1])
        summary.out_of_range = int(np.count_nonzero(outside))
    summary.values = sample(flat)
    return summary


def _classes(
    labels: np.ndarray, class_names: Sequence[str] | None, nan_rows: int
) -> PredictionSummary:
    flat = labels.reshape(-1)
    summary = PredictionSummary("classification", count=flat.size, nan_count=nan_rows)
    if flat.size == 1:
        counted: list[tuple[Any, int]] = [
            (flat[0].item() if flat.dtype.kind != "O" else flat[0], 1)
        ]
    else:
        try:
            small_ints = flat.dtype.kind in "iu" and flat.size > 0
            if small_ints and flat.min() >= 0 and flat.max() < 4 * flat.size + 64:
                per_label = np.bincount(flat)  # class indices: cheaper than sorting
                present = np.flatnonzero(per_label)
                counted = list(zip(present.tolist(), per_label[present].tolist(), strict=True))
            else:
                with np.errstate(all="ignore"):  # sorting NaN or huge values warns: not ours
                    values, counts = np.unique(flat, return_counts=True)
                counted = list(zip(values.tolist(), counts.tolist(), strict=True))
        except Exception:  # mixed, unorderable or huge labels; objects that refuse to compare
            counted = list(Counter(map(str, flat.tolist())).items())
    summary.classes = [(class_name(label, class_names), count) for label, count in counted]
    if 1 < flat.size <= semconv.MAX_ROWS_ON_SPAN:
        try:  # each distinct label named once
            pairs = zip(counted, summary.classes, strict=True)
            names = {label: name for (label, _), (name, _) in pairs}
            summary.rows = tuple(
                names[v] if v in names else class_name(v, class_names) for v in flat.tolist()
            )
        except Exception:  # labels that are not hashable (objects): the summary is enough
            summary.rows = None
    return summary


def class_name(label: Any, class_names: Sequence[str] | None) -> str:
    if class_names is not None and isinstance(label, int) and 0 <= label < len(class_names):
        return str(class_names[label])
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    text = str(label)
    if len(text) > MAX_CLASS_LABEL:  # generated text, not a class: never exported verbatim
        return semconv.TEXT_PREDICTION_CLASS
    return privacy.active().text(text)  # labels go on spans and metrics: scrubbed like tags
