"""Late joins: delayed labels from any process make `Spans.slice/bubble_up(outcome="wrong")`.

A serving process (this one) writes inference spans to a store and labels some requests itself;
a second process, which never saw the predictions, labels others with `iw.feedback` and writes
only log records. The query layer joins both kinds of label to the spans by request id:

* on the store, with chDB over the OTLP/JSON trace and log segments;
* on tables created with the ClickHouse exporter's exact DDL (collector_config/clickhouse/
  otel_traces.sql and otel_logs.sql), rows written as the exporter writes them.

Both must give the counts the test planted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("chdb")

import inferwatch as iw
from inferwatch.delayed_labels import configure_feedback, feedback
from inferwatch.query import ChdbEngine, Spans
from inferwatch.query.engines import ChdbTableEngine, _ChdbSession
from inferwatch.store import iter_logs, iter_spans
from tests._exporter_tables import exporter_tables

DDL = Path(__file__).resolve().parents[1] / "collector_config" / "clickhouse"
REGIONS = ["eu", "us", "ap-south"]
HOSTILE_ID = "r-'; DROP TABLE t; --\\"

LABELLER = textwrap.dedent(
    """
    import json, sys
    import inferwatch as iw
    from inferwatch.delayed_labels import feedback

    iw.configure(service_name="labeller", store=sys.argv[1], metric_readers=[])
    statuses = [feedback(r, label, at=at, model=model)
                for r, label, at, model in json.load(sys.stdin)]
    iw.shutdown()
    print(json.dumps(statuses))
    """
)


@dataclass
class Plan:
    """What was served and labelled, and the wrong predictions per region that follow."""

    store: Path
    wrong_by_region: dict[str, int]
    requests_by_region: dict[str, int]
    labeller_statuses: list[str]


def run_labeller(store: Path, labels: list[tuple[str, Any, float | None, str | None]]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", LABELLER, str(store)],
        input=json.dumps(labels), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plan]:
    store = tmp_path_factory.mktemp("labels") / "store"
    rng = np.random.default_rng(3)
    configure_feedback()
    iw.configure(service_name="serving", store=str(store), metric_readers=[])

    @iw.monitor(model="fraud", version="2")
    def predict(x: Any) -> Any:
        return x

    wrong = dict.fromkeys(REGIONS, 0)
    requests = dict.fromkeys(REGIONS, 0)
    here: list[tuple[str, str]] = []
    elsewhere: list[tuple[str, Any, float | None, str | None]] = []
    for i in range(240):
        region = REGIONS[i % 3]
        request_id = HOSTILE_ID if i == 0 else f"r-{i}"
        predicted = "fraud" if rng.random() < 0.3 else "ok"
        with iw.context(request_id=request_id, region=region):
            predict(predicted)
        requests[region] += 1
        if i % 10 == 9:
            continue  # never labelled
        p_wrong = 0.7 if region == "ap-south" else 0.1
        is_wrong = bool(rng.random() < p_wrong)
        wrong[region] += is_wrong
        label = ("ok" if predicted == "fraud" else "fraud") if is_wrong else predicted
        if i % 2 == 0:
            here.append((request_id, label))
        else:
            elsewhere.append((request_id, label, None, "fraud" if i % 4 == 1 else None))
    for request_id, label in here:
        assert feedback(request_id, label) == "joined"
    # A batch: labelled here it is judged; labelled elsewhere, the span alone cannot judge it.
    for request_id, region in (("batch-here", "eu"), ("batch-elsewhere", "us")):
        with iw.context(request_id=request_id, region=region):
            predict(np.array(["ok", "ok", "fraud"]))
        requests[region] += 1
    assert feedback("batch-here", ["ok", "fraud", "fraud"]) == "joined"
    wrong["eu"] += 1
    elsewhere.append(("batch-elsewhere", ["fraud", "fraud", "fraud"], None, None))
    # Labels for another model's prediction of the same request do not judge this one.
    elsewhere.append(("r-1", "nonsense", None, "other-model"))
    # From elsewhere, the first label per request counts: a later correction is ignored.
    first = next(e for e in elsewhere if e[0] == "r-3")
    correction = "ok" if first[1] == "fraud" else "fraud"
    elsewhere.append(("r-3", correction, 2e9 + 1.0, None))  # ... and later than any now
    iw.shutdown()
    configure_feedback()
    statuses = run_labeller(store, elsewhere)
    yield Plan(store, wrong, requests, statuses)


def test_the_labeller_had_no_index(plan: Plan) -> None:
    assert set(plan.labeller_statuses) == {"unknown"}
    records = [r for r in iter_logs(plan.store) if r["event_name"] == "ml.feedback"]
    joined = [r for r in records if r["attributes"]["ml.label.status"] == "joined"]
    unknown = [r for r in records if r["attributes"]["ml.label.status"] == "unknown"]
    assert len(unknown) == len(plan.labeller_statuses)
    assert all(r["trace_id"] and r["span_id"] for r in joined)
    assert not any(r["trace_id"] for r in unknown)
    spans = {s["span_id"]: s for s in iter_spans(plan.store)}
    for record in joined:  # each joined record points at the span of its own request
        span = spans[record["span_id"]]
        assert span["attributes"]["ml.request.id"] == record["attributes"]["ml.request.id"]


def check_slice(spans: Spans, plan: Plan) -> None:
    result = spans.slice(by=["region"], since="1h", outcome="wrong")
    got = {row["region"]: (row["requests"], row["wrong"]) for row in result.rows}
    expected = {r: (plan.requests_by_region[r], plan.wrong_by_region[r]) for r in REGIONS}
    assert got == expected
    assert result.rows[0]["region"] == "ap-south"  # sorted by the outcome
    bubble = spans.bubble_up(outcome="wrong", since="1h", keys=["region"], min_support=10)
    assert bubble.rows[0]["predicates"] == {"region": "ap-south"}
    assert bubble.rows[0]["outcomes"] == plan.wrong_by_region["ap-south"]


def test_store_join(plan: Plan) -> None:
    check_slice(Spans(ChdbEngine(plan.store)), plan)


def test_other_outcomes_are_unchanged_by_labels(plan: Plan) -> None:
    spans = Spans(ChdbEngine(plan.store))
    result = spans.slice(by=["region"], since="1h", outcome="error")
    assert {r["region"]: r["requests"] for r in result.rows} == plan.requests_by_region


# -- the ClickHouse exporter's tables --------------------------------------------------------------


@pytest.fixture(scope="module")
def tables(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbTableEngine]:
    database = "iw_test_feedback"
    yield exporter_tables(plan.store, database, tmp_path_factory.mktemp("rows"))
    _ChdbSession.get().query(f"DROP DATABASE IF EXISTS {database}")


def test_exporter_tables_join(plan: Plan, tables: ChdbTableEngine) -> None:
    check_slice(Spans(tables), plan)


def test_without_a_logs_table_only_span_attributes_count(
    plan: Plan, tables: ChdbTableEngine
) -> None:
    spans = Spans(ChdbTableEngine(tables.relation()))
    result = spans.slice(by=["region"], since="1h", outcome="wrong")
    assert sum(r["wrong"] for r in result.rows) == 0  # the spans carry no correctness


@pytest.mark.parametrize("engine", ["store", "tables"])
def test_hostile_values_are_data(plan: Plan, tables: ChdbTableEngine, engine: str) -> None:
    spans = Spans(ChdbEngine(plan.store) if engine == "store" else tables)
    result = spans.slice(by=["ml.request.id"], since="1h", outcome="wrong",
                         where={"ml.request.id": HOSTILE_ID})  # fmt: skip
    assert [(r["ml.request.id"], r["requests"]) for r in result.rows] == [(HOSTILE_ID, 1)]
    check_slice(spans, plan)  # nothing was dropped or altered


def test_a_click_reported_first_does_not_hide_a_later_label(tmp_path: Path) -> None:
    """Click records are ``ml.feedback`` records too, by request id; the late join must skip
    them, or a click before the label leaves the prediction unjudged."""
    store = tmp_path / "store"
    configure_feedback()
    iw.configure(service_name="serving", store=str(store), metric_readers=[])
    try:
        with iw.context(request_id="r-1", region="eu"), iw.inference("recs", "1") as rec:
            rec.record_prediction("relevant")
            rec.record_ranking(["a", "b", "c"])
        assert feedback("r-1", clicks=["b"]) == "joined"  # here, first
    finally:
        iw.shutdown()
        configure_feedback()  # the label comes from a process that never saw the prediction
    assert run_labeller(store, [("r-1", "irrelevant", 2e9, "recs")]) == ["unknown"]
    result = Spans(ChdbEngine(store)).slice(by=["region"], since="1h", outcome="wrong")
    assert [(row["region"], row["requests"], row["wrong"]) for row in result.rows] == [("eu", 1, 1)]
