"""Turning user values into valid OTel attribute values without ever raising."""

from __future__ import annotations

import math
from typing import Any, TypeAlias

AttributeValue: TypeAlias = str | bool | int | float

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def clean_value(value: Any) -> AttributeValue:
    """A value OTLP can carry: huge ints and non-finite floats become strings, others ``str()``;
    strings are valid UTF-8 (`valid_text`)."""
    kind = type(value)
    if kind is str:
        return value if value.isascii() else valid_text(value)
    if kind is bool:
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
        return valid_text(str(value))
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        try:
            return clean_value(value.item())
        except Exception:
            pass
    try:
        return valid_text(str(value))
    except Exception:
        return f"<unprintable {kind.__name__}>"


def valid_text(text: str) -> str:
    """``text`` as UTF-8 can carry it: lone surrogates become U+FFFD.

    They come from ``json.loads('"\\ud800"')`` or ``surrogateescape`` decoding; left in, OTLP
    exporters drop the attribute and the store's JSON line (a whole batch) becomes unreadable.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def qualified_name(cls: type) -> str:
    """Fully qualified class name; builtins keep their bare name (``ValueError``)."""
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"
