"""Alert evaluation in the process: CPU per collection with 10k metric points, once a minute.

    .venv/bin/python benchmarks/bench_alerts.py                # ~1 min on 2 cores
    .venv/bin/python benchmarks/bench_alerts.py --collections 20 --warmup 5 --skip-hot-path

Setup: one OTel SDK MeterProvider with inferwatch's instruments (names, units, buckets as
inferwatch creates them) holding 10,000 data points per collection:

* ``ml.inference.duration``: 2,000 histogram series (100 models x 10 regions x ok/error);
* ``ml.input.nan_count`` and ``ml.prediction.count``: 2,000 counter series each (100 models x
  20 features / classes);
* ``ml.drift.score`` and ``ml.drift.detected``: 2,000 observable-gauge series each.

20 alert policies read them (error ratios, p99/p50/mean latency, rates, increases, missing
values per inference, class shares, drift max/avg/last), with windows of 5 minutes to 1 hour
and group-bys by model, region, feature or class. The `AlertReader` runs on a fake clock that
advances 60 s per collection (no thread, no waiting); between collections a minute of
traffic lands on random series: 10,000 inference durations (2% failing), about 1,000
missing-value counts, 10,000 class counts, and fresh drift scores (a few features drifting).
The cumulative collection reports all 10,000 series every time.

Per collection we take the CPU time (``time.thread_time``) of the reader's whole ``collect()``
and, inside it, of the evaluation (`AlertReader.evaluation_cpu_seconds`); the rest is the SDK's
collection for this reader. The baseline peer is an ``InMemoryMetricReader`` on the same
provider collecting the same points (the cost any reader pays). The figure: evaluation CPU per
minute as a percentage of one core. A collection right after every series got its first
point, an hour before the measured minutes, gives every window a baseline; the first hour of
collections (the 1-hour windows' histories still filling) is left out of the figures.

Hot path: one more reader means the SDK aggregates each measurement once more. For
information, ``Histogram.record`` is timed with one reader and with one reader plus the alert
reader (round-robin, `benchmarks._common.measure`).
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (
    fmt_ratio,
    fmt_us,
    measure,
    paired_ratios,
    print_environment,
    print_table,
    verdict,
)

from inferwatch import semconv
from inferwatch.alerts import AlertPolicy, AlertReader, AlertRules

MODELS = [f"model-{i}" for i in range(100)]
REGIONS = [f"region-{i}" for i in range(10)]
FEATURES = [f"f{i}" for i in range(20)]
CLASSES = [f"class-{i}" for i in range(20)]
TARGET_PERCENT = 1.0
CALLS_PER_MINUTE = 10_000


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def policies() -> list[AlertPolicy]:
    duration, nan = semconv.METRIC_INFERENCE_DURATION, semconv.METRIC_INPUT_NAN_COUNT
    classes, score = semconv.METRIC_PREDICTION_COUNT, semconv.METRIC_DRIFT_SCORE
    detected = semconv.METRIC_DRIFT_DETECTED
    model, region, feature = semconv.ML_MODEL_NAME, "region", semconv.ML_FEATURE
    errors = {"error.type": "*"}
    specs: list[dict[str, Any]] = [
        {"metric": duration, "statistic": "ratio", "numerator": errors, "group_by": [model],
         "threshold": 0.1},
        {"metric": duration, "statistic": "ratio", "numerator": errors,
         "group_by": [model, region], "window": "15m", "threshold": 0.1},
        {"metric": duration, "statistic": "ratio", "numerator": errors, "window": "1h",
         "threshold": 0.05},
        {"metric": duration, "statistic": "p99", "group_by": [model], "threshold": 0.25},
        {"metric": duration, "statistic": "p99", "group_by": [model, region], "window": "15m",
         "threshold": 0.25},
        {"metric": duration, "statistic": "p50", "group_by": [region], "window": "1h",
         "threshold": 0.1},
        {"metric": duration, "statistic": "mean", "group_by": [model], "threshold": 0.1},
        {"metric": duration, "statistic": "rate", "group_by": [model], "threshold": 2.0},
        {"metric": duration, "statistic": "increase", "where": {model: MODELS[:10]},
         "group_by": [model, region], "threshold": 400},
        {"metric": nan, "statistic": "increase", "group_by": [model], "threshold": 400},
        {"metric": nan, "statistic": "rate", "group_by": [model, feature], "window": "15m",
         "threshold": 2.0},
        {"metric": nan, "statistic": "ratio", "denominator": duration, "group_by": [model],
         "threshold": 1.0},
        {"metric": nan, "statistic": "ratio", "denominator": duration, "window": "1h",
         "threshold": 0.5},
        {"metric": classes, "statistic": "ratio", "numerator": {"ml.prediction.class": "class-0"},
         "group_by": [model], "threshold": 0.6},
        {"metric": classes, "statistic": "rate", "group_by": ["ml.prediction.class"],
         "threshold": 10.0},
        {"metric": detected, "statistic": "max", "group_by": [model, feature], "threshold": 0.5},
        {"metric": detected, "statistic": "max", "group_by": [model], "window": "1h",
         "threshold": 0.5},
        {"metric": score, "statistic": "last", "group_by": [model, feature], "threshold": 0.999},
        {"metric": score, "statistic": "avg", "group_by": [model], "window": "15m",
         "threshold": 0.9},
        {"metric": score, "statistic": "max", "where": {feature: FEATURES[:5]}, "window": "1h",
         "threshold": 0.999},
    ]  # fmt: skip
    return [
        AlertPolicy.model_validate(
            {"name": f"P{i:02d}", "op": ">", "window": "5m", "for": "2m", **spec}
        )
        for i, spec in enumerate(specs)
    ]


class Workload:
    """inferwatch's instruments on one provider, with 10,000 series between them."""

    def __init__(self, provider: MeterProvider, rng: random.Random) -> None:
        meter = provider.get_meter(semconv.INSTRUMENTATION_NAME)
        self.rng = rng
        self.duration = meter.create_histogram(
            semconv.METRIC_INFERENCE_DURATION, unit="s",
            explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS,
        )  # fmt: skip
        self.nan = meter.create_counter(semconv.METRIC_INPUT_NAN_COUNT, unit="{value}")
        self.classes = meter.create_counter(semconv.METRIC_PREDICTION_COUNT, unit="{prediction}")
        self.scores: dict[tuple[str, str], float] = {}
        meter.create_observable_gauge(
            semconv.METRIC_DRIFT_SCORE, callbacks=[self._observe(lambda s: s)], unit="1"
        )
        meter.create_observable_gauge(
            semconv.METRIC_DRIFT_DETECTED,
            callbacks=[self._observe(lambda s: float(s > 0.9))],
            unit="1",
        )
        self.duration_attributes = [
            {semconv.ML_MODEL_NAME: m, "region": r, **({semconv.ERROR_TYPE: "ValueError"} if e
                                                       else {})}
            for m in MODELS for r in REGIONS for e in (False, True)
        ]  # fmt: skip
        self.nan_attributes = [
            {semconv.ML_MODEL_NAME: m, semconv.ML_FEATURE: f} for m in MODELS for f in FEATURES
        ]
        self.class_attributes = [
            {semconv.ML_MODEL_NAME: m, semconv.ML_PREDICTION_CLASS: c}
            for m in MODELS
            for c in CLASSES
        ]

    def _observe(self, value: Any) -> Any:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(value(s), {semconv.ML_MODEL_NAME: m, semconv.ML_FEATURE: f})
                for (m, f), s in self.scores.items()
            ]

        return observe

    def start(self) -> None:
        """One point on every series: the cumulative collections report all of them from now."""
        for attributes in self.duration_attributes:
            self.duration.record(0.02, attributes)
        for attributes in self.nan_attributes:
            self.nan.add(1, attributes)
        for attributes in self.class_attributes:
            self.classes.add(1, attributes)

    def traffic(self, calls: int) -> None:
        """A minute of traffic: ``calls`` inferences on random series, 2% failing, 10% with a
        missing value; drift scores low except for a few features."""
        rng = self.rng
        ok, failed = self.duration_attributes[0::2], self.duration_attributes[1::2]
        for _ in range(calls):
            series = rng.choice(failed) if rng.random() < 0.02 else rng.choice(ok)
            self.duration.record(rng.expovariate(50.0), series)
            if rng.random() < 0.1:
                self.nan.add(1, rng.choice(self.nan_attributes))
            self.classes.add(1, rng.choice(self.class_attributes))
        self.scores = {(m, f): rng.random() * 0.5 for m in MODELS for f in FEATURES}
        for _ in range(3):
            self.scores[(rng.choice(MODELS), rng.choice(FEATURES))] = 0.95 + rng.random() / 20


