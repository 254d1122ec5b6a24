"""The schema declarations: `Feature` and `Relation` rules in a `Schema`, validated when built."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from inferwatch.validation.checking import Plan
from inferwatch.validation.violations import Violations

if TYPE_CHECKING:
    from inferwatch.drift.profile import Profile

Dtype = Literal["number", "integer", "string", "bool"]
Op = Literal["<", "<=", "==", "!=", ">=", ">"]
RULES = ("missing", "dtype", "min", "max", "allowed", "pattern", "relation")
_RELATION_TEXT = re.compile(r"\s*(.+?)\s*(<=|>=|==|!=|<|>)\s*(.+?)\s*")


class Feature(BaseModel):
    """Rules for one input feature; every rule left at its default is not checked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    dtype: Dtype | None = None
    min: float | None = None
    max: float | None = None
    allowed: frozenset[str] | None = None
    """Allowed values, compared as strings (numbers numerically, see the package docstring)."""
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
    _plan: Plan | None = PrivateAttr(default=None)

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
                plan = self._plan = Plan(self)
            return plan.check(x, features)
        except Exception:
            return Violations(unsupported=1)
