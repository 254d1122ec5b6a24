"""Labels checked against what was predicted, and put in the predictions' own terms.

A classification label becomes the class name the span and the metrics use for the prediction
(so ``1`` matches the class ``"approve"`` when ``class_names=["deny", "approve"]``, as the
predicted index 1 does); a regression label becomes a finite float. A batch of ``n`` predictions
takes an array-like of ``n`` labels. Anything else raises `InvalidLabel`, which the caller of
`iw.feedback` never sees: it is counted and logged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from inferwatch.summaries.arrays import as_numpy
from inferwatch.summaries.predictions import class_name

Kind = Literal["classification", "regression"]
Plain = str | int | float | bool


class InvalidLabel(ValueError):
    """A label that cannot be compared with its prediction (type, shape, NaN)."""


def class_label(value: Any, class_names: Sequence[str] | None) -> str:
    """One class label as the prediction's class name."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidLabel(f"a class label cannot be {value!r}")
    if not isinstance(value, str | int | float):  # bool is an int
        raise InvalidLabel(f"a class label must be a string or a number, not {_kind(value)}")
    return class_name(value, class_names)


def value_label(value: Any) -> float:
    """One regression label as a finite float."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidLabel(f"a regression label must be a number, not {_kind(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidLabel(f"a regression label must be finite, not {number!r}")
    return number


def class_labels(label: Any, n: int, class_names: Sequence[str] | None) -> list[str]:
    """``n`` class labels (``n == 1``: a scalar, or an array-like of one)."""
    if n == 1 and _is_scalar(label):
        return [class_label(label, class_names)]
    array = _flat(label, n)
    if array.dtype.kind in "iub":  # indices (or booleans): the class names map them
        return [class_name(v, class_names) for v in array.tolist()]
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidLabel("class labels cannot be NaN or infinite")
    return [class_label(v, class_names) for v in array.tolist()]


def value_labels(label: Any, n: int) -> np.ndarray:
    """``n`` regression labels as a float64 array (``n == 1``: a scalar, or one value)."""
    if n == 1 and _is_scalar(label):
        return np.array([value_label(label)])
    array = _flat(label, n)
    if array.dtype.kind not in "iuf":
        raise InvalidLabel(f"regression labels must be numbers, not {array.dtype} values")
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise InvalidLabel("regression labels must be finite (no NaN or infinity)")
    return values


def portable(label: Any) -> Plain | list[Any]:
    """A label of unknown kind as a log attribute value: a scalar or a flat list of scalars.

    Used where no prediction is at hand (a process without the index): the value is kept as
    given, except booleans, which become class names ("True") as predicted booleans do.
    """
    if _is_scalar(label):
        return _portable_scalar(label)
    try:
        array = as_numpy(label)
    except (ValueError, TypeError, RuntimeError) as exc:  # ragged, or a broken array-like
        raise InvalidLabel(f"labels must be a scalar or a flat array, not {_kind(label)}") from exc
    if array.ndim != 1 or array.size == 0:
        raise InvalidLabel(f"labels must be a scalar or a flat array, not shape {array.shape}")
    values = [_portable_scalar(v) for v in array.tolist()]
    if len({type(v) for v in values}) > 1:  # an OTel array attribute holds one type
        values = [str(v) for v in values]
    return values


def _portable_scalar(value: Any) -> Plain:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return class_name(value, None)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidLabel(f"a label cannot be {value!r}")
        return value
    if isinstance(value, int):  # beyond int64 an OTLP int cannot carry it: as its digits
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, str):  # scrubbed, valid UTF-8 and capped, as a class name is
        return class_name(value, None)
    raise InvalidLabel(f"a label must be a string or a number, not {_kind(value)}")


def _is_scalar(value: Any) -> bool:
    if isinstance(value, str | bytes | np.generic):
        return True
    if isinstance(value, np.ndarray):
        return value.ndim == 0
    return not (isinstance(value, Sequence) or hasattr(value, "__array__"))


def _flat(label: Any, n: int) -> np.ndarray:
    """The labels as a 1-D array of ``n``; a 0-d input or a nested one raises."""
    if _is_scalar(label):
        raise InvalidLabel(f"{n} predictions need {n} labels, got one {_kind(label)}")
    try:
        array = as_numpy(label)
    except (ValueError, TypeError, RuntimeError) as exc:  # ragged, or a broken array-like
        raise InvalidLabel(f"labels must be a flat array, not {_kind(label)}") from exc
    if array.ndim == 0:  # a 0-d array-like (a tensor holding one value)
        array = array.reshape(1)
    if array.ndim != 1:
        raise InvalidLabel(f"labels must be a flat array, not shape {array.shape}")
    if array.size != n:
        raise InvalidLabel(f"{n} predictions need {n} labels, got {array.size}")
    if array.dtype.kind == "O" and any(isinstance(v, list | tuple | dict) for v in array):
        raise InvalidLabel("labels must be a flat array, not nested")
    return array


def _kind(value: Any) -> str:
    return type(value).__name__
