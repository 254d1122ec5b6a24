"""The one adapter from numpy, pandas and torch values to numpy arrays, and histogram sampling.

Summaries, not payloads: nothing here keeps or copies the user's data beyond what a vectorised
count needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

MAX_POINTS = 16
"""Per call, at most this many per-item values go into a histogram (an even stride sample)."""


def sample(values: Sequence[Any] | np.ndarray) -> list[Any]:
    """At most `MAX_POINTS` values, an even stride through them."""
    step = max(1, -(-len(values) // MAX_POINTS))
    if isinstance(values, np.ndarray):
        return values[::step].tolist()  # type: ignore[no-any-return]
    return list(values[::step])


def as_numpy(values: Any) -> np.ndarray:
    """A torch tensor (detached, copied to the CPU) or a pandas object as its numpy array;
    anything else through ``np.asarray``. Predictions and labels are small (one value or row
    per item), so the copy is fine. Raises what the conversion raises."""
    module = type(values).__module__
    if module.startswith("torch") and hasattr(values, "detach"):
        return np.asarray(values.detach().cpu().numpy())
    if module.startswith("pandas") and hasattr(values, "to_numpy"):
        return np.asarray(values.to_numpy())
    return np.asarray(values)


def try_as_numpy(y: Any) -> np.ndarray | None:
    try:
        return as_numpy(y)
    except Exception:
        return None
