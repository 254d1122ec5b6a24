"""How drift windows read what they buffer: row counts, dict rows, target batches, class names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inferwatch.drift.profile import Profile, target_array

EMPTY_OBJ = np.empty((0, 0), dtype=object)


def is_dataframe(x: Any) -> bool:
    return type(x).__module__.startswith("pandas") and hasattr(x, "iloc")


def is_scalar(v: Any) -> bool:
    if v is None or isinstance(v, float | int | str | bytes):
        return True
    try:
        return bool(np.ndim(v) == 0)
    except (ValueError, TypeError, RuntimeError):  # ragged nesting, a broken array-like
        return False


def is_dict_row(x: Any, n: int) -> bool:
    return n == 1 and isinstance(x, Mapping) and is_scalar(next(iter(x.values())))


def take(rows: list[Any], names: list[str]) -> np.ndarray:
    """The `names` values of dict rows as an object array (len(rows), len(names))."""
    out = np.empty((len(rows), len(names)), dtype=object)
    if names:
        out[:] = [[row[f] for f in names] for row in rows]
    return out


def target_rows(y: Any) -> int:
    """Predictions or labels in `y` (O(1)); -1 when it cannot hold any."""
    shape = getattr(y, "shape", None)
    if isinstance(shape, tuple):  # arrays, numpy scalars, Series, DataFrames, tensors
        return int(shape[0]) if shape else 1
    if isinstance(y, float | int | str):
        return 1
    if isinstance(y, list | tuple):
        return len(y)
    return -1


def batches(items: list[tuple[Any, int]]) -> list[tuple[Any, int]]:
    """The buffered predictions (or labels) as few arrays: one of the scalars, and one per
    shape and dtype kind of the arrays, each with its row count. Unreadable items come back
    as they are, for the caller to fail on and count."""
    scalars: list[Any] = []
    groups: dict[tuple[int, int, str], list[np.ndarray]] = {}
    out: list[tuple[Any, int]] = []
    for y, n in items:
        if isinstance(y, float | int | str | np.generic):
            scalars.append(y.item() if isinstance(y, np.generic) else y)
            continue
        try:
            arr = target_array(y)[:n]
        except Exception:
            out.append((y, n))
            continue
        key = (arr.ndim, arr.shape[1] if arr.ndim == 2 else 0, arr.dtype.kind)
        groups.setdefault(key, []).append(arr)
    if scalars:
        kinds = set(map(type, scalars))
        same = len(kinds) == 1 and kinds <= {float, int, bool, str}
        array = np.asarray(scalars) if same else np.array(scalars, dtype=object)
        out.append((array, len(scalars)))
    for arrays in groups.values():
        joined = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        out.append((joined, len(joined)))
    return out


def checked_class_names(
    baseline: Profile, given: Sequence[str] | None, targets: Mapping[str, str]
) -> list[str] | None:
    """The class names live predictions are named with: the model's, or the baseline's."""
    names = None if given is None else [str(c) for c in given]
    known = baseline.class_names
    if names and known and names != known:
        raise ValueError(f"class_names {names} differ from the baseline's {known}")
    if names and not known:  # class indices in the baseline would never match the names
        for target, kind in targets.items():
            seen = set(baseline.columns[target].counts()) if kind == "categorical" else set()
            if seen and all(c.isdigit() for c in seen) and not seen & set(names):
                raise ValueError(
                    f"the baseline's {target} are class indices {sorted(seen)}, but live ones "
                    f"are named {names}: build it with Profile.build(..., class_names=...)"
                )
    return names or known
