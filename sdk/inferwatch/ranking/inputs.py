"""Checks of a ranked list's items, positions and click flags (all O(k))."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inferwatch.ranking.settings import as_int, item_key


def as_sequence(values: Any, what: str) -> list[Any]:
    """A list, tuple, 1-D array or Series as a list (a list is returned as is, not copied)."""
    if type(values) is list:
        return values
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"{what} must be one-dimensional, got shape {values.shape}")
        return values.tolist()  # type: ignore[no-any-return]
    if values is None or isinstance(values, str | bytes | Mapping | set | frozenset):
        raise TypeError(f"{what} must be a sequence, got {type(values).__name__}")
    if isinstance(values, tuple | Sequence):
        return list(values)
    if hasattr(values, "tolist"):  # pandas Series and Index
        listed = values.tolist()
        if isinstance(listed, list):
            return listed
    raise TypeError(f"{what} must be a list, tuple or 1-D array, got {type(values).__name__}")


def item_keys(items: Any) -> list[str]:
    """The items' keys, ``str(item)``, in order; raises on ids that are not str or int."""
    values = as_sequence(items, "items")
    kinds = set(map(type, values))
    if kinds <= _STR:
        return values
    if kinds <= _STR_OR_INT:
        return list(map(str, values))
    return [item_key(x) for x in values]


_STR: set[type] = {str}
_STR_OR_INT: set[type] = {str, int}
_INT: set[type] = {int}
_BOOL: set[type] = {bool}


def check_positions(positions: Any, k: int | None) -> list[int]:
    """1-based positions as ints (``k`` of them, unless None); raises on anything else."""
    ranks = as_sequence(positions, "positions")
    if k is not None and len(ranks) != k:
        raise ValueError(f"{len(ranks)} positions for {k} items")
    if ranks and not (set(map(type, ranks)) <= _INT and min(ranks) >= 1):
        for rank in ranks:
            if as_int(rank) is None or rank < 1:
                raise ValueError(f"positions must be ints >= 1 (1 is the top), got {rank!r}")
        ranks = [int(rank) for rank in ranks]  # numpy integers
    return ranks


def clicked_indices(clicks: Any, k: int) -> list[int]:
    """Indices of the clicked items."""
    flags = as_sequence(clicks, "clicks")
    if len(flags) != k:
        raise ValueError(f"{len(flags)} click flags for {k} items")
    if not set(map(type, flags)) <= _BOOL:
        for flag in flags:
            if not isinstance(flag, bool | int | np.bool_ | np.integer) or flag not in (0, 1):
                raise ValueError(f"clicks must be booleans (or 0/1), got {flag!r}")
    return [i for i, flag in enumerate(flags) if flag]


def first_occurrences(
    keys: list[str], ranks: list[int] | None, clicked: list[int] | None
) -> tuple[list[str], list[int], list[int] | None]:
    """Each item once, at its first position; a click on any copy counts for that one."""
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        first.setdefault(key, index)
    kept = list(first.values())
    new_index = {old: new for new, old in enumerate(kept)}
    kept_ranks = [ranks[i] for i in kept] if ranks is not None else [i + 1 for i in kept]
    kept_clicks = None
    if clicked is not None:
        kept_clicks = sorted({new_index[first[keys[i]]] for i in clicked})
    return list(first), kept_ranks, kept_clicks
