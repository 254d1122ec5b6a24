"""A recommender retrained on its own clicks: a feedback loop, seen and undone through inferwatch.

Run with `python examples/recommender.py` (a few seconds). A catalogue of items and groups of
users with their own tastes; users click what they like, much more often near the top of a list
(position bias). Each simulated day the recommender serves lists under `iw.inference`, records
them with `rec.record_ranking(...)`; the clicks come back later with the request id,
`iw.feedback(request_id, clicks=[item, ...])`, which finds each item's position in the list served.
Each night the model is retrained on the click log so far.

Phase 1, the feedback loop: the model ranks by raw click counts. What it shows gets clicked,
what gets clicked gets shown: day after day fewer items are recommended, exposure concentrates
(the Gini rises) and the long tail of the catalogue disappears, while the click-through rate
at the top even rises. Phase 2, the same loop with two randomised slots per list (exploration) and a
position-debiased click model (clicks per expected examination, not raw clicks): coverage and
the long-tail share come back and the Gini falls.

Every figure in the tables is read back from inferwatch's gauges (an in-memory metric reader),
one ranking window per simulated day, closed at the end of the day.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry.sdk.metrics.export import Gauge, InMemoryMetricReader
from rich.console import Console
from rich.table import Table

import inferwatch as iw
from inferwatch import ranking

MODEL = "recs"
SLOTS = 10
# Table column -> key of a row read back from the gauges (ml.ranking.<key>).
COLUMNS = {
    "day": "day", "distinct": "distinct_items", "coverage": "coverage", "gini": "gini",
    "long tail": "long_tail_share", "ctr@1": "ctr@1", "ctr@10": "ctr@10",
}  # fmt: skip


@dataclass
class World:
    """What users like (unknown to the model) and how they look at a list."""

    relevance: np.ndarray  # (groups, items): click probability of an item seen by the group
    examination: np.ndarray  # (slots,): chance that a user looks at position p (1/p)
    popularity: dict[int, int]  # item -> interactions before launch: the long-tail baseline

    @classmethod
    def build(cls, items: int, groups: int, rng: np.random.Generator) -> World:
        appeal = rng.normal(-0.5, 1.0, items)  # some items please everyone more than others
        affinity = rng.normal(0.0, 0.5, (groups, items))
        affinity[rng.integers(0, groups, items), np.arange(items)] += 2.5  # each group's niche
        relevance = 1 / (1 + np.exp(-(appeal + affinity - 3.0)))
        organic = rng.poisson(relevance.sum(axis=0) * 40)  # browsing before any recommender
        examination = 1 / np.arange(1, SLOTS + 1)
        return cls(relevance, examination, {i: int(c) for i, c in enumerate(organic) if c})


@dataclass
class ClickLog:
    """What the recommender is trained on: clicks and expected examinations per group and item."""

    groups: int
    items: int
    clicks: np.ndarray = field(init=False)
    examinations: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.clicks = np.zeros((self.groups, self.items))
        self.examinations = np.zeros((self.groups, self.items))

    def add(self, group: int, items: np.ndarray, clicked: np.ndarray, seen: np.ndarray) -> None:
        self.clicks[group, items] += clicked
        self.examinations[group, items] += seen

    def snapshot(self) -> ClickLog:
        """The log as of now: what a model retrained tonight is trained on."""
        copy = ClickLog(self.groups, self.items)
        copy.clicks[:], copy.examinations[:] = self.clicks, self.examinations
        return copy


Ranker = Callable[[ClickLog, int, np.random.Generator], np.ndarray]


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def popularity_ranker(log: ClickLog, group: int, rng: np.random.Generator) -> np.ndarray:
    """Rank by raw click counts (everyone's, plus the group's): the loop closes on itself."""
    clicks = log.clicks.sum(axis=0) + log.clicks[group]
    return _top(np.log1p(clicks) + 0.3 * rng.gumbel(size=log.items), SLOTS)


def exploring_ranker(explore: int) -> Ranker:
    """Clicks per expected examination (position-debiased), plus `explore` random slots."""

    def rank(log: ClickLog, group: int, rng: np.random.Generator) -> np.ndarray:
        rate = (log.clicks[group] + 0.1) / (log.examinations[group] + 2.0)  # prior: 5%
        ranked = list(_top(np.log(rate) + 0.3 * rng.gumbel(size=log.items), SLOTS - explore))
        others = np.setdiff1d(np.arange(log.items), ranked)
        for slot, item in zip(
            sorted(rng.choice(SLOTS, explore, replace=False)),
            rng.choice(others, explore, replace=False),
            strict=True,
        ):
            ranked.insert(int(slot), int(item))
        return np.array(ranked)

    return rank


def serve_day(
    world: World, log: ClickLog, ranker: Ranker, requests: int, rng: np.random.Generator
) -> None:
    """One day of traffic: serve, record the lists, simulate and record clicks, log them."""
    groups = world.relevance.shape[0]
    trained = log.snapshot()  # the model serves all day as retrained last night
    for _ in range(requests):
        group = int(rng.integers(groups))
        with iw.inference(model=MODEL, version="1") as rec:
            items = ranker(trained, group, rng)
            rec.record_ranking(items)  # item ids, best first
        seen = world.examination[: len(items)]
        clicked = rng.random(len(items)) < seen * world.relevance[group, items]
        if clicked.any():  # clicks arrive after serving, by request id and item
            iw.feedback(rec.request_id, clicks=items[clicked].tolist())
        log.add(group, items, clicked, seen)


def read_window(reader: InMemoryMetricReader) -> dict[str, Any]:
    """The ranking gauges of the last closed window, as exported by inferwatch."""
    row: dict[str, Any] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if not metric.name.startswith("ml.ranking.") or not isinstance(metric.data, Gauge):
                    continue
                for point in metric.data.data_points:
                    attrs = dict(point.attributes or {})
                    if attrs.get("ml.model.name") != MODEL:
                        continue
                    name = metric.name.removeprefix("ml.ranking.")
                    if name == "ctr":
                        name = f"ctr@{attrs['ml.ranking.position']}"
                    row[name] = point.value
    return row


def run(
    reader: InMemoryMetricReader,
    *,
    days: int,
    requests: int,
    items: int,
    groups: int,
    seed: int,
    min_coverage: float = 0.05,
) -> dict[str, list[dict[str, Any]]]:
    """Both phases; per phase, one row of gauges per simulated day.

    A day whose coverage falls below ``min_coverage`` logs one ``ml.ranking.low_coverage`` event.
    """
    rng = np.random.default_rng(seed)
    world = World.build(items, groups, rng)
    windows = ranking.configure(
        MODEL, catalogue_size=items, popularity=world.popularity, head_share=0.5,
        window="1d", min_coverage=min_coverage, max_positions=SLOTS,
    )  # fmt: skip
    log = ClickLog(groups, items)
    phases: dict[str, Ranker] = {
        "feedback loop: ranked by raw clicks": popularity_ranker,
        "exploration (2 random slots) + position-debiased clicks": exploring_ranker(2),
    }
    results: dict[str, list[dict[str, Any]]] = {}
    day = 0
    for title, ranker in phases.items():
        rows = results[title] = []
        for _ in range(days):
            day += 1
            serve_day(world, log, ranker, requests, rng)
            windows.close_window()  # a day is up: the thread would do this after 24 h
            rows.append({"day": day, **read_window(reader)})
    return results


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for column in COLUMNS:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(_cell(row.get(key)) for key in COLUMNS.values()))
    Console(width=120, color_system=None).print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3f}"
    return f"{value:.0f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10, help="simulated days per phase")
    parser.add_argument("--requests", type=int, default=400, help="lists served per day")
    parser.add_argument("--items", type=int, default=1000, help="catalogue size")
    parser.add_argument("--groups", type=int, default=20, help="user groups with their own tastes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store", type=Path, default=Path(".inferwatch") / "recommender")
    args = parser.parse_args()

    shutil.rmtree(args.store, ignore_errors=True)
    reader = InMemoryMetricReader()
    iw.configure(service_name="recommender", metric_readers=[reader], store=args.store)
    results = run(
        reader, days=args.days, requests=args.requests, items=args.items, groups=args.groups,
        seed=args.seed,
    )  # fmt: skip
    print(f"catalogue: {args.items} items; {args.requests} lists of {SLOTS} per day")
    print("gauges: ml.ranking.distinct_items, .coverage, .gini, .long_tail_share, .ctr by position")
    for title, rows in results.items():
        print()
        print_table(title, rows)
    first, loop, recovered = (*results.values(),)[0][0], *(rows[-1] for rows in results.values())
    print(
        f"\ncoverage {first['coverage']:.3f} -> {loop['coverage']:.3f} in the loop, "
        f"{recovered['coverage']:.3f} with exploration; gini {first['gini']:.3f} -> "
        f"{loop['gini']:.3f} -> {recovered['gini']:.3f}"
    )
    print(f"internal errors swallowed by inferwatch: {sum(iw.internal_errors().values())}")
    iw.shutdown()
    ranking.reset()


if __name__ == "__main__":
    main()
