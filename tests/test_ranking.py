"""Feedback-loop signals for ranked outputs (inferwatch.ranking)."""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from opentelemetry._logs import SeverityNumber

import inferwatch as iw
from inferwatch import errors as _internal
from inferwatch import ranking
from inferwatch.ranking import RankingSettings, RankingWindows, exposure_gini
from tests.conftest import Captured

GINI_TOLERANCE = 0.01  # docs/feedback-loops.md: estimation-mode Gini error
DISTINCT_TOLERANCE = 0.024  # 3 standard errors of HLL with 2^14 buckets


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    yield
    ranking.reset()


def _windows(**settings: Any) -> RankingWindows:
    return RankingWindows("m", RankingSettings.build(**settings), autostart=False)


# -- brute force ---------------------------------------------------------------------------------
def exact_gini(counts: Sequence[int], zeros: int = 0) -> float:
    x = sorted([*counts, *([0] * zeros)])
    n = len(x)
    return sum((2 * i - n - 1) * v for i, v in enumerate(x, 1)) / (n * sum(x))


def exact_head(popularity: dict[str, int], share: float) -> set[str]:
    """The fewest most-popular items whose interactions reach `share` of the total."""
    total, head, running = sum(popularity.values()), set(), 0
    for item, count in sorted(popularity.items(), key=lambda kv: (-kv[1], kv[0])):
        if running >= share * total:
            break
        head.add(item)
        running += count
    return head


def zipf_lists(
    rng: np.random.Generator, catalogue: int, lists: int, k: int, a: float
) -> list[list[str]]:
    """Ranked lists of distinct items drawn with Zipf-like popularity (a = 0: uniform)."""
    weights = 1 / np.arange(1, catalogue + 1) ** a
    ids = rng.permutation(catalogue)[rng.choice(catalogue, (lists, k), p=weights / weights.sum())]
    return [list(dict.fromkeys(f"item-{i}" for i in row)) for row in ids]


# -- the statistics against exact computations ----------------------------------------------------
def test_exposure_gini_matches_the_textbook_formula() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        counts = rng.integers(1, 50, size=int(rng.integers(1, 200))).tolist()
        zeros = int(rng.integers(0, 100))
        assert exposure_gini(counts, zeros=zeros) == pytest.approx(exact_gini(counts, zeros))
    assert exposure_gini([7, 7, 7]) == pytest.approx(0.0)
    assert exposure_gini([9], zeros=9) == pytest.approx(0.9)
    assert exposure_gini([], zeros=5) is None


@pytest.mark.parametrize("a", [0.0, 0.8, 1.2])
def test_small_windows_are_exact(a: float) -> None:
    rng = np.random.default_rng(2)
    catalogue = 2_000
    popularity = {f"item-{i}": int(c) for i, c in enumerate(rng.zipf(1.5, size=1_500))}
    w = _windows(catalogue_size=catalogue, popularity=popularity, head_share=0.3)
    lists = zipf_lists(rng, catalogue, 400, 10, a)
    for items in lists:
        w.record(items)
    stats = w.close_window()
    assert stats is not None and stats.exact

    counts = Counter(item for items in lists for item in items)
    head = exact_head(popularity, 0.3)
    assert w.settings.head == frozenset(head)
    assert stats.lists == 400 and stats.exposures == sum(counts.values())
    assert stats.distinct_items == len(counts)
    assert stats.coverage == pytest.approx(len(counts) / catalogue)
    assert stats.gini == pytest.approx(exact_gini(list(counts.values()), catalogue - len(counts)))
    tail = sum(c for item, c in counts.items() if item not in head)
    assert stats.long_tail_share == pytest.approx(tail / sum(counts.values()))


@pytest.mark.parametrize(
    ("catalogue", "lists", "a"),
    [(200_000, 8_000, 0.0), (200_000, 8_000, 0.8), (50_000, 8_000, 1.1)],
)
def test_large_windows_are_within_the_documented_error(
    catalogue: int, lists: int, a: float
) -> None:
    rng = np.random.default_rng(3)
    popularity = {f"item-{i}": catalogue - i for i in range(catalogue)}
    w = _windows(catalogue_size=catalogue, popularity=popularity)
    served = zipf_lists(rng, catalogue, lists, 20, a)
    for items in served:
        w.record(items)
    stats = w.close_window()
    assert stats is not None and not stats.exact

    counts = Counter(item for items in served for item in items)
    assert stats.distinct_items == pytest.approx(len(counts), rel=DISTINCT_TOLERANCE)
    assert stats.coverage == pytest.approx(len(counts) / catalogue, rel=DISTINCT_TOLERANCE)
    truth = exact_gini(list(counts.values()), catalogue - len(counts))
    assert abs(stats.gini - truth) <= GINI_TOLERANCE, (stats.gini, truth)  # type: ignore[operator]
    head = exact_head(popularity, 0.2)
    tail = sum(c for item, c in counts.items() if item not in head)
    assert stats.long_tail_share == pytest.approx(tail / stats.exposures)  # always exact


