"""What is declared once per ranking model, checked at configuration time; item ids."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from inferwatch.durations import FORMS, parse_duration

MAX_POSITIONS_LIMIT = 100


@dataclass(frozen=True)
class RankingSettings:
    """What is declared once per model; `RankingSettings.build` checks every value."""

    window_s: float = 300.0
    catalogue_size: int | None = None
    head: frozenset[str] | None = None
    """Items of the popularity baseline's head (None without a baseline)."""
    head_share: float = 0.2
    min_coverage: float | None = None
    max_positions: int = 20

    @classmethod
    def build(
        cls,
        *,
        window: str | float = "5m",
        catalogue_size: int | None = None,
        popularity: Mapping[Any, float] | None = None,
        head_share: float = 0.2,
        min_coverage: float | None = None,
        max_positions: int = 20,
    ) -> RankingSettings:
        seconds = parse_duration(window) if isinstance(window, str) else as_number(window)
        if seconds is None or not (seconds > 0 and math.isfinite(seconds)):
            raise ValueError(f"window {window!r} is not a positive duration like {FORMS}")
        if catalogue_size is not None and (as_int(catalogue_size) is None or catalogue_size < 1):
            raise ValueError(f"catalogue_size must be a positive int, got {catalogue_size!r}")
        share = as_number(head_share)
        if share is None or not 0 < share < 1:
            raise ValueError(f"head_share must be a fraction in (0, 1), got {head_share!r}")
        if min_coverage is not None:
            floor = as_number(min_coverage)
            if floor is None or not 0 < floor <= 1:
                raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage!r}")
            if catalogue_size is None:
                raise ValueError("min_coverage needs catalogue_size: coverage is a share of it")
        positions = as_int(max_positions)
        if positions is None or not 1 <= positions <= MAX_POSITIONS_LIMIT:
            raise ValueError(
                f"max_positions must be an int in [1, {MAX_POSITIONS_LIMIT}], got {max_positions!r}"
            )
        head = None if popularity is None else _head(popularity, share, catalogue_size)
        size = None if catalogue_size is None else int(catalogue_size)
        return cls(float(seconds), size, head, share, min_coverage, positions)


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    return float(value)


def as_int(value: Any) -> int | None:
    return (
        int(value) if isinstance(value, int | np.integer) and not isinstance(value, bool) else None
    )


def _head(
    popularity: Mapping[Any, float], share: float, catalogue_size: int | None
) -> frozenset[str]:
    """The most popular items that together make up `share` of the baseline's interactions."""
    if not hasattr(popularity, "items") or isinstance(popularity, str | bytes):
        raise TypeError(
            f"popularity must map item -> interaction count, got {type(popularity).__name__}"
        )
    keys: list[str] = []
    counts: list[float] = []
    for item, count in popularity.items():
        keys.append(item_key(item))
        value = as_number(count)
        if value is None or not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"popularity of {item!r} must be a finite count >= 0, got {count!r}")
        counts.append(value)
    if len(set(keys)) != len(keys):
        raise ValueError("popularity names an item twice (items are compared as str(item))")
    total = math.fsum(counts)
    if not total > 0:
        raise ValueError("popularity needs at least one item with a positive count")
    if catalogue_size is not None and len(keys) > catalogue_size:
        raise ValueError(f"popularity has {len(keys)} items, more than catalogue_size")
    values = np.asarray(counts)
    order = np.lexsort((np.asarray(keys), -values))  # most popular first, ties by name
    needed = int(np.searchsorted(np.cumsum(values[order]), share * total)) + 1
    return frozenset(keys[i] for i in order[:needed])


def item_key(item: Any) -> str:
    kind = type(item)
    if kind is str:
        return item  # type: ignore[no-any-return]
    if kind is int or (isinstance(item, int | np.integer) and kind is not bool):
        return str(int(item))
    if isinstance(item, np.str_):
        return str(item)
    raise TypeError(f"item ids must be str or int, got {kind.__name__}: {item!r:.40}")
