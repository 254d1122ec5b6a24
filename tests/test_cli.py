"""The `inferwatch` command line, run in-process against a small OTLP JSON store.

The store is written directly as OTLP JSON lines (the collector `file` exporter's format, also
the local store's): a planted problem (ap-south inputs with NaNs fail), three slow requests,
spans outside the window, a second model, a span that is not an inference, a malformed line and
a still-open segment.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from inferwatch.cli import commands as cli

Store = tuple[Path, dict[str, Any]]
Capsys = pytest.CaptureFixture[str]
NOW_NS = time.time_ns()
MINUTE_NS = 60 * 1_000_000_000


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _span(
    i: int, start_ns: int, duration_ns: int, attributes: dict[str, Any], error: str = ""
) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": f"{i + 1:032x}",
        "spanId": f"{i + 1:016x}",
        "parentSpanId": "",
        "name": f"inference {attributes.get('ml.model.name', 'other')}",
        "kind": 1,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + duration_ns),
        "attributes": [{"key": k, "value": _value(v)} for k, v in attributes.items()],
        "status": {"code": 2, "message": error} if error else {},
    }
    if error:
        span["attributes"].append({"key": "error.type", "value": _value(error.split(":")[0])})
    return span


def _line(spans: list[dict[str, Any]]) -> str:
    resource = {"attributes": [{"key": "service.name", "value": _value("fraud-api")}]}
    request = {
        "resourceSpans": [
            {
                "resource": resource,
                "scopeSpans": [{"scope": {"name": "inferwatch"}, "spans": spans}],
            }
        ]
    }
    return json.dumps(request, separators=(",", ":")) + "\n"


def make_store(directory: Path) -> dict[str, Any]:
    """Write the store; returns what the queries should find in the last hour."""
    rng = random.Random(0)
    spans: list[dict[str, Any]] = []
    expected: dict[str, Any] = {"requests": Counter(), "errors": Counter(), "nan": Counter()}
    for i in range(600):
        region = ("eu", "us", "ap-south")[i % 3]
        cohort = "new" if rng.random() < 0.4 else "returning"
        nan = 3 if region == "ap-south" and rng.random() < 0.5 else 0
        duration = rng.randint(2, 20) * 1_000_000
        attributes: dict[str, Any] = {
            "ml.model.name": "fraud",
            "ml.model.version": "3.1",
            "ml.request.id": f"req-{i:04d}",
            "region": region,
            "cohort": cohort,
            "ml.input.nan_count": nan,
            "ml.input.batch_size": 1,
        }
        if i < 3:  # the three slow requests
            attributes["ml.request.id"] = f"slow-{i}"
            duration = (900 + 10 * i) * 1_000_000
        if i == 10:
            attributes.update({"ml.input.length": 812.5, "ml.input.length.max": 5000})
        elif i % 50 == 7:
            attributes["ml.input.length"] = 40 + i
        start = NOW_NS - rng.randint(1, 5 * MINUTE_NS)
        spans.append(_span(i, start, duration, attributes, "ValueError: input has NaN" * bool(nan)))
        expected["requests"][region, cohort] += 1
        expected["errors"][region, cohort] += bool(nan)
        expected["nan"][region] += bool(nan)
    # Outside the one-hour window: must never show up.
    for i in range(600, 650):
        attributes = {"ml.model.name": "fraud", "region": "old-region", "cohort": "new"}
        spans.append(_span(i, NOW_NS - 180 * MINUTE_NS, 5_000_000, attributes))
    # Another model, and a span that is not an inference at all.
    for i in range(650, 670):
        attributes = {"ml.model.name": "churn", "ml.request.id": f"churn-{i}", "region": "eu"}
        spans.append(_span(i, NOW_NS - MINUTE_NS, 1_000_000, attributes))
    spans.append(_span(999, NOW_NS - MINUTE_NS, 5_000_000_000, {"region": "eu"}))
    directory.mkdir(parents=True)
    closed = directory / "traces-20261127T000000-4242-aaaa.jsonl"
    with closed.open("w") as f:
        for j in range(0, 660, 100):
            f.write(_line(spans[j : min(j + 100, 660)]))
            if j == 300:
                f.write("this line is not JSON\n")
    (directory / "traces-20261127T000500-4243-bbbb.open.jsonl").write_text(_line(spans[660:]))
    expected["fraud_in_window"] = 600
    expected["all_in_window"] = 620  # fraud + churn; the non-inference span is not counted
    return expected


@pytest.fixture
def store(tmp_path: Path) -> Store:
    # A fresh directory per test: the chDB engine keeps one table per directory per process.
    directory = tmp_path / "otlp"
    return directory, make_store(directory)


def run(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_slice_table(store: Store, capsys: Capsys) -> None:
    directory, _ = store
    code, out, err = run(
        capsys, "slice", "--by", "region,cohort", "--since", "1h", "--store", str(directory)
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["region", "┃", "cohort", "┃"]
    assert "error_rate" in lines[0] and "nan_share" in lines[0]
    assert lines[2].split()[0] == "ap-south"  # sorted by errors: the planted problem first
    assert "old-region" not in out
    assert "note: skipped 1 malformed or torn lines" in err


def test_slice_json_matches_the_data(store: Store, capsys: Capsys) -> None:
    directory, expected = store
    code, out, _ = run(
        capsys,
        "slice",
        "--by",
        "region, cohort",
        "--since",
        "1h",
        "--store",
        str(directory),
        "--model",
        "fraud",
        "--format",
        "json",
    )
    assert code == 0
    rows = json.loads(out)
    assert sum(r["requests"] for r in rows) == expected["fraud_in_window"]
    for row in rows:
        key = (row["region"], row["cohort"])
        assert row["requests"] == expected["requests"][key]
        assert row["errors"] == expected["errors"][key]
        assert row["error_rate"] == pytest.approx(row["errors"] / row["requests"])
    assert {r["region"] for r in rows if r["errors"]} == {"ap-south"}
    assert list(rows[0]) == [
        "region",
        "cohort",
        "requests",
        "errors",
        "error_rate",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "nan_share",
    ]


def test_slice_csv_with_filters_and_slow_outcome(store: Store, capsys: Capsys) -> None:
    directory, expected = store
    code, out, _ = run(
        capsys,
        "slice",
        "--by",
        "region",
        "--store",
        str(directory),
        "--where",
        "cohort=new",
        "--outcome",
        "slow",
        "--slow-ms",
        "500",
        "--format",
        "csv",
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["region"] for r in rows} == {"eu", "us", "ap-south"}
    for row in rows:
        assert int(row["requests"]) == expected["requests"][row["region"], "new"]
    assert sum(int(r["slow"]) for r in rows) <= 3  # the slow requests in cohort "new"
    assert "slow_rate" in rows[0]


def test_slice_all_models_and_missing_tag(store: Store, capsys: Capsys) -> None:
    directory, expected = store
    code, out, _ = run(
        capsys, "slice", "--by", "cohort", "--store", str(directory), "--format", "json"
    )
    assert code == 0
    rows = {r["cohort"]: r for r in json.loads(out)}
    assert sum(r["requests"] for r in rows.values()) == expected["all_in_window"]
    assert rows["(missing)"]["requests"] == 20  # the churn spans have no cohort


def test_outliers_by_duration(store: Store, capsys: Capsys) -> None:
    directory, _ = store
    code, out, err = run(
        capsys,
        "outliers",
        "--since",
        "10m",
        "--store",
        str(directory),
        "--limit",
        "3",
        "--format",
        "json",
    )
    assert code == 0
    rows = json.loads(out)
    assert [r["request_id"] for r in rows] == ["slow-2", "slow-1", "slow-0"]
    top = rows[0]
    assert set(top) == {
        "time",
        "trace_id",
        "request_id",
        "model",
        "version",
        "duration_ms",
        "status",
        "input_length",
        "nan_count",
        "tags",
    }
    assert top["duration_ms"] == pytest.approx(920.0)
    assert top["trace_id"] == f"{3:032x}"
    assert top["model"] == "fraud" and top["version"] == "3.1"
    assert top["time"].endswith("Z") and top["time"][10] == "T"
    assert set(top["tags"]) == {"region", "cohort"}  # ml.* attributes are not tags
    assert "note: the 3 largest by duration" in err  # notes go to stderr with --format json


def test_outliers_by_nan_count(store: Store, capsys: Capsys) -> None:
    directory, expected = store
    code, out, _ = run(
        capsys,
        "outliers",
        "--store",
        str(directory),
        "--by",
        "nan_count",
        "--limit",
        "1000",
        "--format",
        "json",
    )
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == expected["nan"]["ap-south"]  # only spans with NaNs
    assert all(r["nan_count"] == 3 and r["tags"]["region"] == "ap-south" for r in rows)
    assert all(r["status"] == "Error (ValueError)" for r in rows)


def test_outliers_by_input_length(store: Store, capsys: Capsys) -> None:
    directory, _ = store
    code, out, _ = run(
        capsys, "outliers", "--store", str(directory), "--by", "input_length", "--format", "csv"
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["request_id"] == "req-0010" and rows[0]["input_length"] == "5000"
    assert len(rows) == 1 + 12  # the batch with a max length, and i % 50 == 7


def test_outliers_rejects_bad_options(store: Store) -> None:
    from inferwatch import query

    spans = query.open(store[0])
    with pytest.raises(ValueError, match="by 'size' is not one of duration, input_length"):
        spans.outliers(by="size")
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        spans.outliers(limit=0)


def test_outliers_table_and_empty_window(store: Store, capsys: Capsys) -> None:
    directory, _ = store
    code, out, _ = run(capsys, "outliers", "--store", str(directory), "--limit", "2")
    assert code == 0
    assert "slow-2" in out and f"{3:032x}" in out and "cohort=" in out
    assert "note: the 2 largest by duration" in out
    code, out, _ = run(
        capsys,
        "outliers",
        "--store",
        str(directory),
        "--since",
        "1h",
        "--until",
        "50m",
        "--model",
        "fraud",
    )
    assert code == 0
    assert "note: no inference spans in the window" in out


def test_store_from_environment_and_default(
    store: Store, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    directory, _ = store
    monkeypatch.setenv("INFERWATCH_STORE", str(directory))
    code, out, _ = run(capsys, "outliers", "--limit", "1", "--format", "json")
    assert code == 0 and json.loads(out)[0]["request_id"] == "slow-2"

    monkeypatch.delenv("INFERWATCH_STORE")
    work = tmp_path / "work"
    shutil.copytree(directory, work / ".inferwatch" / "store")
    monkeypatch.chdir(work)
    code, out, _ = run(capsys, "outliers", "--limit", "1", "--format", "json")
    assert code == 0 and json.loads(out)[0]["request_id"] == "slow-2"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["slice", "--by", "region", "--since", "yesterday"], "--since 'yesterday' is not a time"),
        (["slice", "--by", "region", "--outcome", "late"], "invalid choice: 'late'"),
        (["bubble-up", "--outcome", "late"], "invalid choice: 'late'"),
        (["outliers", "--by", "size"], "invalid choice: 'size'"),
        (["outliers", "--limit", "0"], "must be at least 1"),
        (["slice", "--since", "1h"], "the following arguments are required: --by"),
        (["slice", "--by", "region", "--where", "region"], "use TAG=VALUE"),
        (["slice", "--by", "region", "--slow-ms", "100"], "--slow-ms applies to --outcome slow"),
        (["slice", "--by", "region", "--since", "10m", "--until", "1h"], "is not before"),
        (["slice", "--by", ",", "--since", "1h"], "names no tag"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    argv: list[str], message: str, store: Store, capsys: Capsys
) -> None:
    directory, _ = store
    store_option = ["--store", str(directory)] if argv[0] != "frobnicate" else []
    code, out, err = run(capsys, *argv, *store_option)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("inferwatch: error: ") and message in err


def test_missing_store_is_one_line_exit_2(tmp_path: Path, capsys: Capsys) -> None:
    code, out, err = run(capsys, "slice", "--by", "region", "--store", str(tmp_path / "nope"))
    assert code == 2 and out == ""
    assert err.startswith("inferwatch: error: no telemetry store at ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unreachable_clickhouse_is_one_line_exit_1(capsys: Capsys) -> None:
    pytest.importorskip("clickhouse_connect")
    url = "clickhouse://127.0.0.1:9/otel"  # nothing listens on the discard port
    code, out, err = run(capsys, "slice", "--by", "region", "--store", url)
    assert code == 1 and out == ""
    assert err.startswith("inferwatch: error: ") and len(err.strip().splitlines()) == 1, err


def test_help_and_no_command(capsys: Capsys) -> None:
    assert cli.main(["--help"]) == 0
    assert "bubble-up" in capsys.readouterr().out
    assert cli.main(["outliers", "--help"]) == 0
    assert "--by {duration,input_length,nan_count}" in capsys.readouterr().out
    assert cli.main([]) == 2
    assert "usage: inferwatch" in capsys.readouterr().err


def test_spinner_only_touches_stderr(
    store: Store, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, _ = store
    monkeypatch.setattr(cli, "_stderr_is_tty", lambda: True)
    code, out, _ = run(
        capsys, "outliers", "--store", str(directory), "--limit", "1", "--format", "json"
    )
    assert code == 0 and json.loads(out)[0]["request_id"] == "slow-2"


def test_two_runs_in_one_process_agree(store: Store, capsys: Capsys) -> None:
    directory, _ = store
    argv = ["slice", "--by", "region", "--store", str(directory), "--format", "json"]
    first = run(capsys, *argv)[1]
    assert json.loads(run(capsys, *argv)[1]) == json.loads(first)


def test_torn_last_line_of_a_closed_segment(store: Store, capsys: Capsys) -> None:
    directory, expected = store
    (closed,) = directory.glob("traces-*-aaaa.jsonl")
    with closed.open("a") as f:
        f.write(_line([_span(5000, NOW_NS, 1, {"ml.model.name": "fraud"})])[:150])
    code, out, err = run(
        capsys,
        "slice",
        "--by",
        "region",
        "--store",
        str(directory),
        "--model",
        "fraud",
        "--format",
        "json",
    )
    assert code == 0, err
    assert sum(r["requests"] for r in json.loads(out)) == expected["fraud_in_window"]


def test_bubble_up(store: Store, capsys: Capsys) -> None:
    pytest.importorskip("inferwatch.query.bubble")
    directory, _ = store
    code, out, err = run(
        capsys,
        "bubble-up",
        "--since",
        "1h",
        "--store",
        str(directory),
        "--max-order",
        "2",
        "--format",
        "json",
    )
    assert code == 0, err
    rows = json.loads(out)
    assert rows and "ap-south" in json.dumps(rows[0])
    code, out, err = run(capsys, "bubble-up", "--store", str(directory), "--keys", "region,cohort")
    assert code == 0, err
    assert "ap-south" in out


def _console_script() -> str:
    found = Path(sys.executable).with_name("inferwatch")
    if found.exists():
        return str(found)
    script = shutil.which("inferwatch")
    if script is None:
        pytest.skip("the inferwatch console script is not installed (pip install -e .)")
    return script


def test_console_script(store: Store) -> None:
    directory, _ = store
    env = {**os.environ, "INFERWATCH_STORE": str(directory)}
    script = _console_script()
    done = subprocess.run(
        [script, "outliers", "--limit", "3", "--format", "csv"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["request_id"] for r in rows] == ["slow-2", "slow-1", "slow-0"]
    done = subprocess.run(
        [script, "slice", "--by", "region", "--since", "soon"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
