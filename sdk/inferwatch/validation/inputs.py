"""Reading an input (array, DataFrame, dict, dict rows) as a float matrix plus object columns."""

from __future__ import annotations

import contextlib
import itertools
import numbers
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

SMALL_BATCH = 8  # up to this many rows, checking value by value is faster than numpy
FloatArray = npt.NDArray[np.float64]

Odd = list[tuple[int, Any]]
"""(row, value) of the values of a matrix column that are not numbers: NaN in the matrix."""


@dataclass
class _Input:
    """An input as a numeric matrix (named columns) plus object columns, all ``n`` rows."""

    n: int
    matrix: FloatArray | None = None
    matrix_names: Sequence[str] = ()
    objects: Mapping[str, Sequence[Any]] | None = None
    unsupported: int = 0
    odd: Mapping[str, Odd] | None = None


def read_input(x: Any, features: Sequence[str] | None, wanted: Iterable[str]) -> _Input | None:
    """``x`` as matrix and object columns; ``wanted``: the features the schema checks."""
    if isinstance(x, np.ndarray):
        return _read_array(x, features)
    module = type(x).__module__
    if module.startswith("pandas"):
        kind = type(x).__name__
        if kind == "DataFrame":
            names = [str(c) for c in x.columns]
            if len(set(names)) != len(names):
                return None
            dtypes = x.dtypes.tolist()
            if all(isinstance(d, np.dtype) and d.kind in "fiu" for d in dtypes):  # one block
                return _Input(len(x), x.to_numpy(dtype=np.float64), names)
            return _read_columns({name: x.iloc[:, j] for j, name in enumerate(names)}, len(x))
        if kind == "Series":  # one row, indexed by feature name
            return _read_row({str(k): v for k, v in x.items()})
        return None
    if isinstance(x, Mapping):
        sizes = {_column_length(v) for v in x.values()}
        if x and len(sizes) == 1 and None not in sizes:
            n = sizes.pop()
            assert n is not None
            return _read_columns({str(k): v for k, v in x.items()}, n)
        return _read_row({str(k): v for k, v in x.items()})
    if isinstance(x, list | tuple):
        if not x:
            return _Input(0)
        if any(isinstance(r, Mapping) for r in x):
            return _read_records(x, wanted)
        return _read_array(np.asarray(x), features)
    return None


def _read_array(x: npt.NDArray[Any], features: Sequence[str] | None) -> _Input | None:
    if x.ndim == 1 and features is not None and len(features) == x.shape[0]:
        x = x.reshape(1, -1)
    if x.ndim != 2 or features is None or len(features) != x.shape[1]:
        return None
    names = [str(f) for f in features]
    if x.dtype.kind in "fiu":
        return _Input(x.shape[0], x.astype(np.float64, copy=False), names)
    if x.dtype.kind not in "bOUS":
        return None
    columns = x.T.tolist()
    return _Input(x.shape[0], objects=dict(zip(names, columns, strict=True)))


def _read_row(row: Mapping[str, Any]) -> _Input:
    return _Input(1, objects={k: [v] for k, v in row.items()})


def _read_records(records: Sequence[Any], wanted: Iterable[str]) -> _Input:
    """Dict rows as one float matrix of the ``wanted`` features (a missing key is a null)."""
    rows = [r for r in records if isinstance(r, Mapping)]
    n, unsupported = len(rows), len(records) - len(rows)
    names = list(wanted)
    if n <= SMALL_BATCH or not names:
        keys: dict[str, None] = {}
        for r in rows:
            keys.update(dict.fromkeys(r))
        objects = {str(k): [r.get(k) for r in rows] for k in keys}
        return _Input(n, objects=objects, unsupported=unsupported)
    table = _table(rows, names)
    read = _as_floats(list(itertools.chain.from_iterable(table)), n * len(names))
    if read is None:  # numbers numpy cannot hold (huge ints): value by value, as the rules do
        columns = {name: [row[j] for row in table] for j, name in enumerate(names)}
        return _Input(n, objects=columns, unsupported=unsupported)
    floats, odd_flat = read
    odd: dict[str, Odd] = {}
    for p, v in odd_flat:
        i, j = divmod(p, len(names))
        odd.setdefault(names[j], []).append((i, v))
    # Columns of mostly non-numbers (strings) are cheaper to check as objects.
    strings = {j for j, name in enumerate(names) if 2 * len(odd.get(name, ())) > n}
    objects = {names[j]: [row[j] for row in table] for j in strings}
    keep = [j for j in range(len(names)) if j not in strings]
    matrix = floats.reshape(n, len(names))[:, keep] if strings else floats.reshape(n, len(names))
    kept = [names[j] for j in keep]
    odd = {name: odd[name] for name in kept if name in odd}
    return _Input(n, matrix, kept, objects, unsupported, odd)


