"""Durations written the way people write them: 90s, 10m, 1h, 2d, 1w (and 250ms)."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
FORMS = "90s, 10m, 1h, 2d, 1w"


def parse_duration(text: str) -> float | None:
    """Seconds in ``text`` (``"5m"`` → 300.0), or None if it is not a duration."""
    match = _DURATION.match(text)
    return float(match[1]) * _UNITS[match[2]] if match else None


def positive_seconds(value: str | float, name: str) -> float:
    """A configured duration (``"1h"``, or seconds) as positive finite seconds, or a clear
    `TypeError`/`ValueError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"{name} must be a duration like {FORMS} or seconds, got {value!r}")
    seconds = parse_duration(value) if isinstance(value, str) else float(value)
    if seconds is None or not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{name} {value!r} is not a positive duration like {FORMS}")
    return seconds
