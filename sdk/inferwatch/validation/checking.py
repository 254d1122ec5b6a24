"""A schema compiled for checking: each feature's rules applied to a batch, a rule at a time.

Numeric 2-D arrays, DataFrames, dicts of columns and lists of dict rows are checked a rule at a
time over the whole batch with numpy: Python values are read into a float matrix in one pass
(None as NaN), and only the values that are not numbers (a string or a bool among numbers) are
checked one by one. Columns that hold mostly non-numbers (strings) and single rows are checked
value by value. Every path gives the counts of :meth:`_Spec.rules` applied to each value.
"""

from __future__ import annotations

import math
import numbers
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from inferwatch.validation.inputs import SMALL_BATCH, FloatArray, read_input
from inferwatch.validation.violations import Violations

if TYPE_CHECKING:
    from inferwatch.validation.schema import Feature, Schema

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    ">": operator.gt,
}

_NULL, _NUM, _BOOL, _STR, _OTHER = range(5)
_NULL_TYPES = frozenset({"NAType", "NaTType"})
BoolArray = npt.NDArray[np.bool_]


def _classify(v: Any) -> tuple[int, float]:
    """(kind, numeric value) of one value; the number is only meaningful for ``_NUM``."""
    t = type(v)
    if t is float:
        return (_NULL, 0.0) if v != v else (_NUM, v)
    if t is str:
        return _STR, 0.0
    if t is int:
        return _NUM, float(v)
    if v is None:
        return _NULL, 0.0
    if t is bool or isinstance(v, np.bool_):
        return _BOOL, float(v)
    if isinstance(v, numbers.Real):
        x = float(v)
        return (_NULL, 0.0) if x != x else (_NUM, x)
    if isinstance(v, str):
        return _STR, 0.0
    if t.__name__ in _NULL_TYPES:
        return _NULL, 0.0
    return _OTHER, 0.0


def _num_str(x: float) -> str:
    return str(int(x)) if x.is_integer() else str(x)


def _text(kind: int, v: Any, x: float) -> str:
    if kind == _STR:
        return str(v)
    if kind == _NUM:
        return _num_str(x)
    if kind == _BOOL:
        return str(bool(v))
    return str(v)


@dataclass
class _Spec:
    """One feature, compiled for checking."""

    name: str
    dtype: str | None
    lo: float
    hi: float
    required: bool
    allowed: frozenset[str] | None
    allowed_num: frozenset[float]
    regex: re.Pattern[str] | None
    allowed_array: FloatArray

    @classmethod
    def of(cls, f: Feature) -> _Spec:
        nums = set()
        for s in f.allowed or ():
            try:
                x = float(s)
            except ValueError:
                continue
            if x == x:
                nums.add(x)
        return cls(
            f.name,
            f.dtype,
            -math.inf if f.min is None else f.min,
            math.inf if f.max is None else f.max,
            not f.nullable,
            f.allowed,
            frozenset(nums),
            re.compile(f.pattern) if f.pattern is not None else None,
            np.array(sorted(nums), dtype=np.float64),
        )

    def rules(self, v: Any) -> list[str]:
        """The rules one value breaks (the reference semantics of every path)."""
        kind, x = _classify(v)
        if kind == _NULL:
            return ["missing"] if self.required else []
        out = []
        dtype = self.dtype
        if dtype is not None:
            if dtype == "number":
                ok = kind == _NUM
            elif dtype == "integer":
                ok = kind == _NUM and math.isfinite(x) and x.is_integer()
            elif dtype == "string":
                ok = kind == _STR
            else:
                ok = kind == _BOOL or (kind == _NUM and x in (0.0, 1.0))
            if not ok:
                out.append("dtype")
        if kind == _NUM:
            if x < self.lo:
                out.append("min")
            if x > self.hi:
                out.append("max")
        if self.allowed is not None:
            ok = x in self.allowed_num if kind == _NUM else _text(kind, v, x) in self.allowed
            if not ok:
                out.append("allowed")
        if self.regex is not None and self.regex.fullmatch(_text(kind, v, x)) is None:
            out.append("pattern")
        return out


