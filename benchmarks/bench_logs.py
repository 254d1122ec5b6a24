"""Incident debugging over 1M spans and 1M log records: `iw.query` (chDB) against pandas/pyarrow.

    .venv/bin/python benchmarks/bench_logs.py                  # 1M + 1M, a few minutes on 2 cores
    .venv/bin/python benchmarks/bench_logs.py --spans 200000   # quicker

The store is bench_query's (1M inference spans over 45 minutes, 20 closed segments, 8 tags) plus
one log record per request in 20 ``logs-*`` segments, on the request's trace: an info line
("scored request in N ms") on successes, a warning ("feature store timeout after N ms") on the
planted failures and an error line on the other failures, with the request's region, cohort and
request id as attributes.

Measured in one process, each warm query ``--repeats`` times (min and median):

* cold: ``iw.query.open(dir)`` and the first log search (chDB converts the log segments), then
  the first slice (it converts the trace segments);
* warm: a log search (a region, severity >= warning, text in the body, newest 100), log counts
  by region and severity, the logs of the failing requests counted by severity (a join on trace
  id), a timeline (``slice(by=["region"], every="1m")`` with change points), and the whole
  ``incident()`` report;
* the same questions in pandas on DataFrames with pyarrow-backed string columns, loaded from the
  same files with ``json.loads`` (the load is reported separately; only the queries are timed
  against chDB's). Results are checked against pandas' where both compute the same thing.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _common import print_table
from bench_query import SEGMENTS, TAGS, draw, main, otlp_items, timed, write_spans

DISTRIBUTIONS = ("inferwatch", "chdb", "pandas", "pyarrow", "numpy")
RECORDS_PER_LINE = 500
REGION = "us-east"
TEXT = "TIMEOUT"


def write_logs(directory: Path, drawn: dict[str, Any], seed: int = 1) -> dict[str, int]:
    """One log record per drawn span, on its trace, as OTLP JSON lines in ``logs-*`` segments."""
    n, columns, error, planted = drawn["n"], drawn["columns"], drawn["error"], drawn["planted"]
    rng = np.random.default_rng(seed)
    took = rng.integers(1, 999, n)
    times = drawn["start"] + drawn["duration"] // 2
    regions, cohorts = columns["region"], columns["cohort"]
    resource = (
        '{"resourceLogs":[{"resource":{"attributes":['
        '{"key":"service.name","value":{"stringValue":"fraud-api"}}]},'
        '"scopeLogs":[{"scope":{"name":"fraud-api"},"logRecords":['
    )
    kinds = {  # (severity number, text, body)
        "info": (9, "INFO", "scored request in {} ms"),
        "warn": (13, "WARN", "feature store timeout after {} ms"),
        "error": (17, "ERROR", "upstream returned 503 after {} ms"),
    }
    kind = np.where(planted & error, "warn", np.where(error, "error", "info"))
    per_segment = -(-n // SEGMENTS)
    for segment in range(SEGMENTS):
        lines = []
        for first in range(
            segment * per_segment, min(n, (segment + 1) * per_segment), RECORDS_PER_LINE
        ):
            records = []
            for i in range(first, min(n, first + RECORDS_PER_LINE)):
                number, text, body = kinds[str(kind[i])]
                records.append(
                    f'{{"timeUnixNano":"{times[i]}","observedTimeUnixNano":"{times[i]}",'
                    f'"severityNumber":{number},"severityText":"{text}",'
                    f'"body":{{"stringValue":"{body.format(took[i])}"}},"attributes":['
                    f'{{"key":"region","value":{{"stringValue":"{TAGS["region"][regions[i]]}"}}}},'
                    f'{{"key":"cohort","value":{{"stringValue":"{TAGS["cohort"][cohorts[i]]}"}}}},'
                    f'{{"key":"ml.request.id","value":{{"stringValue":"req-{i:08d}"}}}}],'
                    f'"traceId":"{i:032x}","spanId":"{i:016x}","flags":1}}'
                )
            lines.append(resource + ",".join(records) + "]}]}]}\n")
        name = f"logs-20261127T{segment:06d}-{4000 + segment}-{segment:08x}.jsonl"
        (directory / name).write_text("".join(lines))
    return {"records": n, "warnings": int((kind == "warn").sum())}


def load_frames(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What a pandas user does first: parse the OTLP JSON lines into a spans and a logs frame."""
    spans: dict[str, list[Any]] = {k: [] for k in ("trace_id", "start_ns", "region", "error")}
    spans["duration_ns"] = []
    for span in otlp_items(directory, "traces"):
        region = next(a["value"]["stringValue"] for a in span["attributes"] if a["key"] == "region")
        start = int(span["startTimeUnixNano"])
        spans["trace_id"].append(span["traceId"])
        spans["start_ns"].append(start)
        spans["duration_ns"].append(int(span["endTimeUnixNano"]) - start)
        spans["region"].append(region)
        spans["error"].append(span["status"].get("code") == 2)
    logs: dict[str, list[Any]] = {
        k: [] for k in ("time_ns", "severity_number", "severity", "body", "trace_id", "region")
    }
    for record in otlp_items(directory, "logs"):
        attributes = {a["key"]: a["value"]["stringValue"] for a in record["attributes"]}
        logs["time_ns"].append(int(record["timeUnixNano"]))
        logs["severity_number"].append(record["severityNumber"])
        logs["severity"].append(record["severityText"])
        logs["body"].append(record["body"]["stringValue"])
        logs["trace_id"].append(record["traceId"])
        logs["region"].append(attributes.get("region"))
    text = pd.ArrowDtype(__import__("pyarrow").string())
    span_frame = pd.DataFrame(spans).astype({"trace_id": text, "region": "category"})
    log_frame = pd.DataFrame(logs).astype(
        {"body": text, "trace_id": text, "region": "category", "severity": "category"}
    )
    return span_frame, log_frame


