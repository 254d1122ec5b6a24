"""Fast summaries of what goes into a model: NaN counts, batch size, lengths.

Summaries, not payloads: nothing here keeps or copies the user's data beyond what a vectorised
count needs. Each function accepts anything and never raises for a value it does not understand;
it records what it can and counts the rest in ``unsupported``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inferwatch import semconv
from inferwatch.attributes import AttributeValue, valid_text

try:  # the C function behind np.count_nonzero, without its Python dispatch (a request's row)
    from numpy._core.multiarray import count_nonzero as _count_nonzero
except ImportError:  # numpy < 2
    _count_nonzero = np.count_nonzero
_isnan = np.isnan


@dataclass(slots=True)
class InputSummary:
    kind: str
    batch_size: int | None = None
    nan_count: int | None = None
    nan_rows: int | None = None
    nan_by_feature: dict[str, int] | None = None
    """Only features with at least one NaN (or missing value)."""
    length: float | None = None
    length_max: int | None = None
    lengths: Sequence[int] = ()
    """Per-item lengths (texts, token lists); the histogram takes a sample of them."""
    unsupported: int = 0
    nan_full_rows: int = 0
    """Rows (items) whose every value is NaN or missing."""

    def attributes(self) -> dict[str, AttributeValue]:
        """Span attributes; values implied by others (per-row maxima of one row) are left out."""
        attrs: dict[str, AttributeValue] = {}
        if self.batch_size is not None:
            attrs[semconv.ML_INPUT_BATCH_SIZE] = self.batch_size
        if self.nan_count is not None:
            attrs[semconv.ML_INPUT_NAN_COUNT] = self.nan_count
        several = self.batch_size is None or self.batch_size > 1
        if self.nan_rows is not None and several:
            attrs[semconv.ML_INPUT_NAN_ROWS] = self.nan_rows
        if self.length is not None:
            attrs[semconv.ML_INPUT_LENGTH] = self.length
        if self.length_max is not None and several:
            attrs[semconv.ML_INPUT_LENGTH_MAX] = self.length_max
        if self.unsupported:
            attrs[semconv.ML_INPUT_UNSUPPORTED] = self.unsupported
            attrs[semconv.ML_INPUT_TYPE] = self.kind
        if self.nan_full_rows:
            attrs[semconv.ML_INPUT_NAN_FULL_ROWS] = self.nan_full_rows
        return attrs


# -- inputs --------------------------------------------------------------------------------------


def summarize_input(x: Any, features: Sequence[str] | None = None) -> InputSummary:
    """NaN counts, batch size and lengths of a model input of any supported type.

    >>> summarize_input(np.array([[1.0, np.nan]]), features=["a", "b"]).nan_by_feature
    {'b': 1}
    """
    if isinstance(x, np.ndarray):
        if x.ndim == 2 and x.size <= _SMALL and x.dtype.kind == "f":
            return _small_rows(x, features)
        return _array_input(x, features, "ndarray")
    if isinstance(x, str | bytes):
        return InputSummary(type(x).__name__, 1, 0, 0, None, float(len(x)), len(x), [len(x)])
    if isinstance(x, bool | int | float | np.generic):
        missing = int(_is_missing(x))
        return InputSummary("scalar", 1, missing, missing)
    if isinstance(x, Mapping):
        return _mapping_input(x)
    if isinstance(x, list | tuple):
        return _sequence_input(x, features)
    module = type(x).__module__
    if module.startswith("pandas"):
        return _pandas_input(x, features)
    if module.startswith("torch"):
        return _tensor_input(x, features)
    return InputSummary(type(x).__name__, unsupported=1)


def _array_input(x: np.ndarray, features: Sequence[str] | None, kind: str) -> InputSummary:
    ndim = x.ndim
    dtype_kind = x.dtype.kind
    if dtype_kind in "USO" and ndim <= 1:
        return _sequence_input(x.tolist() if ndim else [x.item()], None, kind)
    shape = x.shape
    if ndim == 2:
        batch, length = shape
    elif ndim > 2:
        batch, length = shape[0], math.prod(shape[1:])
    else:
        batch, length = 1, (shape[0] if ndim == 1 else 1)
    # Feature matrices have a fixed width: only integer arrays (token ids) feed the histogram.
    lengths = [length] if dtype_kind in "iu" else ()
    summary = InputSummary(kind, batch, 0, 0, None, float(length), length, lengths)
    if dtype_kind not in "fc":
        if dtype_kind not in "iub":
            summary.unsupported = x.size
        return summary
    if dtype_kind == "f" and x.size <= _SMALL:
        nan = np.isnan(x)
        total = int(_count_nonzero(nan))
        if total:
            _small_nans(summary, x, nan, total, features)
        return summary
    # One pass without allocation or warnings: NaN anywhere makes the maximum NaN, and clean
    # inputs are the norm. (Complex numbers have no NaN-propagating order; count them directly.)
    if dtype_kind == "f" and not np.isnan(np.maximum.reduce(x, axis=None, initial=-np.inf)):
        return summary
    nan = np.isnan(x)
    total = summary.nan_count = int(np.count_nonzero(nan))
    if ndim <= 1:
        summary.nan_rows = int(total > 0)
        summary.nan_full_rows = int(total == nan.size)
        if features is not None and ndim == 1 and len(features) == x.shape[0]:
            summary.nan_by_feature = _named(features, {i: 1 for i in np.flatnonzero(nan).tolist()})
        return summary
    width = nan.size // batch if batch else 0
    named = features is not None and ndim == 2 and len(features) == width
    if total * 8 < nan.size and ndim == 2 and nan.flags.f_contiguous:
        # Column-major (a pandas frame's block): positions run down the columns.
        positions = np.flatnonzero(nan.T)
        per_row = np.bincount(positions % batch, minlength=batch)
        summary.nan_rows = int(np.count_nonzero(per_row))
        summary.nan_full_rows = int(np.count_nonzero(per_row == width))
        per_feature = np.bincount(positions // batch, minlength=width) if named else None
    elif total * 8 < nan.size:  # sparse NaNs: work on their positions, not on the whole mask
        positions = np.flatnonzero(nan)
        rows = positions // width
        summary.nan_rows = 1 + int(np.count_nonzero(rows[1:] != rows[:-1]))
        if total >= width:  # a row can only be all NaN with at least `width` of them
            summary.nan_full_rows = int(np.count_nonzero(np.bincount(rows) == width))
        per_feature = np.bincount(positions % width, minlength=width) if named else None
    else:
        flat = nan.reshape(batch, width)
        summary.nan_rows = int(np.count_nonzero(flat.any(axis=1)))
        summary.nan_full_rows = int(np.count_nonzero(flat.all(axis=1)))
        per_feature = np.add.reduce(flat, axis=0, dtype=np.int64) if named else None
    if per_feature is not None and features is not None:
        counts = per_feature.tolist()
        summary.nan_by_feature = _named(features, {i: n for i, n in enumerate(counts) if n})
    return summary


def _named(features: Sequence[Any], counts: dict[int, int]) -> dict[str, int]:
    """Counts by feature position as counts by feature name (a frame's columns are an Index,
    whose items cost a call each: listed once). Names become metric attribute values: valid
    UTF-8."""
    names = features.tolist() if hasattr(features, "tolist") else features
    return {valid_text(str(names[i])): n for i, n in counts.items()}


_SMALL = 256
"""Arrays up to this size are counted with one mask and one count, and the positions of their
NaNs read only when a row or a feature needs them: a request's row or two, where each numpy
call costs more than the arithmetic it does."""


def _small_rows(x: np.ndarray, features: Sequence[str] | None) -> InputSummary:
    """`_array_input` of a request's few rows of floats (2-D, at most `_SMALL` values), with
    nothing it need not do: one mask, one count, positions only if there are NaNs."""
    batch, width = x.shape
    nan = _isnan(x)
    total = int(_count_nonzero(nan))
    if batch == 1 and features is None:  # one row, no names: its NaNs are all there is to say
        shared = _ONE_ROW.get(width << 9 | total)  # (width, total), each at most _SMALL
        return shared if shared is not None else _one_row(width, total)
    summary = InputSummary("ndarray", batch, 0, 0, None, float(width), width)
    if total:
        _small_nans(summary, x, nan, total, features)
    return summary


class _SharedSummary(InputSummary):
    """A summary handed to every call with the same input shape and count: read-only."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a shared input summary is read-only ({name})")

    def __eq__(self, other: object) -> bool:  # equal to an `InputSummary` of the same values
        if not isinstance(other, InputSummary):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in InputSummary.__slots__)

    __hash__ = None  # type: ignore[assignment]  # as InputSummary's


