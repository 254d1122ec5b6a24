"""Turning user values into valid OTel attribute values without ever raising."""

from __future__ import annotations

import math
from typing import Any, TypeAlias

AttributeValue: TypeAlias = str | bool | int | float

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def clean_value(value: Any) -> AttributeValue:
    """A value OTLP can carry: huge ints and non-finite floats become strings, others ``str()``."""
    kind = type(value)
    if kind is str or kind is bool:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
    if kind is float:
        return value if math.isfinite(value) else str(value)
    # Subclasses (np.float64 is a float, IntEnum an int) fold to their base type.
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return clean_value(int(value))
    if isinstance(value, float):
        return clean_value(float(value))
    if isinstance(value, str):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        try:
            return clean_value(value.item())
        except Exception:
            pass
    try:
        return str(value)
    except Exception:
        return f"<unprintable {kind.__name__}>"


def qualified_name(cls: type) -> str:
    """Fully qualified class name; builtins keep their bare name (``ValueError``)."""
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"
