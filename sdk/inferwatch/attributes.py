"""Turning user values into valid OTel attribute values without ever raising."""

from __future__ import annotations

import builtins
import math
import traceback
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


_GROUP: Any = getattr(builtins, "BaseExceptionGroup", ())  # Python 3.11+
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def stacktrace(exc: BaseException) -> str:
    """The ``exception.stacktrace`` text: `traceback.format_exception`'s, chains included
    (exception groups: exactly theirs), without the column markers.

    The standard formatting calls ``linecache.checkcache``, an ``os.stat`` of every source file
    in the traceback, on every call. Each stat lets go of the GIL and takes it back at once,
    before a waiting thread wakes up; a loop of failing calls then starves every other thread
    (the export and store writer threads: their queues overflowed). Source lines come from
    linecache's memory here, read from disk once per file.
    """
    if isinstance(exc, _GROUP):
        return "".join(traceback.format_exception(exc))
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    note = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, note))
        if current.__cause__ is not None:
            current, note = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, note = current.__context__, _CONTEXT
        else:
            current = None
    parts: list[str] = []
    for error, note in reversed(chain):
        frames = [
            traceback.FrameSummary(
                frame.f_code.co_filename, lineno, frame.f_code.co_name, lookup_line=False
            )
            for frame, lineno in traceback.walk_tb(error.__traceback__)
        ]
        if frames:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.StackSummary.from_list(frames).format())
        parts.extend(_exception_only(error))
        parts.append(note)
    return "".join(parts)


def _exception_only(exc: BaseException) -> list[str]:
    """`traceback.format_exception_only`'s lines, which would walk (and stat) the chain again."""
    if isinstance(exc, SyntaxError):  # its own layout: the standard library's
        return traceback.format_exception_only(type(exc), exc)
    name = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("__main__", "builtins"):
        name = f"{module if isinstance(module, str) else '<unknown>'}.{name}"
    try:
        text = str(exc)
    except Exception:
        text = "<exception str() failed>"
    lines = [f"{name}: {text}\n" if text else f"{name}\n"]
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list | tuple):
        for note in notes:
            lines += [f"{line}\n" for line in str(note).split("\n")]
    elif notes is not None:
        lines.append(f"{notes!r}\n")
    return lines
