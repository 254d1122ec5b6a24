"""Window labels and roll-up levels: the sizes of the levels, and the merging of their windows.

A level merges a fixed number of consecutive windows of the level below (twelve 5m windows
make an hour); what is merged is the feature's own summary of a window (a drift `Profile`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Generic, Literal, Protocol, TypeVar

from inferwatch.durations import FORMS, parse_duration

_AUTO_ROLLUPS = (3600.0, 86400.0)


class Mergeable(Protocol):
    def merge(self: M, other: M) -> M: ...


M = TypeVar("M", bound=Mergeable)


def window_label(seconds: float) -> str:
    """A short label for a window length: 300 -> "5m", 3600 -> "1h", 30 -> "30s", 0.1 -> "100ms"."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds // size)}{unit}"
    if seconds >= 1:
        return f"{seconds:g}s"
    return f"{seconds * 1000:g}ms"


def rollup_levels(
    window_s: float, rollups: Sequence[str | float] | Literal["auto"] | None
) -> list[tuple[float, int]]:
    """(seconds, windows of the level below it) of each roll-up level.

    >>> rollup_levels(300, "auto")
    [(3600.0, 12), (86400.0, 24)]

    ``"auto"`` keeps those of 1h and 1d that are whole multiples of the level below; explicit
    sizes (seconds or durations like "1h") must be, or a ValueError says why.
    """
    if rollups is None:
        return []
    auto = isinstance(rollups, str)
    if auto and rollups != "auto":
        raise ValueError(f"rollups must be 'auto', None or a list of durations, not {rollups!r}")
    sizes = _AUTO_ROLLUPS if auto else [_seconds(size) for size in rollups]
    levels: list[tuple[float, int]] = []
    below = window_s
    for size in sizes:
        ratio = size / below
        factor = round(ratio)
        if factor < 2 or abs(ratio - factor) > 1e-9 * ratio:
            if auto:
                continue
            raise ValueError(
                f"roll-up {window_label(size)} is not a whole multiple (2 or more) of the "
                f"{window_label(below)} window below it"
            )
        levels.append((size, factor))
        below = size
    return levels


def _seconds(size: str | float) -> float:
    seconds = parse_duration(size) if isinstance(size, str) else float(size)
    if seconds is None or not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"roll-up {size!r} is not a positive duration like {FORMS}")
    return seconds


class RollupLevel(Generic[M]):
    """A roll-up level: merges ``factor`` consecutive windows of the level below into one."""

    __slots__ = ("factor", "label", "pending", "ring", "seen")

    def __init__(self, seconds: float, factor: int, keep: int) -> None:
        self.label = window_label(seconds)
        self.factor = factor
        self.ring: deque[M] = deque(maxlen=keep)
        self.pending: M | None = None
        self.seen = 0

    def push(self, profile: M | None) -> tuple[bool, M | None]:
        """Count one window of the level below: (this level completed, its profile or None)."""
        self.seen += 1
        if profile is not None:
            self.pending = profile if self.pending is None else self.pending.merge(profile)
        if self.seen < self.factor:
            return False, None
        done, self.pending, self.seen = self.pending, None, 0
        return True, done
