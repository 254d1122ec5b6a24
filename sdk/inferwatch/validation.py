"""Feature validation: a declared (or profile-inferred) input schema checked per request.

A :class:`Schema` is a tuple of :class:`Feature` rules (dtype, range, allowed values, regex,
nullability) plus pairwise :class:`Relation` s such as ``min_price <= max_price``. Mistakes in the
schema raise a pydantic ``ValidationError`` when it is built (configuration time);
:meth:`Schema.check` never raises: it returns :class:`Violations`, counted by feature and rule.

Rules: ``missing`` (null / NaN where ``nullable=False``), ``dtype``, ``min``, ``max``,
``allowed``, ``pattern`` and ``relation`` (whose feature label is e.g. ``"min_price<=max_price"``).

Value semantics, the same on every input form:

* null is ``None``, NaN, ``pandas.NA`` / ``NaT``, or a feature absent from the input; nulls only
  ever break ``missing``.
* ``dtype``: ``"number"`` is any real number but a bool, ``"integer"`` a finite number with an
  integral value (``3.0`` passes: a float matrix cannot hold ints), ``"string"`` a ``str`` and
  ``"bool"`` a bool or the numbers 0 / 1 (a float matrix cannot hold bools either).
* ``min`` / ``max`` apply to numbers only (strings are a ``dtype`` matter).
* ``allowed`` compares numbers numerically with the allowed strings that parse as numbers
  (``"1"`` allows ``1`` and ``1.0``), and everything else as ``str(value)``.
* ``pattern`` must match the whole of ``str(value)``, integral numbers written without ``.0``.
* a relation is checked on rows where both sides are numbers; other rows are skipped.

Numeric 2-D arrays, DataFrames, dicts of columns and lists of dict rows are checked a rule at a
time over the whole batch with numpy: Python values are read into a float matrix in one pass
(None as NaN), and only the values that are not numbers (a string or a bool among numbers) are
checked one by one. Columns that hold mostly non-numbers (strings) and single rows are checked
value by value. Every path gives the counts of :meth:`_Spec.rules` applied to each value.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import numbers
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from inferwatch import semconv

if TYPE_CHECKING:
    from inferwatch.drift.profile import Profile

__all__ = ["Feature", "Relation", "Schema", "SchemaViolationError", "Violations"]

Dtype = Literal["number", "integer", "string", "bool"]
Op = Literal["<", "<=", "==", "!=", ">=", ">"]
RULES = ("missing", "dtype", "min", "max", "allowed", "pattern", "relation")

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    ">": operator.gt,
}
_RELATION_TEXT = re.compile(r"\s*(.+?)\s*(<=|>=|==|!=|<|>)\s*(.+?)\s*")


class Feature(BaseModel):
    """Rules for one input feature; every rule left at its default is not checked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    dtype: Dtype | None = None
    min: float | None = None
    max: float | None = None
    allowed: frozenset[str] | None = None
    """Allowed values, compared as strings (numbers numerically, see the module docstring)."""
    pattern: str | None = None
    """A regular expression the whole value must match."""
    nullable: bool = True

    @field_validator("allowed", mode="before")
    @classmethod
    def _allowed_as_strings(cls, value: Any) -> Any:
        if value is None or isinstance(value, str | bytes | Mapping):
            return value  # a bare string is not a set of values: let pydantic reject it
        try:
            return frozenset(str(v) for v in value)
        except TypeError:
            return value

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value

    @field_validator("min", "max")
    @classmethod
    def _bound_not_nan(cls, value: float | None) -> float | None:
        if value is not None and math.isnan(value):
            raise ValueError("a bound cannot be NaN")
        return value

    @model_validator(mode="after")
    def _min_le_max(self) -> Feature:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name!r}: min {self.min} > max {self.max}")
        return self