def quiet_notifications() -> None:
    """The log channel still runs (its cost counts); its records just go nowhere."""
    for name in ("inferwatch.events", "inferwatch.alerts"):
        logger = logging.getLogger(name)
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def evaluation(collections: int, warmup: int) -> None:
    quiet_notifications()
    clock = Clock()
    alerts = AlertReader(AlertRules(policies=policies()), clock=clock, autostart=False)
    peer = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[peer, alerts], shutdown_on_exit=False)
    workload = Workload(provider, random.Random(7))
    workload.start()
    alerts.collect()  # the series' first totals, an hour before the measured minutes begin
    clock.now = 3600.0
    points = 0
    rows: list[tuple[float, float, float]] = []  # (evaluation, SDK collection, peer collect)
    for _ in range(collections):
        workload.traffic(CALLS_PER_MINUTE)
        clock.now += 60.0
        before_eval = alerts.evaluation_cpu_seconds
        started = time.thread_time()
        alerts.collect()
        total = time.thread_time() - started
        evaluated = alerts.evaluation_cpu_seconds - before_eval
        started = time.thread_time()
        data = peer.get_metrics_data()
        peer_cpu = time.thread_time() - started
        rows.append((evaluated, total - evaluated, peer_cpu))
        points = sum(
            len(m.data.data_points)
            for r in (data.resource_metrics if data else ())
            for s in r.scope_metrics
            for m in s.metrics
        )
    provider.shutdown()
    outcomes: dict[str, int] = {}
    for (_, _, outcome), n in alerts.outcomes().items():
        outcomes[outcome] = outcomes.get(outcome, 0) + n
    steady = rows[warmup:]
    ms = 1000.0

    def stats(values: list[float]) -> str:
        low, mid, high = (f(values) * ms for f in (min, statistics.median, max))
        return f"{mid:,.1f} [{low:,.1f}-{high:,.1f}]"

    print(f"Evaluation: {len(policies())} policies over {points:,} data points per collection, "
          f"one collection per simulated minute; {collections} collections, the first {warmup} "
          "(histories of the 1-hour windows filling) left out")  # fmt: skip
    print()
    evaluation_cpu = [r[0] for r in steady]
    sdk_cpu = [r[1] for r in steady]
    peer_cpu = [r[2] for r in steady]
    print_table(
        ["CPU per collection (ms, median [min-max])", "value"],
        [
            ["alert evaluation (AlertReader, 20 policies)", stats(evaluation_cpu)],
            ["SDK collection for the alert reader", stats(sdk_cpu)],
            ["peer: InMemoryMetricReader.get_metrics_data()", stats(peer_cpu)],
            ["alert evaluation, first measured collection", f"{rows[0][0] * ms:,.1f}"],
        ],
    )
    print()
    ratios = [e / p for e, p in zip(evaluation_cpu, peer_cpu, strict=True)]
    percent = statistics.median(evaluation_cpu) / 60.0 * 100
    worst = max(evaluation_cpu) / 60.0 * 100
    both = [e + s for e, s in zip(evaluation_cpu, sdk_cpu, strict=True)]
    with_collection = statistics.median(both) / 60.0 * 100
    print(f"evaluation / peer collection: {fmt_ratio(ratios)} (median [min-max] of "
          "per-collection ratios)")  # fmt: skip
    print(f"evaluation, % of one core at one collection a minute: {percent:.3f}% (worst "
          f"collection {worst:.3f}%)   target {verdict(percent, TARGET_PERCENT)}")  # fmt: skip
    print(f"evaluation + its SDK collection: {with_collection:.3f}% of one core")
    print(f"notifications over the run (log channel, all collections): {outcomes}")
    print()


