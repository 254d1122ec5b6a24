"""Slicing 1M stored spans: `iw.query` (chDB over OTLP JSON lines) against a pandas groupby.

    .venv/bin/python benchmarks/bench_query.py                 # 1M spans, ~1.5 min on 2 cores
    .venv/bin/python benchmarks/bench_query.py --spans 200000  # quicker
    .venv/bin/python benchmarks/bench_query.py --keep /tmp/spans  # keep the generated store

The store is generated directly as OTLP JSON lines (the collector ``file`` exporter's format and
the local store's), 20 closed segments of 500-span export requests, with 8 tags per inference
span: region (5 values), cohort (3), country (50, skewed), device (4), plan (4),
ml.model.version (3), experiment (8), client (20). Spans lie in the last 45 minutes. Planted
problem: model version 3.2 on android sends inputs with NaNs in 30% of requests, which fail;
besides, 1.2% of free-plan requests and 0.4% of the others fail at random (a second, weaker
signal, so bubble-up has more than one key to combine); ap-south is 2.5x slower.

Measured, in one process:

* cold start: ``iw.query.open(dir)`` and the first ``slice`` (chDB converts every segment into a
  MergeTree table; the chDB import is timed separately);
* warm ``slice(by=[2 tags])`` (target <= 1.0 s), for region x cohort and country x client;
* ``bubble_up(max_order=3)`` (target <= 10 s), when `inferwatch.query.bubble` exists;
* the same slices as a pandas groupby on a DataFrame of the same spans. Loading the DataFrame
  (parsing the same OTLP JSON lines with ``json.loads``) is reported separately; only the
  groupby is timed against the slice. The slice's counts are checked against pandas'.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _common import print_environment, print_table

DISTRIBUTIONS = ("inferwatch", "chdb", "pandas", "numpy")
SEGMENTS = 20
SPANS_PER_LINE = 500
WINDOW_S = 45 * 60
SLICE_TARGET_S = 1.0
BUBBLE_TARGET_S = 10.0

TAGS: dict[str, list[str]] = {
    "region": ["eu-west", "eu-central", "us-east", "us-west", "ap-south"],
    "cohort": ["new", "returning", "dormant"],
    "country": [f"C{i:02d}" for i in range(50)],
    "device": ["ios", "android", "web", "desktop"],
    "plan": ["free", "basic", "pro", "enterprise"],
    "ml.model.version": ["3.0", "3.1", "3.2"],
    "experiment": [f"exp-{c}" for c in "abcdefgh"],
    "client": [f"app-{major}.{minor}" for major in range(1, 6) for minor in range(4)],
}
# Skewed like real traffic: a few big countries and a long tail.
WEIGHTS: dict[str, list[float]] = {
    "region": [0.25, 0.15, 0.3, 0.15, 0.15],
    "cohort": [0.2, 0.7, 0.1],
    "country": list(1 / np.arange(1, 51) / (1 / np.arange(1, 51)).sum()),
    "device": [0.35, 0.35, 0.25, 0.05],
    "plan": [0.5, 0.25, 0.2, 0.05],
    "ml.model.version": [0.2, 0.5, 0.3],
}
SLICES = [["region", "cohort"], ["country", "client"]]


def _attribute(key: str, value: str) -> str:
    return json.dumps({"key": key, "value": {"stringValue": value}}, separators=(",", ":"))


def generate(directory: Path, n: int, seed: int = 0) -> dict[str, int]:
    """Write n inference spans as OTLP JSON lines; returns what was planted."""
    return write_spans(directory, draw(n, seed))


def draw(n: int, seed: int = 0) -> dict[str, Any]:
    """The spans' values: tag columns (value indexes), durations, start times, planted faults."""
    rng = np.random.default_rng(seed)
    columns = {
        tag: rng.choice(len(values), size=n, p=WEIGHTS.get(tag)) for tag, values in TAGS.items()
    }
    planted = (columns["ml.model.version"] == 2) & (columns["device"] == 1)
    nan = planted & (rng.random(n) < 0.3)
    background = np.where(columns["plan"] == 0, 0.012, 0.004)  # free plan: a little worse
    error = nan | (rng.random(n) < background)
    slow = np.where(columns["region"] == 4, 2.5, 1.0)
    duration = (rng.lognormal(np.log(8e6), 0.5, n) * slow).astype(np.int64)  # ns, ~8 ms
    nan_count = np.where(nan, rng.integers(1, 9, n), 0)
    now = time.time_ns()
    start = now - rng.integers(1, WINDOW_S * 1_000_000_000, n)
    return {"n": n, "columns": columns, "planted": planted, "error": error, "start": start,
            "duration": duration, "nan_count": nan_count}  # fmt: skip