class Relation(BaseModel):
    """``left <op> right`` between two numeric features; also written ``"left <= right"``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    left: str
    op: Op
    right: str

    @model_validator(mode="before")
    @classmethod
    def _parse_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _RELATION_TEXT.fullmatch(value)
            if match is None:
                raise ValueError(f"cannot read relation {value!r}; write e.g. 'low <= high'")
            return {"left": match[1], "op": match[2], "right": match[3]}
        return value

    @property
    def label(self) -> str:
        """The feature label of its violations, e.g. ``"min_price<=max_price"``."""
        return f"{self.left}{self.op}{self.right}"


class Schema(BaseModel):
    """Features and relations to check inputs against; see :meth:`check`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    features: tuple[Feature, ...]
    relations: tuple[Relation, ...] = ()
    _plan: _Plan | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> Schema:
        names = [f.name for f in self.features]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise ValueError(f"duplicate feature names: {dups}")
        known = set(names)
        for rel in self.relations:
            unknown = [n for n in (rel.left, rel.right) if n not in known]
            if unknown:
                raise ValueError(f"relation {rel.label!r} names unknown features: {unknown}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @classmethod
    def from_profile(cls, profile: Profile, *, slack: float = 0.0) -> Schema:
        """A schema the profiled data passes, to edit with :meth:`with_feature`.

        Numeric columns get ``min``/``max`` (widened by ``slack`` × range; none when the profile
        saw infinities) and dtype ``"integer"`` or ``"number"``; categorical columns whose counts
        are exact get ``allowed`` = the values seen (bool columns dtype ``"bool"``). A column is
        nullable if the profile saw nulls in it.
        """
        if slack < 0 or math.isnan(slack):
            raise ValueError(f"slack must be >= 0, got {slack}")
        features = []
        for col in profile.columns.values():
            spec: dict[str, Any] = {"name": col.name, "nullable": col.null_count > 0}
            dtype = col.dtype.lower()
            if col.kind == "numeric":
                spec["dtype"] = "integer" if dtype.startswith(("int", "uint")) else "number"
                if col.n and not col.inf_count and col.min is not None and col.max is not None:
                    pad = slack * (col.max - col.min)
                    spec["min"], spec["max"] = col.min - pad, col.max + pad
            else:
                if dtype in ("bool", "boolean"):
                    spec["dtype"] = "bool"
                if col.is_exact:
                    spec["allowed"] = frozenset(col.counts())
            features.append(Feature(**spec))
        return cls(features=tuple(features))

    def with_feature(self, name: str, **changes: Any) -> Schema:
        """A new schema with feature ``name`` edited (validated), or added if it is new."""
        found = False
        features = []
        for f in self.features:
            if f.name == name:
                found = True
                f = Feature.model_validate({**f.model_dump(), **changes})
            features.append(f)
        if not found:
            features.append(Feature.model_validate({"name": name, **changes}))
        return Schema(features=tuple(features), relations=self.relations)

    def check(self, x: Any, features: Sequence[str] | None = None) -> Violations:
        """Violations in ``x``: a 2-D array (columns named by ``features``), a DataFrame, a dict
        row, a dict of columns or a list of dict rows. Never raises: other inputs give
        ``Violations(unsupported=1)``."""
        try:
            plan = self._plan
            if plan is None:
                plan = self._plan = _Plan(self)
            return plan.check(x, features)
        except Exception:
            return Violations(unsupported=1)


class SchemaViolationError(ValueError):
    """Raised by :meth:`Violations.raise_if_any` (strict mode)."""

    def __init__(self, violations: Violations) -> None:
        self.violations = violations
        detail = ", ".join(f"{f}/{r}={n}" for (f, r), n in sorted(violations.counts.items()))
        if violations.unsupported:
            detail = ", ".join(filter(None, [detail, f"unsupported={violations.unsupported}"]))
        super().__init__(f"input violates the schema: {detail}")


class Violations:
    """Result of :meth:`Schema.check`.

    ``counts[(feature, rule)]`` values broke a rule; ``rows`` rows have at least one violation;
    ``total`` is the sum of the counts; ``n`` rows were checked; ``unsupported`` counts inputs
    (or rows of a list) that could not be read.
    """

    __slots__ = ("counts", "n", "rows", "total", "unsupported")

    def __init__(
        self,
        counts: Mapping[tuple[str, str], int] | None = None,
        rows: int = 0,
        n: int = 0,
        unsupported: int = 0,
    ) -> None:
        self.counts: dict[tuple[str, str], int] = dict(counts or {})
        self.rows = rows
        self.n = n
        self.unsupported = unsupported
        self.total = sum(self.counts.values())

    def attributes(self) -> dict[str, int]:
        """Span attributes: ``{"ml.input.violations": total}``, empty when there are none."""
        return {semconv.ML_INPUT_VIOLATIONS: self.total} if self.total else {}

    def metric_points(self) -> list[tuple[int, dict[str, str]]]:
        """``(count, {"ml.feature": ..., "ml.validation.rule": ...})`` for the counter."""
        return [
            (n, {semconv.ML_FEATURE: f, semconv.ML_VALIDATION_RULE: r})
            for (f, r), n in self.counts.items()
        ]

    def raise_if_any(self) -> None:
        """Strict mode: raise :class:`SchemaViolationError` on violations or unreadable input."""
        if self.total or self.unsupported:
            raise SchemaViolationError(self)

    def __repr__(self) -> str:
        return (
            f"Violations(total={self.total}, rows={self.rows}, n={self.n}, "
            f"unsupported={self.unsupported}, counts={self.counts})"
        )


# ---- checking -----------------------------------------------------------------------------------

_NULL, _NUM, _BOOL, _STR, _OTHER = range(5)
_SMALL_BATCH = 8  # up to this many rows, checking value by value is faster than numpy
_NULL_TYPES = frozenset({"NAType", "NaTType"})
FloatArray = npt.NDArray[np.float64]
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


class _Plan:
    """A schema compiled for checking: per-feature specs and bound vectors."""

    def __init__(self, schema: Schema) -> None:
        self.specs = {f.name: _Spec.of(f) for f in schema.features}
        self.relations = [(r.label, r.left, _OPS[r.op], r.right) for r in schema.relations]

    # -- entry point -----------------------------------------------------------------------------
    def check(self, x: Any, features: Sequence[str] | None) -> Violations:
        data = _read(x, features, self.specs)
        if data is None:
            return Violations(unsupported=1)
        acc = _Acc(data.n)
        if data.n == 0:
            return acc.result(data.unsupported)
        if data.matrix is not None and data.n <= _SMALL_BATCH:  # numpy overhead would dominate
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


# ---- reading inputs -----------------------------------------------------------------------------


def _read(x: Any, features: Sequence[str] | None, wanted: Iterable[str]) -> _Input | None:
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
    if n <= _SMALL_BATCH or not names:
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