def hot_path(repeats: int, min_time: float) -> None:
    attributes = {semconv.ML_MODEL_NAME: "fraud", "region": "eu"}

    def histogram(readers: list[Any]) -> Any:
        provider = MeterProvider(metric_readers=readers, shutdown_on_exit=False)
        return provider.get_meter(semconv.INSTRUMENTATION_NAME).create_histogram(
            semconv.METRIC_INFERENCE_DURATION, unit="s",
            explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS,
        )  # fmt: skip

    rules = AlertRules(policies=policies())
    one = histogram([InMemoryMetricReader()])
    two = histogram([InMemoryMetricReader(), AlertReader(rules, autostart=False)])
    results = measure(
        {
            "record, 1 reader": lambda: one.record(0.012, attributes),
            "record, 1 reader + AlertReader": lambda: two.record(0.012, attributes),
        },
        repeats,
        min_time,
    )
    base = results["record, 1 reader"]
    rows = [
        [label, fmt_us(r.min), fmt_us(r.median), fmt_ratio(paired_ratios(r, base))]
        for label, r in results.items()
    ]
    print_table(["Histogram.record (hot path)", "min us", "median us", "x 1 reader"], rows)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collections", type=int, default=75)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--skip-hot-path", action="store_true")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.2)
    args = parser.parse_args()
    print_environment(["opentelemetry-sdk", "pydantic"])
    evaluation(args.collections, min(args.warmup, args.collections - 1))
    if not args.skip_hot_path:
        hot_path(args.repeats, args.min_time)


if __name__ == "__main__":
    main()
