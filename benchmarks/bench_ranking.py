"""Cost of recording a ranked list, relative to counting its items exactly in plain Python.

    .venv/bin/python benchmarks/bench_ranking.py              # speed and accuracy (~50 s)
    .venv/bin/python benchmarks/bench_ranking.py --trials 0    # speed only (~30 s)
    .venv/bin/python benchmarks/bench_ranking.py --skip-speed  # accuracy only (~20 s)

Lists of k = 10 and k = 100 distinct item ids are drawn (Zipf-like popularity, a = 1) from a
catalogue of 100,000 items; a pool of 2,000 lists is cycled through, so the window's sketches
see a realistic mix of repeated and new items and run in estimation mode, as on a busy
service. The baseline is what exact, unbounded counting costs: ``Counter.update(items)`` plus
``set.update(items)`` on the same list of str ids (for numpy input: on ``array.tolist()``).

Cases: ``RankingWindows.record`` (the sketches: HLL, frequent items, hash sample of items,
position counters); ``iw.ranking.record_ranking`` (adds the model lookup and the error guard);
the same with a popularity baseline (long-tail counting) and with click flags; the list as a
numpy int64 array (what ``argsort`` returns). Last, the marginal cost inside an inference: a
``with iw.inference(...)`` block that records the list, against the same block without it.

Accuracy (``--trials``, default 5 per scenario, seeds ``[--seed, scenario, trial]``): windows
too large for exact counts (more than 3,072 distinct items), filled with lists of 20 distinct
ids drawn with p ~ 1/rank^a, with and without a declared catalogue. The window's Gini,
distinct items and long-tail share are compared with exact computations (`collections.Counter`
over the same lists); the table gives the largest and mean absolute errors over the trials.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import inferwatch as iw
from _common import (
    DiscardingExporter,
    Result,
    fmt_ratio,
    fmt_us,
    measure,
    paired_ratios,
    print_environment,
    print_table,
)
from inferwatch import ranking

CATALOGUE, POOL = 100_000, 2_000
DISTRIBUTIONS = ("inferwatch", "datasketches", "numpy", "opentelemetry-sdk")


def make_lists(k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """POOL lists of k distinct ids drawn with probability ~ 1/rank."""
    weights = 1 / np.arange(1, CATALOGUE + 1)
    weights /= weights.sum()
    ids = rng.permutation(CATALOGUE)
    return [ids[rng.choice(CATALOGUE, k, replace=False, p=weights)] for _ in range(POOL)]


def cases_for(k: int, rng: np.random.Generator) -> list[tuple[str, str, Callable[[], object]]]:
    """(label, baseline label, callable) for lists of k items."""
    arrays = make_lists(k, rng)
    strings = [[f"item-{i}" for i in a.tolist()] for a in arrays]
    ints = [a.astype(np.int64) for a in arrays]
    clicks = [rng.random(k) < 0.3 / np.arange(1, k + 1) for _ in range(POOL)]
    popularity = {f"item-{i}": int(c) for i, c in enumerate(rng.zipf(1.3, CATALOGUE))}
    base, base_np = f"k={k}: Counter + set of str ids", f"k={k}: Counter + set of array.tolist()"
    model, model_tail = f"bench-{k}", f"bench-{k}-tail"
    windows = ranking.RankingWindows("direct", autostart=False)
    ranking.configure(model, window="1h")
    ranking.configure(model_tail, window="1h", catalogue_size=CATALOGUE, popularity=popularity)
    counter: Counter[str] = Counter()
    seen: set[str] = set()

    def cycling(fn: Callable[..., object], *pools: Sequence[object]) -> Callable[[], object]:
        it = itertools.cycle(list(zip(*pools, strict=True)))
        return lambda: fn(*next(it))

    def exact(items: list[str]) -> None:
        counter.update(items)
        seen.update(items)

    def exact_np(items: np.ndarray) -> None:
        values = items.tolist()
        counter.update(values)
        seen.update(values)

    def in_inference(items: list[str]) -> None:
        with iw.inference(model=model) as rec:
            rec.record_ranking(items)

    def bare_inference(items: list[str]) -> None:
        with iw.inference(model=model):
            pass

    record = ranking.record_ranking
    return [
        (base, base, cycling(exact, strings)),
        (base_np, base_np, cycling(exact_np, ints)),
        ("  RankingWindows.record(ids)", base, cycling(windows.record, strings)),
        ("  iw.ranking.record_ranking(model, ids)", base,
         cycling(lambda items: record(model, items), strings)),
        ("  ... with a popularity baseline", base,
         cycling(lambda items: record(model_tail, items), strings)),
        ("  ... with a popularity baseline and clicks", base,
         cycling(lambda items, c: record(model_tail, items, clicks=c), strings, clicks)),
        ("  iw.ranking.record_ranking(model, int64 array)", base_np,
         cycling(lambda items: record(model, items), ints)),
        ("  with iw.inference(): rec.record_ranking(ids)", f"k={k}: with iw.inference(): pass",
         cycling(in_inference, strings)),
        (f"k={k}: with iw.inference(): pass", f"k={k}: with iw.inference(): pass",
         cycling(bare_inference, strings)),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed loops per case")
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds per timed loop")
    parser.add_argument("--trials", type=int, default=5, help="accuracy trials (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-speed", action="store_true", help="accuracy only")
    args = parser.parse_args()
    started = time.perf_counter()
    print_environment(DISTRIBUTIONS)
    if not args.skip_speed:
        speed(args.repeats, args.min_time)
    if args.trials > 0:
        accuracy(args.trials, args.seed)
    print(f"Total wall time {time.perf_counter() - started:.1f} s")


def speed(repeats: int, min_time: float) -> None:
    print(f"Lists: {POOL} per size, k distinct ids from {CATALOGUE:,} items (p ~ 1/rank).")
    print(f"Timing: {repeats} repeats of ~{min_time:g} s loops per case, round-robin.\n")
    exporter = DiscardingExporter()
    iw.configure(
        service_name="bench",
        span_processors=[BatchSpanProcessor(exporter)],
        metric_readers=[InMemoryMetricReader()],
        store=False,  # spans go to the discarding exporter only
    )
    rng = np.random.default_rng(0)
    groups = {k: cases_for(k, rng) for k in (10, 100)}
    # Labels repeat across sizes: a case's key names its size.
    cases = {f"{k}|{label}": fn for k, entries in groups.items() for label, _, fn in entries}
    results = measure(cases, repeats, min_time)
    iw.shutdown()
    ranking.reset()

    headers = ["case", "min us", "median us", "us/item", "ratio", "paired ratio med [range]"]
    for k, entries in groups.items():
        print(f"Lists of {k} items; ratio against the case named in the group's first rows")
        table = [
            row(label, results[f"{k}|{label}"], results[f"{k}|{ref}"], k)
            for label, ref, _ in entries
        ]
        print_table(headers, table)
        print()


# (catalogue size, lists of 20, a, catalogue declared)
SCENARIOS = [
    (200_000, 8_000, 0.0, True),
    (200_000, 8_000, 0.5, True),
    (200_000, 8_000, 0.8, True),
    (100_000, 8_000, 1.1, True),
    (1_000_000, 10_000, 1.0, True),
    (200_000, 8_000, 0.5, False),
    (200_000, 8_000, 0.8, False),
    (100_000, 8_000, 1.1, False),
]


def exact_gini(counts: list[int], zeros: int) -> float:
    x = np.sort(np.concatenate([np.asarray(counts, dtype=np.float64), np.zeros(zeros)]))
    n = len(x)
    return float(((2 * np.arange(1, n + 1) - n - 1) * x).sum() / (n * x.sum()))


def accuracy(trials: int, seed: int) -> None:
    """Window statistics against exact counts (see the module docstring)."""
    rows = []
    for number, (catalogue, lists, a, declared) in enumerate(SCENARIOS):
        weights = 1 / np.arange(1, catalogue + 1) ** a
        weights /= weights.sum()
        popularity = {str(i): catalogue - i for i in range(catalogue)}
        gini_err, distinct_err, tail_err = [], [], []
        for trial in range(trials):
            rng = np.random.default_rng(np.random.SeedSequence([seed, number, trial]))
            ids = rng.permutation(catalogue)[rng.choice(catalogue, (lists, 20), p=weights)]
            served = [list(dict.fromkeys(row)) for row in ids.tolist()]
            windows = ranking.RankingWindows(
                "accuracy",
                ranking.RankingSettings.build(
                    catalogue_size=catalogue if declared else None, popularity=popularity
                ),
                autostart=False,
            )
            for items in served:
                windows.record(items)
            stats = windows.close_window()
            assert stats is not None and not stats.exact
            counts = Counter(i for items in served for i in items)
            zeros = catalogue - len(counts) if declared else 0
            assert stats.gini is not None and stats.long_tail_share is not None
            gini_err.append(abs(stats.gini - exact_gini(list(counts.values()), zeros)))
            distinct_err.append(abs(stats.distinct_items / len(counts) - 1))
            head = windows.settings.head or frozenset()
            tail = sum(c for i, c in counts.items() if str(i) not in head)
            tail_err.append(abs(stats.long_tail_share - tail / stats.exposures))
        rows.append([
            f"{catalogue:,} items, a={a:g}, catalogue {'declared' if declared else 'unknown'}",
            f"{lists * 20:,}", f"{len(counts):,}",
            f"{max(gini_err):.4f}", f"{statistics.mean(gini_err):.4f}",
            f"{max(distinct_err):.2%}", f"{max(tail_err):.1e}",
        ])  # fmt: skip
    print(f"Accuracy: {trials} trials per scenario, lists of 20 distinct ids, p ~ 1/rank^a")
    print_table(
        ["scenario", "exposures", "distinct", "gini max err", "gini mean err",
         "distinct max rel err", "long tail max err"],
        rows,
    )  # fmt: skip
    print()


def row(label: str, result: Result, base: Result, k: int) -> list[str]:
    per_item = f"{result.min * 1e6 / k:.3f}"
    if base is result:
        return [label, fmt_us(result.min), fmt_us(result.median), per_item, "", ""]
    return [
        label,
        fmt_us(result.min),
        fmt_us(result.median),
        per_item,
        f"{result.min / base.min:.2f}",
        fmt_ratio(paired_ratios(result, base)),
    ]


if __name__ == "__main__":
    main()