def _table(rows: list[Mapping[Any, Any]], names: list[str]) -> list[tuple[Any, ...]]:
    """The ``names`` values of every row (None where a row lacks one), a tuple per row."""
    get = operator.itemgetter(*names)
    if len(names) == 1:
        name = names[0]
        return [(r.get(name) if name in r else _get_str(r, name),) for r in rows]
    try:
        return list(map(get, rows))
    except KeyError:  # some rows lack a feature: those rows one key at a time
        out = []
        for r in rows:
            try:
                out.append(get(r))
            except KeyError:
                out.append(tuple(r[k] if k in r else _get_str(r, k) for k in names))
        return out


def _get_str(row: Mapping[Any, Any], name: str) -> Any:
    """The value of the key whose ``str()`` is ``name`` (keys are named by their text)."""
    for key, value in row.items():
        if not isinstance(key, str) and str(key) == name:
            return value
    return None


_READS_AS_FLOAT: dict[type, bool] = {float: True, int: True, type(None): True, bool: False}


def _reads_as_float(t: type) -> bool:
    """Whether values of type ``t`` are real numbers (or None): as float64 they keep their
    meaning under the rules. Bools, strings and other objects do not."""
    ok = _READS_AS_FLOAT.get(t)
    if ok is None:
        ok = issubclass(t, numbers.Real) and not issubclass(t, bool | np.bool_)
        if len(_READS_AS_FLOAT) < 256:
            _READS_AS_FLOAT[t] = ok
    return ok


def _as_floats(values: list[Any], max_odd: int) -> tuple[FloatArray, Odd] | None:
    """``values`` as float64 (None and NaN as NaN) and the (position, value) of every value that
    is not a number, which is NaN in the array. None when there are more than ``max_odd`` of
    those, or numpy cannot convert a number (an int beyond float range)."""
    types = list(map(type, values))
    odd: Odd = []
    if types.count(float) != len(types):  # all floats: the usual case, one C-level pass
        odd_types = [t for t in set(types) if not _reads_as_float(t)]
        if odd_types:
            values = list(values)
            for t in odd_types:  # one C-level scan per type (they are few)
                if max_odd < len(values) and len(odd) + types.count(t) > max_odd:
                    return None  # e.g. a column of strings: no need to find them all
                i = -1
                with contextlib.suppress(ValueError):
                    while True:
                        i = types.index(t, i + 1)
                        odd.append((i, values[i]))
                        values[i] = None
                if len(odd) > max_odd:
                    return None
    try:
        return np.array(values, dtype=np.float64), odd
    except (OverflowError, TypeError, ValueError):
        return None


def _column_length(v: Any) -> int | None:
    if isinstance(v, np.ndarray):
        return v.shape[0] if v.ndim == 1 else None
    if isinstance(v, list | tuple):
        return len(v)
    if type(v).__name__ == "Series" and type(v).__module__.startswith("pandas"):
        return len(v)
    return None


def _read_columns(columns: Mapping[str, Any], n: int) -> _Input:
    numeric: dict[str, FloatArray] = {}
    objects: dict[str, Sequence[Any]] = {}
    odd: dict[str, Odd] = {}
    for name, col in columns.items():
        values = _numeric_column(col)
        if values is not None and values.shape == (n,):
            numeric[name] = values
            continue
        items = _object_column(col)
        read = _as_floats(items, len(items) // 2) if len(items) == n else None
        if read is None:  # mostly strings (or not one value per row): value by value
            objects[name] = items
            continue
        numeric[name] = read[0]
        if read[1]:
            odd[name] = read[1]
    matrix = np.column_stack(list(numeric.values())) if numeric else None
    return _Input(n, matrix, list(numeric), objects, odd=odd)


def _numeric_column(col: Any) -> FloatArray | None:
    """A numeric array or Series as float64 (NaN = null); None for other columns."""
    if isinstance(col, np.ndarray):
        return col.astype(np.float64, copy=False) if col.dtype.kind in "fiu" else None
    if isinstance(col, list | tuple):
        return None
    dtype = getattr(col, "dtype", None)  # a pandas Series
    kind = getattr(dtype, "kind", "O")
    if kind in "fiu" and hasattr(col, "to_numpy"):
        out: FloatArray = col.to_numpy(dtype=np.float64, na_value=np.nan)
        return out
    return None


def _object_column(col: Any) -> list[Any]:
    if isinstance(col, np.ndarray):
        return list(col.tolist())
    if hasattr(col, "tolist"):
        return list(col.tolist())
    return list(col)
