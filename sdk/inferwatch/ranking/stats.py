"""One window's sketches and counters, and what they say once the window is closed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import datasketches as ds
import numpy as np

from inferwatch.ranking.settings import RankingSettings

HLL_LG_K = 14
"""Distinct items: HLL with 2^14 buckets, relative standard error 0.8%."""
FREQ_LG_MAX_K = 12
"""Exposure counts: exact for up to 3,072 distinct items per window, heavy hitters beyond."""
SAMPLE_LG_K = 14
"""Tail of the exposure distribution: a hash sample of 16,384+ items with exact counts."""
HEAD_ERROR_MULTIPLE = 3
"""Items counted as head once their estimate exceeds this multiple of the sketch's error."""
_ABSENT = "\x00inferwatch-absent\x00"


@dataclass(frozen=True)
class RankingStats:
    """What one closed window says about the ranked lists served in it."""

    window: str
    lists: int
    """Ranked lists recorded (empty ones included)."""
    empty_lists: int
    exposures: int
    """Item impressions: the sum of the lists' lengths."""
    distinct_items: float
    """Aggregate diversity: distinct items shown (exact while ``exact``, else HLL)."""
    coverage: float | None
    """distinct_items / catalogue_size (capped at 1), when the catalogue size is known."""
    gini: float | None
    """Gini coefficient of exposure over the catalogue (or the shown items, catalogue unknown)."""
    exact: bool
    """True when every count was exact (at most 3,072 distinct items in the window)."""
    long_tail_share: float | None
    """Share of exposures outside the popularity baseline's head, when a baseline is known."""
    ctr_by_position: dict[int, float] = field(default_factory=dict)
    """Clicks / impressions per 1-based position, when the window received click feedback."""
    rejected: int = 0
    """Lists that could not be read (counted as internal errors too)."""


class OpenWindow:
    """The sketches and counters of the window being filled (guarded by the owner's lock)."""

    __slots__ = (
        "clicked",
        "empty_lists",
        "exposures",
        "frequent",
        "has_clicks",
        "hll",
        "impressions",
        "lengths",
        "lists",
        "long_tail",
        "rejected",
        "sample",
    )

    def __init__(self, max_positions: int) -> None:
        self.hll = ds.hll_sketch(HLL_LG_K)
        self.frequent = ds.frequent_strings_sketch(FREQ_LG_MAX_K)
        self.sample = ds.update_tuple_sketch(ds.AccumulatorPolicy(), SAMPLE_LG_K)
        self.lists = self.empty_lists = self.exposures = self.long_tail = self.rejected = 0
        self.has_clicks = False
        size = max_positions + 1  # index 0 unused: positions are 1-based
        self.lengths = [0] * size  # lists ranked 1..k, by min(k, max_positions)
        self.impressions = [0] * size  # explicit positions
        self.clicked = [0] * size


def exposure_gini(
    counts: Iterable[float],
    *,
    zeros: float = 0.0,
    exposures: float | None = None,
    tail_sample: Sequence[float] = (),
    tail_items: float = 0.0,
) -> float | None:
    """Gini coefficient of exposure: 0 when every item is shown equally, near 1 when a few are.

    ``counts`` are the exposures of individually known items, ``zeros`` the number of catalogue
    items never shown. Items known only through a uniform sample (``tail_sample``: their exact
    counts) stand for ``tail_items`` items whose exposures add up to ``exposures`` minus the
    known counts. Computed as one minus twice the area under the Lorenz curve of the weighted
    distribution, which for plain counts equals ``sum((2i - n - 1) x_i) / (n sum(x))``.

    >>> exposure_gini([5, 5]), exposure_gini([10], zeros=1)
    (0.0, 0.5)
    """
    head = np.asarray(list(counts), dtype=np.float64)
    values = [head, np.zeros(1)]
    weights = [np.ones(len(head)), np.array([max(zeros, 0.0)])]
    sample = np.asarray(tail_sample, dtype=np.float64)
    rest = (exposures if exposures is not None else head.sum()) - head.sum()
    if len(sample) and tail_items > 0 and rest > 0 and sample.sum() > 0:
        # Ratio estimator: the sample gives the shape of the tail, the exact totals its size.
        values.append(sample * (rest / (sample.sum() * tail_items / len(sample))))
        weights.append(np.full(len(sample), tail_items / len(sample)))
    v, w = np.concatenate(values), np.concatenate(weights)
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    mass = v * w
    total_mass, total_weight = mass.sum(), w.sum()
    if not total_mass > 0:
        return None
    lorenz = np.cumsum(mass) / total_mass
    below = np.concatenate(([0.0], lorenz[:-1]))
    gini = 1.0 - float(((w / total_weight) * (lorenz + below)).sum())
    return min(1.0, max(0.0, round(gini, 12)))  # no -1e-16 for equal exposures


def summarise(w: OpenWindow, settings: RankingSettings, label: str) -> RankingStats:
    """Read a closed window's sketches (see the docs' "How Gini is computed")."""
    n = w.exposures
    catalogue = settings.catalogue_size
    error = int(w.frequent.get_upper_bound(_ABSENT)) if n else 0
    tracked = w.frequent.get_frequent_items(ds.NO_FALSE_NEGATIVES, 0) if n else []
    exact = error == 0
    distinct = float(len(tracked)) if exact else float(w.hll.get_estimate())
    zeros = max(catalogue - distinct, 0.0) if catalogue is not None else 0.0
    if not n:
        gini = None
    elif exact:
        gini = exposure_gini((est for _item, est, _lo, _hi in tracked), zeros=zeros)
    else:
        # Heavy hitters from the frequent-items sketch (counts within `error`), the rest from
        # the hash sample of items, whose counts are exact; split at a multiple of the error.
        threshold = HEAD_ERROR_MULTIPLE * error
        head = [float(est) for _item, est, _lo, _hi in tracked if est > threshold]
        tail = [float(c) for _hash, c in w.sample.compact() if c <= threshold]
        gini = exposure_gini(
            head,
            zeros=zeros,
            exposures=float(n),
            tail_sample=tail,
            tail_items=max(distinct - len(head), float(len(tail))),
        )
    ctr: dict[int, float] = {}
    if w.has_clicks:
        shown = 0
        for position in range(settings.max_positions, 0, -1):
            shown += w.lengths[position]  # lists at least this long show this position
            impressions = shown + w.impressions[position]
            if impressions:
                ctr[position] = w.clicked[position] / impressions
    return RankingStats(
        window=label,
        lists=w.lists,
        empty_lists=w.empty_lists,
        exposures=n,
        distinct_items=distinct,
        coverage=min(distinct / catalogue, 1.0) if catalogue is not None else None,
        gini=gini,
        exact=exact,
        long_tail_share=w.long_tail / n if settings.head is not None and n else None,
        ctr_by_position=dict(sorted(ctr.items())),
        rejected=w.rejected,
    )