_ONE_ROW: dict[int, InputSummary] = {}
"""The summaries of one unnamed row by width and NaN count (a request's row): made once each."""


def _one_row(width: int, total: int) -> InputSummary:
    summary = InputSummary(
        "ndarray", 1, total, int(total > 0), None, float(width), width, (), 0, int(total == width)
    )
    if len(_ONE_ROW) < 1024:
        shared = _ONE_ROW[width << 9 | total] = _SharedSummary.__new__(_SharedSummary)
        for name in InputSummary.__slots__:
            object.__setattr__(shared, name, getattr(summary, name))
        return shared
    return summary


def _small_nans(
    summary: InputSummary,
    x: np.ndarray,
    nan: np.ndarray,
    total: int,
    features: Sequence[str] | None,
) -> None:
    """Fill in the NaN counts of a small float array with ``total`` NaNs (``nan`` its mask)."""
    summary.nan_count = total
    batch = summary.batch_size or 1
    width = x.size // batch if batch else 0
    if x.ndim <= 1 or batch == 1:  # one row: each position is one feature
        summary.nan_rows = 1
        summary.nan_full_rows = int(total == x.size)
        if features is not None and 1 <= x.ndim <= 2 and len(features) == width:
            ones = dict.fromkeys(np.flatnonzero(nan).tolist(), 1)
            summary.nan_by_feature = _named(features, ones)
        return
    positions: list[int] = np.flatnonzero(nan).tolist()
    per_row = Counter(i // width for i in positions)
    summary.nan_rows = len(per_row)
    summary.nan_full_rows = sum(1 for n in per_row.values() if n == width)
    if features is not None and x.ndim == 2 and len(features) == width:
        per_feature = Counter(i % width for i in positions)
        summary.nan_by_feature = _named(features, {i: per_feature[i] for i in sorted(per_feature)})


def _sequence_input(
    x: Sequence[Any], features: Sequence[str] | None, kind: str | None = None
) -> InputSummary:
    kind = kind or type(x).__name__
    if len(x) == 0:
        return InputSummary(kind, 0, 0, 0)
    first = x[0]
    if isinstance(first, str | bytes):  # a batch of texts
        return _items_input(x, kind)
    if isinstance(first, Mapping):  # a batch of records
        return _records_input(x, kind)
    numeric = _numeric_array(x)
    if isinstance(first, list | tuple | np.ndarray):  # rows, or token lists of varying length
        return _items_input(x, kind) if numeric is None else _array_input(numeric, features, kind)
    if numeric is not None:  # one feature vector
        return _array_input(numeric, features, kind)
    missing = sum(_is_missing(v) for v in x)
    unsupported = sum(not isinstance(v, bool | int | float | np.generic) for v in x) - sum(
        v is None for v in x
    )
    return InputSummary(
        kind, 1, missing, int(missing > 0), None, float(len(x)), len(x), [len(x)], unsupported
    )


def _numeric_array(x: Sequence[Any]) -> np.ndarray | None:
    """The values as a numeric array (None becomes NaN), or None if they are not all numbers.

    No casting that warns: complex stays complex, and strings or ragged rows give None.
    """
    try:
        array = np.asarray(x)
        if array.dtype.kind == "O":
            if any(np.iscomplexobj(v) for v in array.flat):  # would cast with a warning
                return None
            array = array.astype(np.float64)  # None -> NaN; raises for anything not a number
    except Exception:  # also what items' own __array__ raise (a tensor that requires grad)
        return None
    return array if array.dtype.kind in "fciub" else None


def _items_input(items: Sequence[Any], kind: str) -> InputSummary:
    """A batch of sized items (texts, token lists): lengths, missing items, unsized ones."""
    lengths: list[int] = []
    missing = unsupported = 0
    for item in items:
        if item is None or (type(item) is float and item != item):
            missing += 1
        else:
            try:
                lengths.append(len(item))
            except TypeError:  # no length (numbers), or a 0-d array that has __len__ but no size
                unsupported += 1
    summary = InputSummary(kind, len(items), missing, missing, unsupported=unsupported)
    if lengths:
        summary.length = sum(lengths) / len(lengths)
        summary.length_max = max(lengths)
        summary.lengths = lengths
    return summary


def _records_input(records: Sequence[Any], kind: str) -> InputSummary:
    by_feature: Counter[str] = Counter()
    nan_rows = unsupported = full_rows = 0
    for record in records:
        if not isinstance(record, Mapping):
            unsupported += 1
            continue
        missing = [str(k) for k, v in record.items() if _is_missing(v)]
        by_feature.update(missing)
        nan_rows += bool(missing)
        full_rows += bool(missing) and len(missing) == len(record)
    total = sum(by_feature.values())
    return InputSummary(
        kind,
        len(records),
        total,
        nan_rows,
        _valid_names(by_feature),
        unsupported=unsupported,
        nan_full_rows=full_rows,
    )


def _valid_names(by_feature: Mapping[str, int]) -> dict[str, int] | None:
    """Counts by names from request data (record keys), which become metric attribute values:
    valid UTF-8 (None when empty)."""
    if not by_feature:
        return None
    if all(name.isascii() for name in by_feature):
        return dict(by_feature)
    return {valid_text(name): n for name, n in by_feature.items()}


def _mapping_input(x: Mapping[Any, Any]) -> InputSummary:
    """Feature name → value (one row), or → equally long columns (a columnar batch).

    A dict is columnar only when every value is a column of one common length; otherwise it is
    one row whose list values (token lists, embeddings) are features in their own right.
    """
    columns = {key: _column_missing(value) for key, value in x.items()}
    sizes = {column[0] for column in columns.values() if column is not None}
    if x and None not in columns.values() and len(sizes) == 1:
        by_feature = {str(k): c[1] for k, c in columns.items() if c is not None and c[1]}
        total = sum(by_feature.values())
        return InputSummary("dict", sizes.pop(), total, None, _valid_names(by_feature))
    by_feature = {}
    lengths: list[int] = []
    unsupported = 0
    for key, value in x.items():
        if isinstance(value, str | bytes):
            lengths.append(len(value))
        elif _is_missing(value):
            by_feature[str(key)] = 1
        elif columns[key] is not None:
            lengths.append(columns[key][0])  # type: ignore[index]
        elif not isinstance(value, bool | int | float | np.generic):
            unsupported += 1
    total = sum(by_feature.values())
    summary = InputSummary(
        "dict", 1, total, int(total > 0), _valid_names(by_feature), unsupported=unsupported
    )
    if lengths:
        summary.length, summary.length_max = sum(lengths) / len(lengths), max(lengths)
        summary.lengths = lengths
    return summary


def _column_missing(column: Any) -> tuple[int, int] | None:
    """(rows, missing) of one column given as an array, list or Series; None if not a column."""
    if type(column).__name__ == "Series" and type(column).__module__.startswith("pandas"):
        return len(column), int(column.isna().sum())
    if isinstance(column, np.ndarray) and column.ndim == 1:
        if column.dtype.kind in "fc":
            return len(column), int(np.count_nonzero(np.isnan(column)))
        return len(column), sum(_is_missing(v) for v in column.tolist())
    if isinstance(column, list | tuple):
        return len(column), sum(_is_missing(v) for v in column)
    return None


def _pandas_input(x: Any, features: Sequence[str] | None) -> InputSummary:
    kind = type(x).__name__
    if kind == "Series":
        missing = int(x.isna().sum())  # each element is a row
        return InputSummary(kind, len(x), missing, missing)
    if kind != "DataFrame":
        return InputSummary(kind, unsupported=1)
    # One view, no copy, for a single numpy block (a numeric frame's usual shape); the column
    # names are read only if there are NaNs to name (`str` and `valid_text` of them there).
    # Anything that is not one numeric array (strings, dates, nullable dtypes' NA) goes via isna.
    array = x.to_numpy(copy=False)
    if array.dtype.kind in "fciub":
        return _array_input(array, x.columns, kind)
    columns = x.columns.tolist()
    if not all(type(c) is str and c.isascii() for c in columns):
        columns = [valid_text(str(c)) for c in columns]
    nan = x.isna().to_numpy()
    per_column = nan.sum(axis=0)
    return InputSummary(
        kind,
        len(x),
        int(per_column.sum()),
        int(np.count_nonzero(nan.any(axis=1))),
        {columns[i]: int(per_column[i]) for i in np.flatnonzero(per_column)} or None,
        float(len(columns)),
        len(columns),
        nan_full_rows=int(np.count_nonzero(nan.all(axis=1))) if len(columns) else 0,
    )


def _tensor_input(x: Any, features: Sequence[str] | None) -> InputSummary:
    """A torch tensor, counted where it lives: only scalar results cross to the CPU."""
    if not hasattr(x, "shape") or not hasattr(x, "isnan"):
        return InputSummary(type(x).__name__, unsupported=1)
    shape = tuple(x.shape)
    ndim = len(shape)
    length = math.prod(shape[1:]) if ndim >= 2 else (shape[0] if ndim == 1 else 1)
    floating = bool(x.is_floating_point() or x.is_complex())
    summary = InputSummary(
        "Tensor",
        shape[0] if ndim >= 2 else 1,
        0,
        0,
        None,
        float(length),
        length,
        [] if floating else [length],
    )
    if not floating:
        return summary
    nan = x.isnan()
    summary.nan_count = int(nan.sum().item())
    if summary.nan_count == 0:
        return summary
    if ndim >= 2:
        per_row = nan.reshape(shape[0], -1)
        summary.nan_rows = int(per_row.any(dim=1).sum().item())
        summary.nan_full_rows = int(per_row.all(dim=1).sum().item())
        if ndim == 2 and features is not None and len(features) == shape[1]:
            per_feature = nan.sum(dim=0).tolist()
            summary.nan_by_feature = {
                valid_text(str(f)): int(n) for f, n in zip(features, per_feature, strict=True) if n
            }
    else:
        summary.nan_rows = 1
        summary.nan_full_rows = int(summary.nan_count == max(1, length))
    return summary


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN is the only value unequal to itself
    except Exception:
        return False
