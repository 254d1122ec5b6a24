"""The profiles' row sample: bounded, uniform, and still uniform after merges."""

from __future__ import annotations

from functools import reduce
from itertools import pairwise

import numpy as np
import pytest
from scipy import stats

from inferwatch.drift import Profile


def _rows(start: int, stop: int) -> dict[str, np.ndarray]:
    """Rows numbered start..stop-1: a sampled value is the row it came from."""
    index = np.arange(start, stop, dtype=float)
    return {"row": index, "twice": 2 * index}


def test_small_profiles_keep_every_row_and_big_ones_a_uniform_sample() -> None:
    small = Profile.build(_rows(0, 1000))
    assert small.sample is not None and small.sample.complete and small.sample.rows == 1000
    big = Profile.build(_rows(0, 200_000))
    sample = big.sample
    assert sample is not None and not sample.complete and sample.rows == 2048
    assert sample.seen == 200_000 and np.all(np.diff(sample.keys) > 0)
    rows = sample.matrix(["row", "twice"])
    assert np.array_equal(rows[:, 1], 2 * rows[:, 0])  # whole rows, not columns apart
    assert len(np.unique(rows[:, 0])) == 2048
    assert stats.kstest(rows[:, 0] / 200_000, "uniform").pvalue > 0.001
    assert Profile.build(_rows(0, 200_000), sample_rows=0).sample is None


def test_merged_samples_are_uniform_over_all_windows() -> None:
    """Windows of very different sizes: each contributes in proportion to its rows."""
    bounds = [0, 1000, 1500, 101_500, 102_000, 160_000]
    windows = [Profile.build(_rows(a, b), seed=i) for i, (a, b) in enumerate(pairwise(bounds))]
    merged = reduce(Profile.merge, windows)
    sample = merged.sample
    assert sample is not None and sample.seen == 160_000 and sample.rows == 2048
    rows = sample.column("row")
    assert rows is not None and len(np.unique(rows)) == 2048
    assert stats.kstest(rows / 160_000, "uniform").pvalue > 0.001
    from_big = np.count_nonzero((rows >= 1500) & (rows < 101_500))  # 62.5% of the rows
    assert from_big / 2048 == pytest.approx(0.625, abs=0.05)


def test_samples_of_other_sizes_and_columns_merge() -> None:
    a = Profile.build(_rows(0, 5000), sample_rows=100)
    b = Profile.build({"row": np.arange(5000.0, 9000.0), "other": np.ones(4000)})
    merged = a.merge(b)
    assert merged.sample is not None and merged.sample.rows == 100
    assert merged.sample.columns == ["row", "twice", "other"]
    values = merged.sample.matrix(["row", "twice", "other"])
    from_a = values[:, 0] < 5000
    assert np.all(np.isnan(values[from_a, 2])) and np.all(np.isnan(values[~from_a, 1]))
    loaded = Profile.from_bytes(merged.to_bytes())
    assert loaded.sample is not None
    assert np.array_equal(loaded.sample.keys, merged.sample.keys)
    assert np.array_equal(np.isnan(loaded.sample.values), np.isnan(merged.sample.values))
    with pytest.raises(ValueError, match="sample_rows"):
        Profile.build(_rows(0, 10), sample_rows=-1)


def test_the_same_data_give_the_same_sample() -> None:
    data = _rows(0, 50_000)
    first, again = Profile.build(data).sample, Profile.build(data).sample
    assert first is not None and again is not None
    assert np.array_equal(first.keys, again.keys) and np.array_equal(first.values, again.values)
    other = Profile.build(data, seed=7).sample
    assert other is not None and not np.array_equal(other.values, first.values)
