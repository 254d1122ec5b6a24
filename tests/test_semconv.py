"""One instrument table, `semconv.INSTRUMENTS`: the docs, the alert policies and the exported data.

* `docs/semantic-conventions.md` lists exactly the table's metrics, with their instrument, unit
  and bucket boundaries;
* every metric in it can be alerted on, with the statistics of its kind;
* a run of inferwatch that touches every feature (monitored calls, a stage, delayed labels, a
  drift window, a ranked list, an alert) exports exactly the table's metrics, each with its
  entry's unit, description, kind, buckets and attribute keys.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Gauge, Histogram, InMemoryMetricReader, Metric, Sum

import inferwatch as iw
from inferwatch import semconv
from inferwatch.alerts import AlertPolicy, AlertReader, AlertRules, render_prometheus_rules
from inferwatch.alerts.policy import STATISTICS
from inferwatch.delayed_labels import configure_feedback
from inferwatch.export import instruments
from inferwatch.semconv import DECLARED_TAGS, INSTRUMENTS

DOC = Path(__file__).resolve().parents[1] / "docs" / "semantic-conventions.md"
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


def doc_tables() -> list[tuple[list[str], list[list[str]]]]:
    """(lower-cased header, rows) of every Markdown table in the semantic conventions."""
    tables: list[tuple[list[str], list[list[str]]]] = []
    in_table = False
    for line in DOC.read_text().splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [c.strip() for c in _CELL_SEPARATOR.split(line.strip().strip("|"))]
        if not in_table:
            tables.append(([c.lower() for c in cells], []))
            in_table = True
        elif not all(set(c) <= set("-: ") for c in cells):  # the |---| line
            tables[-1][1].append(cells)
    return tables


def documented_metrics() -> dict[str, tuple[str, str]]:
    """(instrument, unit) of each metric in the tables headed ``Name | Instrument | Unit``."""
    found: dict[str, tuple[str, str]] = {}
    for header, rows in doc_tables():
        if header[:3] != ["name", "instrument", "unit"]:
            continue
        for name_cell, instrument, unit, *_ in rows:
            for name in re.findall(r"`([^`]+)`", name_cell):
                assert name not in found, f"{name} is documented twice"
                found[name] = (instrument.split()[0], unit.strip("`"))
    return found


def documented_buckets() -> set[tuple[float, ...]]:
    """The boundaries of each row of the table headed ``Buckets | Boundaries``."""
    [rows] = [rows for header, rows in doc_tables() if header == ["buckets", "boundaries"]]
    return {tuple(float(b) for b in boundaries.split(", ")) for _, boundaries in rows}


def test_the_documented_metrics_are_the_table() -> None:
    table = {name: (spec.instrument, spec.unit) for name, spec in INSTRUMENTS.items()}
    assert documented_metrics() == table


def test_the_documented_bucket_boundaries_are_the_tables() -> None:
    table = {spec.buckets for spec in INSTRUMENTS.values() if spec.buckets is not None}
    assert documented_buckets() == table


# -- alert policies ------------------------------------------------------------------------------
A_STATISTIC = {"gauge": "last", "counter": "increase", "histogram": "p99"}


@pytest.mark.parametrize("metric", sorted(INSTRUMENTS))
def test_every_metric_can_be_alerted_on(metric: str) -> None:
    kind = INSTRUMENTS[metric].kind
    statistic = A_STATISTIC[kind]
    policy = AlertPolicy(name="Any", metric=metric, statistic=statistic, op=">", threshold=0)
    assert (policy.info.kind, policy.info.unit) == (kind, INSTRUMENTS[metric].unit)
    for other in {"last", "increase", "quantile"} - set(STATISTICS[kind]):
        with pytest.raises(ValueError, match=re.escape(f"does not apply to '{metric}'")):
            AlertPolicy(name="Any", metric=metric, statistic=other, op=">", threshold=0)


@pytest.mark.parametrize(
    ("metric", "statistic", "op", "threshold", "prometheus"),
    [  # refused before as "not an inferwatch metric"
        ("ml.label.unjoined", "increase", ">", 100, "ml_label_unjoined_total"),
        ("ml.label.evicted", "rate", ">", 1, "ml_label_evicted_total"),
        ("ml.ranking.coverage", "last", "<", 0.05, "ml_ranking_coverage_ratio"),
        ("ml.ranking.ctr", "min", "<", 0.01, "ml_ranking_ctr_ratio"),
        ("ml.ranking.distinct_items", "last", "<", 500, "ml_ranking_distinct_items"),
        ("ml.ranking.exposures", "avg", "<", 1000, "ml_ranking_exposures"),
        ("ml.ranking.gini", "max", ">", 0.9, "ml_ranking_gini_ratio"),
        ("ml.ranking.lists", "last", "<", 1, "ml_ranking_lists"),
        ("ml.ranking.long_tail_share", "last", "<", 0.1, "ml_ranking_long_tail_share_ratio"),
    ],
)
def test_the_feedback_metrics_can_be_alerted_on(
    metric: str, statistic: Any, op: Any, threshold: float, prometheus: str
) -> None:
    policy = AlertPolicy(
        name="Feedback",
        metric=metric,
        statistic=statistic,
        op=op,
        threshold=threshold,
        window="1h",
        group_by=("ml.model.name",),
    )
    target = "UnderscoreEscapingWithSuffixes"
    assert policy.info.prometheus_name(target) == prometheus
    assert prometheus in render_prometheus_rules(AlertRules(policies=[policy], target=target))


# -- the exported data ---------------------------------------------------------------------------
def exported_metrics() -> dict[str, Metric]:
    """Every metric of scope `inferwatch` that a run touching every feature exports, by name."""
    rng = np.random.default_rng(7)
    features = ["amount", "age"]
    baseline = iw.Profile.build(rng.normal(size=(2000, 2)), columns=features)
    schema = iw.Schema(features=[iw.Feature(name="amount", max=3.0), iw.Feature(name="age")])
    lists_served = AlertPolicy(
        name="ListsServed",
        metric="ml.ranking.lists",
        statistic="last",
        op=">=",
        threshold=1,
        window="1m",
    )
    alerts = AlertReader(AlertRules(policies=[lists_served]), autostart=False)
    reader = InMemoryMetricReader()
    iw.configure(
        service_name="semconv", store=False, metric_readers=[reader, alerts], metric_tags=["region"]
    )
    configure_feedback(max_predictions=2)  # a third remembered prediction evicts the first

    @iw.monitor(
        model="fraud", version="3", features=features, baseline=baseline, window="1h", schema=schema
    )
    def score(x: np.ndarray) -> np.ndarray:
        if np.isnan(x).all():
            raise ValueError("all missing")
        return x.sum(axis=1)

    @iw.monitor(model="churn")
    def classify(texts: list[str]) -> list[str]:
        return ["stay" for _ in texts]

    try:
        with iw.context(request_id="r-fraud", region="eu"):
            score(np.array([[0.5, 1.0]]))
        iw.feedback("r-fraud", 1.0)
        for i in range(4):  # evicts r-fraud (labelled), r-churn-0 and r-churn-1 (unlabelled)
            with iw.context(request_id=f"r-churn-{i}"):
                classify(["hello", "hi"])
        iw.feedback("r-churn-3", ["stay", "leave"])
        iw.feedback("r-never-served", "stay")

        score(rng.normal(size=(50, 2)) + np.array([5.0, 0.0]))  # drifted, above the schema's max
        score(np.array([[np.nan, 1.0]]))
        with pytest.raises(ValueError):
            score(np.full((1, 2), np.nan))
        with iw.inference(model="fraud") as rec, rec.stage("postprocess"):
            pass
        score.drift.close_window()  # type: ignore[attr-defined]

        popularity = {f"i{i}": 100 - i for i in range(100)}
        iw.ranking.configure("recs", catalogue_size=100, popularity=popularity, window="1h")
        with iw.inference(model="recs") as rec:
            rec.record_ranking(["i0", "i50", "new"], clicks=[True, False, False])
        iw.ranking.record_ranking("recs", None)  # not a list: counted as an internal error
        iw.ranking.windows("recs").close_window()  # type: ignore[union-attr]

        alerts.collect()  # ListsServed fires: a notification on the log channel
        data = reader.get_metrics_data()
    finally:
        iw.shutdown()
        score.drift.stop()  # type: ignore[attr-defined]
        iw.ranking.reset()
        configure_feedback()
    assert data is not None
    return {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        if scope.scope.name == semconv.INSTRUMENTATION_NAME
        for metric in scope.metrics
    }


def kind(metric: Metric) -> str:
    if isinstance(metric.data, Histogram):
        return "histogram"
    if isinstance(metric.data, Sum) and metric.data.is_monotonic:
        return "counter"
    assert isinstance(metric.data, Gauge | Sum), metric.name
    return "gauge"


@pytest.fixture(scope="module")
def exported() -> dict[str, Metric]:
    return exported_metrics()


def test_what_is_exported_is_the_table(exported: dict[str, Metric]) -> None:
    assert sorted(exported) == sorted(INSTRUMENTS)
    for name, metric in exported.items():
        spec = INSTRUMENTS[name]
        exported_as = (metric.unit, metric.description, kind(metric))
        assert exported_as == (spec.unit, spec.description, spec.kind), name
        allowed = set(spec.attributes) | {"otel.metric.overflow"}
        if DECLARED_TAGS in allowed:
            allowed.add("region")  # the metric tag declared in `exported_metrics`
        for point in metric.data.data_points:
            assert set(point.attributes or {}) <= allowed, (name, point.attributes)
            if spec.buckets is not None:
                assert tuple(point.explicit_bounds) == spec.buckets, name


def test_declared_tags_and_errors_reach_the_metrics_that_carry_them(
    exported: dict[str, Metric],
) -> None:
    def keys(name: str) -> set[str]:
        return {key for point in exported[name].data.data_points for key in point.attributes or {}}

    assert {"region", semconv.ERROR_TYPE} <= keys(semconv.METRIC_INFERENCE_DURATION)
    assert "region" in keys(semconv.METRIC_LABEL_DELAY)


# -- the creation helpers ------------------------------------------------------------------------
def test_an_instrument_the_table_does_not_describe_is_refused() -> None:
    meter = MeterProvider().get_meter("test")
    with pytest.raises(KeyError, match=r"not in semconv\.INSTRUMENTS"):
        instruments.histogram(meter, "my.latency")
    with pytest.raises(ValueError, match="as ObservableGauge, not Histogram"):
        instruments.histogram(meter, semconv.METRIC_DRIFT_SCORE)