def test_without_a_catalogue_gini_is_over_the_items_shown() -> None:
    rng = np.random.default_rng(4)
    w = _windows()
    served = zipf_lists(rng, 100_000, 6_000, 20, 1.0)
    for items in served:
        w.record(items)
    stats = w.close_window()
    assert stats is not None and stats.coverage is None and stats.long_tail_share is None
    counts = Counter(item for items in served for item in items)
    assert abs(stats.gini - exact_gini(list(counts.values()))) <= GINI_TOLERANCE  # type: ignore[operator]


def test_memory_stays_bounded_with_a_huge_catalogue() -> None:
    catalogue, k = 5_000_000, 100
    w = _windows(catalogue_size=catalogue)
    tracemalloc.start()
    try:
        for start in range(0, 50_000, k):
            w.record(range(start, start + k))
        after_50k, _ = tracemalloc.get_traced_memory()
        for start in range(50_000, 300_000, k):
            w.record(range(start, start + k))
        after_300k, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Six times more distinct items keep no more Python objects alive ...
    assert after_300k - after_50k < 64 * 1024, (after_50k, after_300k)
    # ... and the sketches hold a fixed number of entries whatever the catalogue.
    window = w._current
    assert window.frequent.num_active_items <= 3 * 2**ranking.FREQ_LG_MAX_K // 4
    assert window.sample.num_retained <= 2 * 2**ranking.SAMPLE_LG_K
    assert window.hll.get_updatable_serialization_bytes() <= 2**ranking.HLL_LG_K + 64
    stats = w.close_window()
    assert stats is not None and stats.exposures == 300_000
    assert stats.distinct_items == pytest.approx(300_000, rel=DISTINCT_TOLERANCE)
    # Every item shown once: the Gini is the share of the catalogue never shown.
    assert abs(stats.gini - exact_gini([1] * 300_000, catalogue - 300_000)) <= GINI_TOLERANCE  # type: ignore[operator]


def test_ctr_by_position_from_serving_time_and_later_clicks() -> None:
    rng = np.random.default_rng(5)
    w = _windows(max_positions=5)
    shown: Counter[int] = Counter()
    clicked: Counter[int] = Counter()
    for _ in range(300):
        k = int(rng.integers(0, 8))
        flags = rng.random(k) < 0.5 / np.arange(1, k + 1)
        w.record([f"i{j}" for j in rng.choice(50, k, replace=False)], clicks=flags)
        shown.update(range(1, k + 1))
        clicked.update(int(p) for p in np.flatnonzero(flags) + 1)
    for _ in range(40):  # lists shown at explicit positions, clicked later
        positions = sorted(rng.choice(np.arange(1, 9), 3, replace=False).tolist())
        w.record(["a", "b", "c"], positions=positions)
        shown.update(positions)
        w.record_clicks(positions[:1])
        clicked[positions[0]] += 1
    stats = w.close_window()
    assert stats is not None
    expected = {p: clicked[p] / shown[p] for p in range(1, 6) if shown[p]}
    assert stats.ctr_by_position == pytest.approx(expected)
    assert stats.ctr_by_position[1] > stats.ctr_by_position[4]  # the planted position bias

    w.record(["a", "b"])  # no click feedback in this window: no CTR at all
    quiet = w.close_window()
    assert quiet is not None and quiet.ctr_by_position == {}


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("telemetry", [{"strict": False}], indirect=True)
def test_bad_lists_are_counted_never_raised(telemetry: Captured) -> None:
    ranking.configure("recs", catalogue_size=100, window="1h")
    bad: list[tuple[Any, dict[str, Any]]] = [
        (None, {}),
        ([{"id": 1}], {}),  # not hashable
        ([[1, 2]], {}),
        ([1.5, 2.5], {}),  # float ids
        (["a", None], {}),
        ("abc", {}),  # a string is not a list of items
        ({"a", "b"}, {}),  # a set has no order
        (iter(["a", "b"]), {}),  # an iterator: not consumed
        (np.arange(6).reshape(2, 3), {}),  # 2-D
        (["a", "b"], {"positions": [1]}),  # wrong length
        (["a", "b"], {"positions": [0, 1]}),  # positions are 1-based
        (["a", "b"], {"clicks": [True]}),
        (["a", "b"], {"clicks": ["yes", "no"]}),
    ]
    for items, kw in bad:
        with iw.inference(model="recs") as rec:
            rec.record_ranking(items, **kw)
    assert iw.ranking.record_ranking("recs", None) is None
    assert _internal.internal_errors().get("ranking.record") == len(bad) + 1
    iw.ranking.record_clicks("recs", [0])
    assert _internal.internal_errors().get("ranking.record_clicks") == 1

    with iw.inference(model="recs") as rec:  # fine: arrays, ints, numpy scalars, empty lists
        rec.record_ranking(np.array([3, 1, 2]), clicks=np.array([False, True, False]))
    with iw.inference(model="recs") as rec:
        rec.record_ranking(
            pd.Series([np.int64(3), np.int32(1)]),
            positions=list(np.array([1, 2])),
            clicks=[np.False_, 0],
        )
    with iw.inference(model="recs") as rec:
        rec.record_ranking([])
    with iw.inference(model="recs") as rec:  # repeated items: counted once, then reported
        rec.record_ranking(["x", "y", "x"], clicks=[0, 0, 1])
    assert _internal.internal_errors().get("ranking.record") == len(bad) + 2
    stats = iw.ranking.windows("recs").close_window()  # type: ignore[union-attr]
    assert stats is not None
    assert (stats.lists, stats.empty_lists, stats.exposures) == (4, 1, 7)
    assert (stats.distinct_items, stats.rejected) == (5, len(bad) + 1)
    # "x" was clicked at its first spot
    assert stats.ctr_by_position == {1: 1 / 3, 2: 1 / 3, 3: 0.0}

    sizes = [(s.attributes or {}).get("ml.ranking.size") for s in telemetry.spans("inference recs")]
    assert sizes == [None] * len(bad) + [3, 2, 0, 2]