def pandas_search(logs: pd.DataFrame) -> pd.DataFrame:
    hit = (
        (logs["region"] == REGION)
        & (logs["severity_number"] >= 13)
        & logs["body"].str.contains(TEXT, case=False, regex=False)
    )
    return logs[hit].nlargest(100, "time_ns")


def pandas_counts(logs: pd.DataFrame) -> pd.Series:
    return logs.groupby(["region", "severity"], observed=True).size()


def pandas_failing_logs(spans: pd.DataFrame, logs: pd.DataFrame) -> pd.Series:
    failing = spans.loc[spans["error"], "trace_id"]
    return logs[logs["trace_id"].isin(failing)].groupby("severity", observed=True).size()


def pandas_timeline(spans: pd.DataFrame, since_ns: int) -> pd.DataFrame:
    bucket = (spans["start_ns"] - since_ns) // 60_000_000_000
    groups = spans.assign(bucket=bucket).groupby(["bucket", "region"], observed=True)
    out = groups.agg(requests=("error", "size"), errors=("error", "sum"))
    quantiles = groups["duration_ns"].quantile([0.5, 0.95, 0.99]).unstack() / 1e6
    out[["p50_ms", "p95_ms", "p99_ms"]] = quantiles.to_numpy()
    return out


def run(directory: Path, n: int, repeats: int) -> None:
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    drawn = draw(n)
    planted = write_spans(directory, drawn)
    written = write_logs(directory, drawn)
    size = sum(p.stat().st_size for p in directory.glob("*.jsonl"))
    print(
        f"generated {n:,} spans and {written['records']:,} log records in "
        f"{time.perf_counter() - started:.1f} s: {size / 1e6:,.0f} MB of OTLP JSON; "
        f"{planted['errors']:,} failing requests, {written['warnings']:,} planted warnings"
    )
    import chdb  # noqa: F401

    import inferwatch.query as query

    started = time.perf_counter()
    spans = query.open(directory)
    first = spans.logs(since="1h", where={"region": REGION}, severity="warning", contains=TEXT)
    cold_logs = time.perf_counter() - started
    started = time.perf_counter()
    spans.slice(by=["region"], since="1h")
    cold_spans = time.perf_counter() - started
    print(
        f"cold: open + first log search {cold_logs:.2f} s (converts the log segments; "
        f"{len(first.rows)} rows), then the first slice {cold_spans:.2f} s (the trace segments)"
    )

    started = time.perf_counter()
    span_frame, log_frame = load_frames(directory)
    loaded = time.perf_counter() - started
    print(f"pandas: loading both frames with json.loads took {loaded:.1f} s (not in the ratios)")
    _, params = spans._window("1h", None, None, None)
    since_ns = params["since_ns"]

    cases: list[tuple[str, Callable[[], Any], Callable[[], Any] | None]] = [
        (
            "log search (region, >= warning, text)",
            lambda: spans.logs(
                since="1h", where={"region": REGION}, severity="warning", contains=TEXT
            ),
            lambda: pandas_search(log_frame),
        ),
        (
            "log counts by region, severity",
            lambda: spans.logs(since="1h", by=["region", "severity"]),
            lambda: pandas_counts(log_frame),
        ),
        (
            "logs of failing requests by severity",
            lambda: spans.logs(since="1h", outcome="error", by=["severity"]),
            lambda: pandas_failing_logs(span_frame, log_frame),
        ),
        (
            "timeline by region, 1m buckets",
            lambda: spans.slice(by=["region"], since="1h", every="1m"),
            lambda: pandas_timeline(span_frame, since_ns),
        ),
        ("incident() report", lambda: spans.incident(since="1h"), None),
    ]
    rows = []
    for name, ours, theirs in cases:
        ours_times, result = timed(ours, repeats)
        check = _check(name, result, span_frame, log_frame)
        if theirs is None:
            rows.append([name, *_stats(ours_times), "-", "-", "-", check])
            continue
        their_times, _ = timed(theirs, repeats)
        ratio = min(ours_times) / min(their_times)
        rows.append([name, *_stats(ours_times), *_stats(their_times), f"{ratio:.2f}x", check])
    print_table(
        ["query", "chDB min s", "chDB median s", "pandas min s", "pandas median s",
         "chDB / pandas", "check"],
        rows,
    )  # fmt: skip


def _stats(times: list[float]) -> list[str]:
    return [f"{min(times):.3f}", f"{statistics.median(times):.3f}"]


def _check(name: str, result: Any, spans: pd.DataFrame, logs: pd.DataFrame) -> str:
    """Whether chDB's answer is pandas' (for the questions both answer the same way)."""
    if name.startswith("log search"):
        want = pandas_search(logs)
        got = [r["trace_id"] for r in result.rows]
        return "same rows" if got == list(want["trace_id"]) else "MISMATCH"
    if name.startswith("log counts"):
        want = pandas_counts(logs).to_dict()
        got = {(r["region"], r["severity"]): r["records"] for r in result.rows}
        return "same counts" if got == want else "MISMATCH"
    if name.startswith("logs of failing"):
        want = pandas_failing_logs(spans, logs).to_dict()
        got = {r["severity"]: r["records"] for r in result.rows}
        return "same counts" if got == want else "MISMATCH"
    if name.startswith("timeline"):
        requests = sum(r["requests"] for r in result.rows)
        return "same requests" if requests == len(spans) else "MISMATCH"
    return f"started_at {result.started_at}, top slice {result.slices[0].row['slice']}"


if __name__ == "__main__":
    main(run, __doc__, DISTRIBUTIONS)