def write_spans(directory: Path, drawn: dict[str, Any]) -> dict[str, int]:
    """Write the drawn spans as OTLP JSON lines, in SEGMENTS closed segments."""
    n, columns, error, planted = drawn["n"], drawn["columns"], drawn["error"], drawn["planted"]
    start, duration, nan_count = drawn["start"], drawn["duration"], drawn["nan_count"]
    fragments = {tag: [_attribute(tag, v) for v in values] for tag, values in TAGS.items()}
    resource = (
        '{"resourceSpans":[{"resource":{"attributes":['
        '{"key":"service.name","value":{"stringValue":"fraud-api"}},'
        '{"key":"service.version","value":{"stringValue":"2026.11"}}]},'
        '"scopeSpans":[{"scope":{"name":"inferwatch","version":"0.1.0"},"spans":['
    )
    ok_status = '"status":{}}'
    error_status = (
        ',{"key":"error.type","value":{"stringValue":"ValueError"}}],'
        '"status":{"code":2,"message":"ValueError: input contains NaN"}}'
    )
    tag_columns = [(fragments[tag], columns[tag]) for tag in TAGS]
    directory.mkdir(parents=True, exist_ok=True)
    per_segment = -(-n // SEGMENTS)
    for segment in range(SEGMENTS):
        name = f"traces-20261127T{segment:06d}-{4000 + segment}-{segment:08x}.jsonl"
        lines = []
        for first in range(
            segment * per_segment, min(n, (segment + 1) * per_segment), SPANS_PER_LINE
        ):
            spans = []
            for i in range(first, min(n, first + SPANS_PER_LINE), 1):
                tags = ",".join(f[c[i]] for f, c in tag_columns)
                begin = int(start[i])
                spans.append(
                    f'{{"traceId":"{i:032x}","spanId":"{i:016x}","parentSpanId":"",'
                    f'"name":"inference fraud","kind":1,"startTimeUnixNano":"{begin}",'
                    f'"endTimeUnixNano":"{begin + int(duration[i])}","attributes":['
                    '{"key":"ml.model.name","value":{"stringValue":"fraud"}},'
                    f'{{"key":"ml.request.id","value":{{"stringValue":"req-{i:08d}"}}}},'
                    '{"key":"ml.input.batch_size","value":{"intValue":"1"}},'
                    f'{{"key":"ml.input.nan_count","value":{{"intValue":"{nan_count[i]}"}}}},'
                    f'{{"key":"ml.prediction.mean","value":{{"doubleValue":{(i % 997) / 997}}}}},'
                    + tags
                    + (error_status if error[i] else "]," + ok_status)
                )
            lines.append(resource + ",".join(spans) + "]}]}]}\n")
        (directory / name).write_text("".join(lines))
    return {"spans": n, "errors": int(error.sum()), "planted_errors": int((error & planted).sum())}


def otlp_items(directory: Path, signal: str) -> Iterator[dict[str, Any]]:
    """Every span (``signal="traces"``) or log record (``"logs"``) of the OTLP JSON lines files
    of ``directory``, as parsed JSON."""
    resources, scopes, items = {
        "traces": ("resourceSpans", "scopeSpans", "spans"),
        "logs": ("resourceLogs", "scopeLogs", "logRecords"),
    }[signal]
    for path in sorted(directory.glob(f"{signal}-*.jsonl")):
        with path.open("rb") as f:
            for line in f:
                for resource in json.loads(line)[resources]:
                    for scope in resource[scopes]:
                        yield from scope[items]


def load_dataframe(directory: Path) -> pd.DataFrame:
    """What a pandas user does first: parse the OTLP JSON lines into one row per span."""
    wanted = set(TAGS)
    rows: dict[str, list[Any]] = {tag: [] for tag in TAGS}
    durations: list[int] = []
    errors: list[bool] = []
    nans: list[bool] = []
    for span in otlp_items(directory, "traces"):
        attributes = {a["key"]: a["value"] for a in span["attributes"]}
        for tag in wanted:
            value = attributes.get(tag)
            rows[tag].append(value["stringValue"] if value else None)
        durations.append(int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"]))
        errors.append(span["status"].get("code") == 2)
        nan = attributes.get("ml.input.nan_count")
        nans.append(bool(nan) and int(nan["intValue"]) > 0)
    frame = pd.DataFrame(rows)
    frame["duration_ns"] = np.array(durations, dtype=np.int64)
    frame["error"] = np.array(errors)
    frame["nan"] = np.array(nans)
    return frame


def pandas_slice(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """slice(by) in pandas: requests, errors, error rate, p50/p95/p99 ms, NaN share."""
    groups = frame.groupby(by, observed=True, sort=False, dropna=False)
    out = groups.agg(requests=("error", "size"), errors=("error", "sum"), nans=("nan", "sum"))
    quantiles = groups["duration_ns"].quantile([0.5, 0.95, 0.99]).unstack() / 1e6
    out[["p50_ms", "p95_ms", "p99_ms"]] = quantiles.to_numpy()
    out["error_rate"] = out["errors"] / out["requests"]
    out["nan_share"] = out["nans"] / out["requests"]
    return out.sort_values(["errors", "requests"], ascending=False)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times, result


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f}"


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("traces-*.jsonl"))


def check(result: Any, expected: pd.DataFrame, by: list[str]) -> str:
    """The slice's requests and errors per group against pandas' (quantiles differ: chDB's
    `quantiles` is approximate)."""
    got = {tuple(r[k] for k in by): (r["requests"], r["errors"]) for r in result.rows}
    want = {
        (k if isinstance(k, tuple) else (k,)): (int(r.requests), int(r.errors))
        for k, r in expected.iterrows()
    }
    return "same counts" if got == want else f"MISMATCH: {len(got)} vs {len(want)} groups"


def main(
    bench: Callable[[Path, int, int], None] | None = None,
    doc: str = __doc__,
    distributions: tuple[str, ...] = DISTRIBUTIONS,
) -> None:
    """Parse ``--spans --repeats --keep``, then ``bench(directory, spans, repeats)`` (``run``)
    in a temporary directory, or in ``--keep``'s, kept."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each warm query")
    parser.add_argument("--keep", type=Path, help="generate the store here and keep it")
    args = parser.parse_args()
    print_environment(distributions)
    directory = args.keep or Path(tempfile.mkdtemp(prefix="inferwatch-bench-"))
    try:
        (bench or run)(directory, args.spans, args.repeats)
    finally:
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)


def run(directory: Path, n: int, repeats: int) -> None:
    started = time.perf_counter()
    planted = generate(directory, n)
    generated = time.perf_counter() - started
    size = _size(directory)
    print(
        f"generated {n:,} spans in {generated:.1f} s: {SEGMENTS} segments, "
        f"{size / 1e6:,.0f} MB of OTLP JSON on disk ({size / n:,.0f} bytes/span); "
        f"{planted['errors']:,} errors, {planted['planted_errors']:,} of them planted"
    )

    started = time.perf_counter()
    import chdb  # noqa: F401

    import inferwatch.query as query

    imported = time.perf_counter() - started
    started = time.perf_counter()
    spans = query.open(directory)
    first = spans.slice(by=SLICES[0], since="1h")
    cold = time.perf_counter() - started
    stats = getattr(spans.engine, "stats", None)
    print(
        f"chDB import {imported:.2f} s; cold start (open + first slice, converting every "
        f"segment) {cold:.1f} s; ingest stats: {stats}"
    )
    assert sum(r["requests"] for r in first.rows) == n, "spans lost in conversion"

    rows: list[list[str]] = []
    slices: dict[str, tuple[list[float], Any]] = {}
    for by in SLICES:
        label = " x ".join(by)
        slices[label] = timed(lambda by=by: spans.slice(by=by, since="1h"), repeats)
    print("loading the same spans into pandas ...", flush=True)
    started = time.perf_counter()
    frame = load_dataframe(directory)
    loaded = time.perf_counter() - started
    string_dtype = str(frame[SLICES[0][0]].dtype)
    started = time.perf_counter()
    categorical = frame.astype({tag: "category" for tag in TAGS})
    to_category = time.perf_counter() - started
    print(
        f"pandas load (json.loads of the OTLP JSON lines, flattened): {loaded:.1f} s; "
        f"{frame.memory_usage(deep=True).sum() / 1e6:,.0f} MB in memory; "
        f"to category dtypes: {to_category:.1f} s"
    )
    print()
    for by in SLICES:
        label = " x ".join(by)
        times, result = slices[label]
        pandas_times, expected = timed(lambda by=by: pandas_slice(frame, by), repeats)
        category_times, _ = timed(lambda by=by: pandas_slice(categorical, by), repeats)
        best = min(times)
        rows.append(
            [
                f"slice({label}), {len(result.rows)} groups",
                fmt_s(best),
                fmt_s(statistics.median(times)),
                f"<= {SLICE_TARGET_S:g}: {'yes' if best <= SLICE_TARGET_S else 'NO'}",
            ]
        )
        rows.append(
            [
                f"  pandas groupby, {string_dtype} columns (default)",
                fmt_s(min(pandas_times)),
                fmt_s(statistics.median(pandas_times)),
                f"slice/pandas {best / min(pandas_times):.2f}",
            ]
        )
        rows.append(
            [
                "  pandas groupby, category columns",
                fmt_s(min(category_times)),
                fmt_s(statistics.median(category_times)),
                f"slice/pandas {best / min(category_times):.2f}",
            ]
        )
        rows.append([f"  check vs pandas: {check(result, expected, by)}", "", "", ""])
    if importlib.util.find_spec("inferwatch.query.bubble") is None:
        rows.append(
            ["bubble_up(max_order=3): skipped, inferwatch.query.bubble not there yet", "", "", ""]
        )
        bubbled = None
    else:
        times, bubbled = timed(lambda: spans.bubble_up(since="1h", max_order=3), 2)
        rows.append(
            [
                f"bubble_up(max_order=3), {len(bubbled.rows)} rows",
                fmt_s(min(times)),
                fmt_s(statistics.median(times)),
                f"<= {BUBBLE_TARGET_S:g}: {'yes' if min(times) <= BUBBLE_TARGET_S else 'NO'}",
            ]
        )
    print_table(
        ["case (1 window, all spans)", "s (min)", "s (median)", "target / ratio"],
        [[c, *rest] for c, *rest in rows],
    )
    print()
    print(
        f"cold start: {cold:.1f} s (+ {imported:.2f} s chDB import); "
        f"pandas load {loaded:.1f} s (+ {to_category:.1f} s to category)"
    )
    if bubbled is not None:
        print("\nbubble_up, top rows:")
        print(str(type(bubbled)(bubbled.columns, bubbled.rows[:5], bubbled.notes)))


if __name__ == "__main__":
    main()