def test_strict_mode_raises_bad_lists(telemetry: Captured) -> None:
    with pytest.raises(TypeError, match="str or int"), iw.inference(model="recs") as rec:
        rec.record_ranking([object()])
    with pytest.raises(ValueError, match="2 positions for 3 items"):
        iw.ranking.record_ranking("recs", ["a", "b", "c"], positions=[1, 2])


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"window": "soon"}, ValueError, "window"),
        ({"window": -5}, ValueError, "window"),
        ({"catalogue_size": 0}, ValueError, "catalogue_size"),
        ({"catalogue_size": 10.5}, ValueError, "catalogue_size"),
        ({"head_share": 1.0}, ValueError, "head_share"),
        ({"min_coverage": 0.1}, ValueError, "needs catalogue_size"),
        ({"catalogue_size": 10, "min_coverage": 2}, ValueError, "min_coverage"),
        ({"max_positions": 0}, ValueError, "max_positions"),
        ({"popularity": ["a", "b"]}, TypeError, "popularity"),
        ({"popularity": {"a": -1}}, ValueError, "finite count"),
        ({"popularity": {"a": float("nan")}}, ValueError, "finite count"),
        ({"popularity": {"a": 0}}, ValueError, "positive count"),
        ({"popularity": {1: 3, "1": 4}}, ValueError, "twice"),
        ({"popularity": {(1, 2): 3}}, TypeError, "str or int"),
        ({"popularity": {"a": 1, "b": 2}, "catalogue_size": 1}, ValueError, "more than"),
    ],
)
def test_settings_are_checked_when_declared(
    settings: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        iw.ranking.configure("recs", **settings)
    assert iw.ranking.windows("recs") is None


# -- what is exported ----------------------------------------------------------------------------
def _gauges(telemetry: Captured, metric: str, model: str) -> dict[Any, float]:
    return {
        (a["ml.window"], a.get("ml.ranking.position")): p.value
        for a, p in telemetry.points(metric)
        if a["ml.model.name"] == model
    }


def test_spans_and_gauges(telemetry: Captured) -> None:
    popularity = {f"i{i}": 100 - i for i in range(100)}  # head at 20%: i0..i10
    iw.ranking.configure("recs", catalogue_size=200, popularity=popularity, window="1h")
    with iw.inference(model="recs", version="2") as rec:
        rec.record_ranking(["i0", "i50", "new-item"], clicks=[True, False, False])
    attrs = telemetry.span("inference recs").attributes or {}
    assert attrs["ml.ranking.size"] == 3
    assert attrs["ml.ranking.long_tail_items"] == 2 and attrs["ml.ranking.clicks"] == 1
    for items in (["i1", "i2"], ["i1", "i3"]):
        iw.ranking.record_ranking("recs", items)
    iw.ranking.record_ranking("other", ["x", "y"])  # never declared: coverage-free metrics

    assert telemetry.points("ml.ranking.coverage") == []  # nothing before a window closes
    iw.ranking.windows("recs").close_window()  # type: ignore[union-attr]
    iw.ranking.windows("other").close_window()  # type: ignore[union-attr]
    assert _gauges(telemetry, "ml.ranking.lists", "recs") == {("1h", None): 3}
    assert _gauges(telemetry, "ml.ranking.exposures", "recs") == {("1h", None): 7}
    assert _gauges(telemetry, "ml.ranking.distinct_items", "recs") == {("1h", None): 6}
    assert _gauges(telemetry, "ml.ranking.coverage", "recs") == {("1h", None): 6 / 200}
    gini = _gauges(telemetry, "ml.ranking.gini", "recs")[("1h", None)]
    assert gini == pytest.approx(exact_gini([1, 1, 1, 2, 1, 1], 194))
    assert _gauges(telemetry, "ml.ranking.long_tail_share", "recs") == {("1h", None): 2 / 7}
    assert _gauges(telemetry, "ml.ranking.ctr", "recs") == {
        ("1h", 1): 1 / 3, ("1h", 2): 0.0, ("1h", 3): 0.0,
    }  # fmt: skip
    assert _gauges(telemetry, "ml.ranking.distinct_items", "other") == {("5m", None): 2}
    assert _gauges(telemetry, "ml.ranking.gini", "other") == {("5m", None): 0.0}
    for metric in ("ml.ranking.coverage", "ml.ranking.long_tail_share", "ml.ranking.ctr"):
        assert _gauges(telemetry, metric, "other") == {}


def test_low_coverage_is_logged_once_per_fall(telemetry: Captured) -> None:
    w = iw.ranking.configure("recs", catalogue_size=100, window="1h", min_coverage=0.3)
    for served in (range(50), range(10), range(5), range(60), range(20)):  # fall, stay, up, fall
        iw.ranking.record_ranking("recs", list(served))
        w.close_window()
    events = [
        r.log_record for r in telemetry.logs()
        if r.log_record.event_name == "ml.ranking.low_coverage"
    ]  # fmt: skip
    assert [dict(e.attributes or {})["ml.ranking.coverage"] for e in events] == [0.10, 0.20]
    first = dict(events[0].attributes or {})
    assert first["ml.model.name"] == "recs" and first["ml.ranking.min_coverage"] == 0.3
    assert events[0].severity_number == SeverityNumber.WARN


def test_the_thread_closes_windows() -> None:
    w = RankingWindows("m", RankingSettings.build(window=0.05))
    assert w.label == "50ms" and not w.running
    w.record(["a", "b"])  # the first list starts the thread
    assert w.running
    deadline = time.monotonic() + 5
    while not w.history and time.monotonic() < deadline:
        time.sleep(0.01)
    assert w.history and w.history[0].exposures == 2
    w.stop()
    assert not w.running
    w.record(["c"])  # no restart after stop()
    assert not w.running


def test_declaring_again_replaces_the_settings() -> None:
    first = iw.ranking.configure("recs", catalogue_size=10)
    first.start()
    second = iw.ranking.configure("recs", catalogue_size=20, window="1h")
    assert iw.ranking.windows("recs") is second and not first.running
    assert second.settings.catalogue_size == 20 and second.label == "1h"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_starts_clean() -> None:
    w = iw.ranking.configure("recs", window="1h")
    iw.ranking.record_ranking("recs", ["a", "b"])
    assert w.running
    pid = os.fork()
    if pid == 0:  # child: report through the exit code, never return into pytest
        code = 1
        try:
            if w.running or w._current.lists:
                code = 2
            else:
                iw.ranking.record_ranking("recs", ["c"])
                stats = w.close_window() if w.running else None
                code = 0 if stats is not None and stats.exposures == 1 else 3
                w.stop()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    stats = w.close_window()  # the parent is untouched
    assert stats is not None and stats.exposures == 2


def test_gauges_follow_a_new_configuration(telemetry: Captured) -> None:
    w = iw.ranking.configure("recs", window="1h")
    iw.ranking.record_ranking("recs", ["a", "b"])
    w.close_window()
    assert _gauges(telemetry, "ml.ranking.exposures", "recs") == {("1h", None): 2}
    again = Captured()
    iw.configure(service_name="test-service", metric_readers=[again.reader], strict=True)
    iw.ranking.record_ranking("recs", ["a", "b", "c"])
    w.close_window()
    assert _gauges(again, "ml.ranking.exposures", "recs") == {("1h", None): 3}


def test_a_list_recorded_while_the_window_is_locked_is_counted_without_waiting() -> None:
    w = _windows()
    w.record(["a", "b"])
    with w._lock:  # as the window's close (or another serving thread) holds it
        caller = threading.Thread(
            target=w.record, args=(["c", "d", "e"],), kwargs={"clicks": [0, 1, 0]}
        )
        caller.start()
        caller.join(10)
        assert not caller.is_alive(), "the serving call waited for the window"
    stats = w.close_window()
    assert stats is not None
    assert (stats.lists, stats.exposures, stats.ctr_by_position) == (2, 5, {1: 0.0, 2: 0.5, 3: 0.0})