class _Acc:
    """Accumulates counts and the rows with a violation."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.bad: BoolArray = np.zeros(n, dtype=np.bool_)
        self.counts: dict[tuple[str, str], int] = {}

    def add(self, feature: str, rule: str, count: int) -> None:
        if count:
            key = (feature, rule)
            self.counts[key] = self.counts.get(key, 0) + count

    def add_mask(self, names: Sequence[str], rule: str, mask: BoolArray) -> None:
        """``mask``: rows × len(names) booleans, True where a value breaks ``rule``."""
        per_column = np.count_nonzero(mask, axis=0).tolist()
        if any(per_column):
            for name, count in zip(names, per_column, strict=True):
                self.add(name, rule, count)
            self.bad |= mask.any(axis=1)

    def result(self, unsupported: int = 0) -> Violations:
        rows = int(np.count_nonzero(self.bad))
        return Violations(self.counts, rows, self.n, unsupported)


class Plan:
    """A schema compiled for checking: per-feature specs and bound vectors."""

    def __init__(self, schema: Schema) -> None:
        self.specs = {f.name: _Spec.of(f) for f in schema.features}
        self.relations = [(r.label, r.left, _OPS[r.op], r.right) for r in schema.relations]

    # -- entry point -----------------------------------------------------------------------------
    def check(self, x: Any, features: Sequence[str] | None) -> Violations:
        data = read_input(x, features, self.specs)
        if data is None:
            return Violations(unsupported=1)
        acc = _Acc(data.n)
        if data.n == 0:
            return acc.result(data.unsupported)
        if data.matrix is not None and data.n <= SMALL_BATCH:  # numpy overhead would dominate
            columns = dict(zip(data.matrix_names, data.matrix.T.tolist(), strict=True))
            for name, items in (data.odd or {}).items():
                for i, v in items:
                    columns[name][i] = v
            data.objects = {**columns, **(data.objects or {})}
            data.matrix, data.odd = None, None
        present: set[str] = set()
        numeric: dict[str, FloatArray] = {}
        if data.matrix is not None:
            index = {name: j for j, name in enumerate(data.matrix_names)}
            cols = [(index[name], spec) for name, spec in self.specs.items() if name in index]
            present.update(spec.name for _, spec in cols)
            if cols:
                sub = data.matrix[:, [j for j, _ in cols]]
                odd = data.odd or {}
                odd_mask: BoolArray | None = None
                if any(spec.name in odd for _, spec in cols):
                    odd_mask = np.zeros(sub.shape, dtype=np.bool_)
                    for k, (_, spec) in enumerate(cols):
                        odd_mask[[i for i, _ in odd.get(spec.name, ())], k] = True
                self._check_matrix(sub, [spec for _, spec in cols], acc, odd_mask)
                for _, spec in cols:
                    self._check_values(spec, odd.get(spec.name, ()), acc)
                numeric = {spec.name: sub[:, k] for k, (_, spec) in enumerate(cols)}
        objects = data.objects or {}
        for name, spec in self.specs.items():
            if name in present or name not in objects:
                continue
            present.add(name)
            self._check_values(spec, enumerate(objects[name]), acc)
        for name, spec in self.specs.items():
            if name not in present and spec.required:  # absent from the input: null everywhere
                acc.add(name, "missing", data.n)
                acc.bad[:] = True
        for label, left, op, right in self.relations:
            lhs = _numbers(left, numeric, objects)
            rhs = _numbers(right, numeric, objects)
            if lhs is not None and rhs is not None:
                with np.errstate(invalid="ignore"):
                    broken = ~op(lhs, rhs) & ~np.isnan(lhs) & ~np.isnan(rhs)
                acc.add_mask([label], "relation", broken.reshape(-1, 1))
        return acc.result(data.unsupported)

    # -- vectorised: a float matrix whose columns are `specs` ------------------------------------
    @staticmethod
    def _check_matrix(
        x: FloatArray, specs: list[_Spec], acc: _Acc, odd: BoolArray | None = None
    ) -> None:
        """``odd``: True where a NaN stands for a value that is not a number (not a null); such
        values are checked by :meth:`_check_values`, and NaN breaks no rule here but ``missing``.
        """
        names = [s.name for s in specs]

        def select(keep: Callable[[_Spec], bool]) -> list[int]:
            return [k for k, s in enumerate(specs) if keep(s)]

        has_nan = bool(np.isnan(np.max(x)))
        nan: BoolArray | None = np.isnan(x) if has_nan else None

        def notnull(cols: list[int]) -> BoolArray | None:
            return None if nan is None else ~nan[:, cols]

        def put(cols: list[int], rule: str, mask: BoolArray) -> None:
            acc.add_mask([names[k] for k in cols], rule, mask)

        if nan is not None and (cols := select(lambda s: s.required)):
            put(cols, "missing", nan[:, cols] if odd is None else nan[:, cols] & ~odd[:, cols])
        if cols := select(lambda s: s.dtype == "integer"):
            sub = x[:, cols]
            mask = ~(np.isfinite(sub) & (sub == np.floor(sub)))
            put(cols, "dtype", mask if (nn := notnull(cols)) is None else mask & nn)
        if cols := select(lambda s: s.dtype == "bool"):
            sub = x[:, cols]
            mask = (sub != 0) & (sub != 1)
            put(cols, "dtype", mask if (nn := notnull(cols)) is None else mask & nn)
        if cols := select(lambda s: s.dtype == "string"):
            nn = notnull(cols)
            put(cols, "dtype", np.ones((len(x), len(cols)), np.bool_) if nn is None else nn)
        if cols := select(lambda s: s.lo > -math.inf):
            lo = np.array([specs[k].lo for k in cols])
            put(cols, "min", x[:, cols] < lo)  # NaN compares False
        if cols := select(lambda s: s.hi < math.inf):
            hi = np.array([specs[k].hi for k in cols])
            put(cols, "max", x[:, cols] > hi)
        for k, spec in enumerate(specs):
            col = x[:, k]
            if spec.allowed is not None:
                mask = ~np.isin(col, spec.allowed_array)
                if nan is not None:
                    mask &= ~nan[:, k]
                put([k], "allowed", mask.reshape(-1, 1))
            if spec.regex is not None:
                match = spec.regex.fullmatch
                values = col.tolist()
                mask = np.fromiter(
                    (v == v and match(_num_str(v)) is None for v in values), np.bool_, len(col)
                )
                put([k], "pattern", mask.reshape(-1, 1))

    # -- value by value: (row, value) pairs of Python objects --------------------------------------
    @staticmethod
    def _check_values(spec: _Spec, values: Iterable[tuple[int, Any]], acc: _Acc) -> None:
        rules = spec.rules
        bad = acc.bad
        for i, v in values:
            broken = rules(v)
            if broken:
                bad[i] = True
                for rule in broken:
                    acc.add(spec.name, rule, 1)


def _numbers(
    name: str, numeric: Mapping[str, FloatArray], objects: Mapping[str, Sequence[Any]]
) -> FloatArray | None:
    """A feature's values as floats, NaN where not a number (None if absent)."""
    if name in numeric:
        return numeric[name]
    if name in objects:
        out = []
        for v in objects[name]:
            kind, x = _classify(v)
            out.append(x if kind == _NUM else math.nan)
        return np.array(out, dtype=np.float64)
    return None
