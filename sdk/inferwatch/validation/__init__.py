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

Modules: `.schema` (`Feature`, `Relation`, `Schema`: the declarations and their checks at build
time), `.violations` (`Violations`, `SchemaViolationError`: what a check found, as span
attributes and counter points), `.checking` (a schema compiled for checking, the rules applied to
a batch) and `.inputs` (an input read as a float matrix plus object columns).
"""

from inferwatch.validation.checking import BoolArray as BoolArray
from inferwatch.validation.inputs import FloatArray as FloatArray
from inferwatch.validation.inputs import Odd as Odd
from inferwatch.validation.schema import RULES as RULES
from inferwatch.validation.schema import Dtype as Dtype
from inferwatch.validation.schema import Feature, Relation, Schema
from inferwatch.validation.schema import Op as Op
from inferwatch.validation.violations import SchemaViolationError, Violations

__all__ = ["Feature", "Relation", "Schema", "SchemaViolationError", "Violations"]
