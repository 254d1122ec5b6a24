"""The label joiner (`inferwatch.delayed_labels.joiner`) on real stores written by the SDK.

Predictions and labels are written through ``iw.monitor`` and ``iw.feedback`` into a store (the
labels as a process without the prediction writes them: remembering off), then joined. Each test
checks the exported counters against what it planted, and that nothing is counted twice: not on
a second pass, not after a failed export, not for a label a serving process counted itself.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("chdb")

from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult

import inferwatch as iw
from inferwatch.cli import commands as cli
from inferwatch.delayed_labels import configure_feedback, feedback
from inferwatch.delayed_labels.joiner import LabelJoiner, join_labels
from inferwatch.delayed_labels.ledger import STATE_DIRECTORY, JoinError
from inferwatch.query.engines import _ChdbSession
from tests._exporter_tables import exporter_tables
from tests._otlp import OtlpReceiver


class Capture:
    """A metric exporter that keeps what it is given, or fails when told to."""

    def __init__(self) -> None:
        self.exports: list[Any] = []
        self.fail = False

    def export(self, data: Any, **_: Any) -> MetricExportResult:
        if self.fail:
            return MetricExportResult.FAILURE
        self.exports.append(data)
        return MetricExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def points(self, name: str) -> list[tuple[dict[str, Any], dict[str, Any], float]]:
        """(resource, attributes, value) of ``name`` in the last export."""
        found = []
        for resource_metrics in self.exports[-1].resource_metrics:
            resource = dict(resource_metrics.resource.attributes)
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        assert metric.data.is_monotonic
                        found += [
                            (resource, dict(p.attributes), p.value) for p in metric.data.data_points
                        ]
        return found

    def by(self, name: str, *keys: str) -> dict[tuple[Any, ...], float]:
        totals: dict[tuple[Any, ...], float] = {}
        for _, attributes, value in self.points(name):
            key = tuple(attributes.get(k) for k in keys)
            totals[key] = totals.get(key, 0) + value
        return totals


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    """A store written by a service whose labels all come from elsewhere (no index)."""
    path = tmp_path / "store"
    iw.configure(service_name="scoring", store=str(path), metric_tags=["region"])
    configure_feedback(max_predictions=0)
    yield path
    iw.shutdown()
    configure_feedback()


def joiner(store: Path, capture: Capture, **options: Any) -> LabelJoiner:
    options.setdefault("grace", 0.5)
    return LabelJoiner(store, exporter=capture, metric_tags=["region"], **options)


@iw.monitor(model="churn", version="3", prediction_kind="classification")
def classify(x: str) -> str:
    return x


@iw.monitor(model="price")
def regress(x: float) -> float:
    return x


def serve(request_id: str, fn: Any, value: Any, region: str = "eu") -> None:
    with iw.context(request_id=request_id, region=region):
        fn(value)


def test_labels_from_elsewhere_are_judged_per_region_and_window(store: Path) -> None:
    planted = {"eu": (20, 18), "us": (10, 4)}  # region: (labels, right)
    for region, (n, right) in planted.items():
        for i in range(n):
            serve(f"{region}-{i}", classify, "stay", region)
            assert feedback(f"{region}-{i}", "stay" if i < right else "leave") == "unknown"
    for i, (predicted, label) in enumerate([(3.0, 1.0), (5.0, 6.0), (2.0, 2.0)]):
        serve(f"p-{i}", regress, predicted, "us")
        feedback(f"p-{i}", label)
    iw.flush()
    capture = Capture()
    result = joiner(store, capture).run()
    assert result.exported and result.judged == 33 and result.unjoined == {}, result
    judged = capture.by("ml.label.judged", "region", "ml.label.outcome")
    assert judged == {
        ("eu", "correct"): 18, ("eu", "wrong"): 2, ("us", "correct"): 4, ("us", "wrong"): 6,
        ("us", "scored"): 3,
    }  # fmt: skip
    assert capture.by("ml.label.error.abs", "ml.model.name") == {("price",): 3.0}
    assert capture.by("ml.label.error.squared", "ml.model.name") == {("price",): 5.0}
    assert sum(capture.by("ml.label.count").values()) == 33
    outcomes = capture.by("ml.label.class.outcomes", "region", "ml.label.class", "ml.label.outcome")
    assert outcomes[("us", "stay", "tp")] == 4 and outcomes[("us", "stay", "fp")] == 6
    assert outcomes[("us", "leave", "fn")] == 6
    # Out under the serving service (the backend's job), with the model's attributes and window.
    (resource, attributes, _) = capture.points("ml.label.judged")[0]
    assert resource["service.name"] == "scoring"
    assert resource["service.instance.id"].startswith("inferwatch-labels-")
    assert {"ml.model.name", "ml.window", "ml.window.start"} <= attributes.keys()
    start = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime())
    assert {p[1]["ml.window.start"] for p in capture.points("ml.label.judged")} == {start}


def test_a_second_pass_and_a_restart_count_nothing_twice(store: Path) -> None:
    for i in range(5):
        serve(f"r-{i}", classify, "stay")
        feedback(f"r-{i}", "stay")
    iw.flush()
    capture = Capture()
    first = joiner(store, capture).run()
    before = capture.points("ml.label.judged")
    assert first.judged == 5
    again = joiner(store, capture).run()  # a new joiner: as after a restart, or a second --once
    assert again.judged == 0 and again.exported
    assert capture.points("ml.label.judged") == before, (
        "the same cumulative totals, under the same instance id"
    )
    serve("r-new", classify, "stay")
    feedback("r-new", "leave")
    iw.flush()
    third = joiner(store, capture).run()
    assert third.judged == 1
    assert capture.by("ml.label.judged", "ml.label.outcome") == {("correct",): 5, ("wrong",): 1}


def test_a_failed_export_commits_nothing_and_the_next_pass_counts_it_once(store: Path) -> None:
    for i in range(4):
        serve(f"r-{i}", classify, "stay")
        feedback(f"r-{i}", "stay")
    iw.flush()
    capture = Capture()
    capture.fail = True
    with pytest.raises(JoinError, match="not exported"):
        join_labels(store, exporter=capture, metric_tags=["region"])
    assert not (store / STATE_DIRECTORY / "joiner.state").exists()
    capture.fail = False
    assert joiner(store, capture).run().judged == 4
    assert capture.by("ml.label.judged", "ml.label.outcome") == {("correct",): 4, ("wrong",): 0}


def test_two_joiners_never_run_a_pass_at_once(store: Path) -> None:
    serve("r", classify, "stay")
    feedback("r", "stay")
    iw.flush()
    capture = Capture()
    j = joiner(store, capture)
    (store / STATE_DIRECTORY).mkdir()
    with (store / STATE_DIRECTORY / "lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another joiner's pass
        with pytest.raises(JoinError, match="another label joiner"):
            j.run()
        fcntl.flock(held, fcntl.LOCK_UN)
    assert j.run().judged == 1


def test_a_label_waits_for_its_prediction_then_counts_as_unknown_once(store: Path) -> None:
    feedback("early", "stay")  # its prediction is not (yet) in the store
    iw.flush()
    capture = Capture()
    j = joiner(store, capture, grace=60)
    assert j.run().pending == 1
    assert capture.by("ml.label.unjoined", "ml.label.status") == {}
    late = j.run(now=time.time() + 120)
    assert late.unjoined == {"unknown": 1} and late.pending == 0
    assert capture.by("ml.label.unjoined", "ml.label.status", "ml.label.join") == {
        ("unknown", "joiner"): 1
    }
    serve("early", classify, "stay")  # the prediction shows up after all: not counted again
    iw.flush()
    assert j.run(now=time.time() + 180).judged == 0


def test_batches_from_elsewhere_are_judged_row_by_row(store: Path) -> None:
    with iw.context(request_id="classes", region="eu"):
        classify(np.array(["stay", "leave", "stay"]))
    feedback("classes", ["stay", "stay", "stay"])  # two rows right, one wrong
    with iw.context(request_id="probabilities", region="eu"):  # a NaN row has no class
        classify(np.array([[0.9, 0.1], [np.nan, 0.5], [0.2, 0.8]]))
    feedback("probabilities", ["0", "1", "1"])
    with iw.context(request_id="values", region="eu"):
        regress(np.array([1.0, 2.0, 4.0]))
    feedback("values", [2.0, 2.0, 5.0])  # errors -1, 0, -1
    with iw.context(request_id="short", region="eu"):
        classify(np.array(["stay", "leave"]))
    feedback("short", ["stay"])  # one label for two rows: the serving process would refuse it
    with iw.context(request_id="long", region="eu"):
        classify(np.array(["stay"] * 300))  # more rows than the span holds
    feedback("long", ["stay"] * 300)
    iw.flush()
    capture = Capture()
    result = joiner(store, capture).run()
    assert result.judged == 9 and result.unjoined == {"invalid": 1, "batch": 1}, result
    judged = capture.by("ml.label.judged", "ml.model.name", "ml.label.outcome")
    assert judged == {
        ("churn", "correct"): 4, ("churn", "wrong"): 1, ("price", "scored"): 3,
    }  # fmt: skip
    assert capture.by("ml.label.count", "ml.model.name") == {("churn",): 6, ("price",): 3}
    assert capture.by("ml.label.error.abs", "ml.model.name") == {("price",): 2.0}
    assert capture.by("ml.label.error.squared", "ml.model.name") == {("price",): 2.0}


def test_duplicates_invalid_and_expired_labels_are_counted_not_judged(store: Path) -> None:
    serve("dup", classify, "stay")
    feedback("dup", "stay")
    feedback("dup", "leave")  # the first label counts
    serve("bad", regress, 1.0)
    feedback("bad", "not-a-number")
    iw.flush()
    capture = Capture()
    result = joiner(store, capture).run()
    assert result.judged == 1
    assert result.unjoined == {"duplicate": 1, "invalid": 1}, result
    assert capture.by("ml.label.judged", "ml.label.outcome") == {("correct",): 1, ("wrong",): 0}
    # The same labels, their serving windows no longer kept: expired.
    capture = Capture()
    other = LabelJoiner(
        store, exporter=capture, window=1, windows=1, grace=0.5, metric_tags=["region"]
    )
    state = store / STATE_DIRECTORY
    for path in state.iterdir():
        path.unlink()
    assert other.run(now=time.time() + 5).unjoined["expired"] == 2


def test_class_names_are_capped_as_the_serving_process_caps_them(store: Path) -> None:
    for i, (predicted, label) in enumerate([("a", "a"), ("b", "c"), ("d", "d"), ("e", "a")]):
        serve(f"r-{i}", classify, predicted)
        feedback(f"r-{i}", label)
    iw.flush()
    capture = Capture()
    assert joiner(store, capture, max_classes=3).run().judged == 4
    outcomes = capture.by("ml.label.class.outcomes", "ml.label.class", "ml.label.outcome")
    assert {c for c, _ in outcomes} == {"a", "b", "c", "__other__"}
    # Right and wrong are judged on the names as given, before the capping.
    assert capture.by("ml.label.judged", "ml.label.outcome") == {("correct",): 2, ("wrong",): 2}


def test_each_model_of_a_request_is_judged_separately(store: Path) -> None:
    with iw.context(request_id="both", region="eu"):
        classify("stay")
        regress(2.0)
    with iw.context(request_id="one", region="eu"):
        classify("stay")
        regress(2.0)
    feedback("both", "stay")  # no model named: judges each model's prediction (the price: invalid)
    feedback("one", "leave", model="churn")
    iw.flush()
    capture = Capture()
    result = joiner(store, capture).run()
    assert result.judged == 2 and result.unjoined == {"invalid": 1}, result
    assert capture.by("ml.label.judged", "ml.label.outcome") == {("correct",): 1, ("wrong",): 1}


def test_labels_a_serving_process_counted_in_exported_metrics_are_skipped(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    reader = InMemoryMetricReader()  # metrics leave the process: its joins are counted there
    iw.configure(service_name="scoring", store=str(store), metric_readers=[reader])
    configure_feedback()
    try:
        for i in range(3):
            serve(f"r-{i}", classify, "stay")
        assert feedback("r-0", "stay") == "joined"
        iw.flush()
    finally:
        iw.shutdown()
    configure_feedback(max_predictions=0)
    iw.configure(service_name="labeller", store=str(store), metric_readers=[])
    try:
        assert feedback("r-1", "leave") == "unknown"
        iw.flush()
    finally:
        iw.shutdown()
        configure_feedback()
    capture = Capture()
    result = joiner(store, capture).run()
    assert result.judged == 1, "r-0 was counted by the serving process, r-1 is counted here"
    assert capture.by("ml.label.judged", "ml.label.outcome") == {("correct",): 0, ("wrong",): 1}


def test_labels_judged_where_metrics_stay_in_the_process_are_counted(store: Path) -> None:
    configure_feedback()  # remembering on, but the store alone: no metric leaves the process
    serve("r", classify, "stay")
    assert feedback("r", "stay") == "joined"
    iw.flush()
    capture = Capture()
    assert joiner(store, capture).run().judged == 1


def test_key_files_are_compacted_and_still_exclude_what_was_counted(store: Path) -> None:
    capture = Capture()
    j = None
    for i in range(20):
        serve(f"r-{i}", classify, "stay")
        feedback(f"r-{i}", "stay")
        iw.flush()
        j = j or joiner(store, capture)
        assert j.run().judged == 1
    files = sorted(p.name for p in (store / STATE_DIRECTORY).glob("keys-*"))
    assert len(files) <= 17, files
    assert j.run().judged == 0
    state = json.loads((store / STATE_DIRECTORY / "joiner.state").read_text())
    assert state["passes"] == 21
    assert capture.by("ml.label.judged", "ml.label.outcome") == {("correct",): 20, ("wrong",): 0}


def test_a_torn_line_is_skipped_and_said(store: Path) -> None:
    serve("r", classify, "stay")
    feedback("r", "stay")
    iw.shutdown()  # closes the segments
    segment = next(p for p in store.iterdir() if p.name.startswith("logs-"))
    with segment.open("a") as out:
        out.write('{"resourceLogs": [{"scopeLo')  # a writer killed mid-line
    capture = Capture()
    result = joiner(store, capture).run()
    assert result.judged == 1
    assert any("torn or malformed" in note for note in result.notes), result.notes


def test_bad_arguments_are_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no telemetry store"):
        LabelJoiner(tmp_path / "missing", exporter=Capture())
    (tmp_path / "store").mkdir()
    for options, message in (
        ({"grace": "1d", "lookback": "1h"}, "grace"),
        ({"window": "soon"}, "window"),
        ({"windows": 0}, "windows"),
        ({"metric_tags": [""]}, "tag"),
    ):
        with pytest.raises(ValueError, match=message):
            LabelJoiner(tmp_path / "store", exporter=Capture(), **options)


def test_the_command_line_exits_1_when_the_export_fails_and_2_on_bad_input(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")  # seconds, retries included
    serve("r", classify, "stay")
    feedback("r", "stay")
    iw.flush()
    # Nothing listens on port 9 of the loopback: the export fails, nothing is committed.
    argv = ["labels", "join", str(store), "--once", "--endpoint", "http://127.0.0.1:9"]
    assert cli.main([*argv, "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["judged"] == 1 and out["exported"] is False
    assert not (store / STATE_DIRECTORY / "joiner.state").exists()
    assert cli.main(["labels", "join", str(store.parent / "nope")]) == 2
    assert cli.main(["labels", "join", str(store), "--every", "never"]) == 2
    assert cli.main(["labels", "join", str(store), "--grace", "2d"]) == 2


def test_every_keeps_passing_through_failed_exports_and_stops_on_sigterm(store: Path) -> None:
    serve("r", classify, "stay")
    feedback("r", "stay")
    iw.shutdown()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "INFERWATCH_"))}
    env["OTEL_EXPORTER_OTLP_TIMEOUT"] = "1"

    def every(endpoint: str, seconds: float) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable, "-m", "inferwatch.cli.commands", "labels", "join", str(store),
            "--every", "1s", "--endpoint", endpoint, "--grace", "1s",
        ]  # fmt: skip
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(seconds)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(command, proc.returncode, out.decode(), err.decode())

    down = every("http://127.0.0.1:9", 6)  # nothing listens there
    assert down.returncode == 0, down.stderr
    lines = down.stdout.splitlines()
    assert len(lines) >= 3 and all("nothing committed" in line for line in lines[:-1]), lines
    assert lines[-1] == "stopped"
    with OtlpReceiver() as receiver:
        up = every(receiver.http_endpoint, 4)
        assert up.returncode == 0, up.stderr
        assert "judged 1 predictions" in up.stdout and "exported and committed" in up.stdout
        judged = [p for p in receiver.metrics() if p["name"] == "ml.label.judged"]
        assert {p["value"] for p in judged if p["attributes"]["ml.label.outcome"] == "correct"} == {
            1
        }


# -- a ClickHouse source: the exporter's tables (chDB), the ledger in two tables beside them ------


def test_the_exporter_tables_are_joined_once_with_the_ledger_in_clickhouse(
    store: Path, tmp_path: Path
) -> None:
    hostile = "r-'; DROP TABLE t; --\\\t\n"
    for i, request_id in enumerate([hostile, *(f"r-{i}" for i in range(1, 6))]):
        serve(request_id, classify, "stay", "eu" if i % 2 else "us")
        feedback(request_id, "stay" if i < 4 else "leave")
    feedback("never-served", "stay")
    iw.shutdown()
    database = "iw_test_joiner"
    engine = exporter_tables(store, database, tmp_path, service="scoring")
    try:
        capture = Capture()
        later = time.time() + 5  # past the grace: the label never served is unknown
        first = LabelJoiner(engine, exporter=capture, metric_tags=["region"], grace=0.5).run(later)
        assert first.judged == 6 and first.unjoined == {"unknown": 1}, first
        judged = capture.by("ml.label.judged", "ml.label.outcome")
        assert judged == {("correct",): 4, ("wrong",): 2}
        assert {r["service.name"] for r, _, _ in capture.points("ml.label.judged")} == {"scoring"}
        # A restart: the state and keys come from the tables; nothing is counted twice.
        again = LabelJoiner(engine, exporter=capture, metric_tags=["region"], grace=0.5).run(later)
        assert again.judged == 0 and again.unjoined == {} and again.exported
        assert capture.by("ml.label.judged", "ml.label.outcome") == judged
        # Keys a pass inserted without committing its state are not counted, and deleted.
        engine.command(
            f"INSERT INTO {database}.inferwatch_label_keys VALUES ('r-1', 'churn', 0, 99)", {}
        )
        capture.fail = True
        assert not LabelJoiner(engine, exporter=capture, grace=0.5).run().exported
        (passes,) = engine.query(f"SELECT max(Pass) FROM {database}.inferwatch_label_keys", {})[0]
        assert passes == 1, "the stale keys of pass 99 were deleted"
    finally:
        _ChdbSession.get().query(f"DROP DATABASE IF EXISTS {database}")


def test_a_clickhouse_server_that_is_down_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"127\.0\.0\.1") as raised:
        LabelJoiner("clickhouse://127.0.0.1:9/otel", exporter=Capture())
    assert "Traceback" not in str(raised.value)
