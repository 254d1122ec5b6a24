"""Cost of summarising a batch, relative to one `np.isnan(X).sum(axis=0)` pass over it.

    .venv/bin/python benchmarks/bench_signals.py        # the table (~20 s)

The batch is 1000 rows x 100 float64 features (clean, and with ~1% NaNs); predictions are a
1000-vector of floats or a 1000x3 matrix of class probabilities. The ratio of
`summarize_input(X, features) + summarize_prediction(y)` to the reference pass has a target of
<= 2. The full `Inference.record_input` + `record_prediction` path (span attributes and metric
points, through a real MeterProvider) is timed on the same batches and reported separately.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
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
    verdict,
)
from inferwatch.summaries.arrays import MAX_POINTS
from inferwatch.summaries.inputs import summarize_input
from inferwatch.summaries.predictions import summarize_prediction

TARGET = 2.0
ROW_TARGET_US = 1.0
ROWS, COLUMNS, CLASSES = 1000, 100, 3
NAN_FRACTION = 0.01
FEATURES = [f"feature_{i:03d}" for i in range(COLUMNS)]
REF_CLEAN = "np.isnan(X).sum(axis=0), clean X"
REF_NAN = "np.isnan(X).sum(axis=0), X with NaNs"
DISTRIBUTIONS = ("inferwatch", "numpy", "pandas", "opentelemetry-api", "opentelemetry-sdk")


def make_data() -> dict[str, object]:
    rng = np.random.default_rng(0)
    clean = rng.standard_normal((ROWS, COLUMNS))
    nan = clean.copy()
    nan[rng.random(nan.shape) < NAN_FRACTION] = np.nan
    return {
        "X": clean,
        "X_nan": nan,
        "df": pd.DataFrame(clean, columns=FEATURES),
        "df_nan": pd.DataFrame(nan, columns=FEATURES),
        "y": rng.random(ROWS),
        "P": rng.dirichlet(np.ones(CLASSES), size=ROWS),
    }


def summarize(x: object, y: object) -> None:
    summarize_input(x, features=FEATURES)
    summarize_prediction(y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed loops per case")
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds per timed loop")
    args = parser.parse_args()
    started = time.perf_counter()
    print_environment(DISTRIBUTIONS)
    d = make_data()
    X, X_nan, df, df_nan, y, P = (d[k] for k in ("X", "X_nan", "df", "df_nan", "y", "P"))
    assert isinstance(X_nan, np.ndarray)
    nans = int(np.isnan(X_nan).sum())
    print(f"Batch: {ROWS}x{COLUMNS} float64; NaN variant has {nans} NaNs ({nans / X_nan.size:.2%})")
    print(f"in {int(np.isnan(X_nan).any(axis=0).sum())} of {COLUMNS} features; predictions: "
          f"{ROWS} floats, or {ROWS}x{CLASSES} probabilities.")  # fmt: skip
    print(f"Timing: {args.repeats} repeats of ~{args.min_time:g} s loops per case, round-robin.\n")

    exporter = DiscardingExporter()
    iw.configure(
        service_name="bench",
        span_processors=[BatchSpanProcessor(exporter)],
        metric_readers=[InMemoryMetricReader()],
        metric_tags=["region"],
    )

    def reference(x: np.ndarray) -> object:
        return np.isnan(x).sum(axis=0)

    # (label, reference label, callable); reference None: not compared.
    summaries: list[tuple[str, str | None, Callable[[], object]]] = [
        ("X clean + y (1000 floats)", REF_CLEAN, functools.partial(summarize, X, y)),
        ("X 1% NaN + y (1000 floats)", REF_NAN, functools.partial(summarize, X_nan, y)),
        ("X clean + P (1000x3 probabilities)", REF_CLEAN, functools.partial(summarize, X, P)),
        ("X 1% NaN + P (1000x3 probabilities)", REF_NAN, functools.partial(summarize, X_nan, P)),
        ("DataFrame clean + y", REF_CLEAN, functools.partial(summarize, df, y)),
        ("DataFrame 1% NaN + y", REF_NAN, functools.partial(summarize, df_nan, y)),
    ]
    part = functools.partial
    parts: list[tuple[str, str | None, Callable[[], object]]] = [
        ("  summarize_input(X clean)", REF_CLEAN, part(summarize_input, X, FEATURES)),
        ("  summarize_input(X 1% NaN)", REF_NAN, part(summarize_input, X_nan, FEATURES)),
        ("  summarize_input(DataFrame clean)", REF_CLEAN, part(summarize_input, df)),
        ("  summarize_input(DataFrame 1% NaN)", REF_NAN, part(summarize_input, df_nan)),
        ("  summarize_prediction(y)", REF_CLEAN, part(summarize_prediction, y)),
        ("  summarize_prediction(P)", REF_CLEAN, part(summarize_prediction, P)),
        ("  pandas: df.isna().sum() (for scale)", REF_NAN, df_nan.isna().sum),  # type: ignore[union-attr]
    ]

    # The full recording path on an open inference (span not made current, so the cases can
    # interleave): summary, span attributes, metric points with model, version and region.
    recs: list[iw.Inference] = []

    def recording(x: object, pred: object) -> Callable[[], object]:
        rec = iw.inference(model="bench", version="1", features=FEATURES)
        rec.start(activate=False)
        recs.append(rec)

        def record() -> None:
            rec.record_input(x)
            rec.record_prediction(pred)

        return record

    def whole(x: object, pred: object) -> None:
        with iw.inference(model="bench", version="1", features=FEATURES) as rec:
            rec.record_input(x)
            rec.record_prediction(pred)

    with iw.context(request_id="req-1", region="eu", cohort="b"):
        full: list[tuple[str, str | None, Callable[[], object]]] = [
            ("X clean + y", REF_CLEAN, recording(X, y)),
            ("X 1% NaN + y", REF_NAN, recording(X_nan, y)),
            ("X 1% NaN + P", REF_NAN, recording(X_nan, P)),
            ("DataFrame 1% NaN + y", REF_NAN, recording(df_nan, y)),
            ("  with iw.inference(...) (span too): X 1% NaN + y", REF_NAN,
             functools.partial(whole, X_nan, y)),
        ]  # fmt: skip
        cases: dict[str, Callable[[], object]] = {
            REF_CLEAN: functools.partial(reference, X),
            REF_NAN: functools.partial(reference, X_nan),
        }
        row_nan = np.random.default_rng(1).random((1, 32))
        row_nan[0, 7] = np.nan
        request: list[tuple[str, str | None, Callable[[], object]]] = [
            ("summarize_input(1x32 row, one NaN)", None, part(summarize_input, row_nan)),
            (
                "summarize_input(1x32 row, clean)",
                None,
                part(summarize_input, np.nan_to_num(row_nan)),
            ),
            ("  np.isnan(row).any() (for scale)", None, lambda: np.isnan(row_nan).any()),
        ]
        groups = {"summary": summaries, "part": parts, "full": full, "request": request}
        for group, entries in groups.items():
            for label, _, fn in entries:
                cases[f"{group}:{label}"] = fn
        results = measure(cases, args.repeats, args.min_time)
        for rec in recs:
            rec.finish()
    iw.shutdown()

    def rows(group: str, target: bool) -> list[list[str]]:
        out = []
        for label, ref, _ in groups[group]:
            result = results[f"{group}:{label}"]
            base = results[ref] if ref else None
            out.append(row(label, result, base, target and not label.startswith(" ")))
        return out

    headers = ["case", "min us", "median us", "ratio", "paired ratio med [range]", "target"]
    print(f"Reference: one np.isnan(X).sum(axis=0) pass over the {ROWS}x{COLUMNS} batch")
    print_table(headers, [row(REF_CLEAN, results[REF_CLEAN]), row(REF_NAN, results[REF_NAN])])
    print()
    print(f"summarize_input(X, features=[{COLUMNS} names]) + summarize_prediction(y), and parts")
    print_table(headers, [*rows("summary", True), [""] * 6, *rows("part", False)])
    print()
    print(f"A request's row: NaN count and length of a 1x32 float64 row (<= {ROW_TARGET_US:g} us)")
    request_rows = []
    for label, _, _ in request:
        result = results[f"request:{label}"]
        goal = "" if label.startswith(" ") else verdict(result.min * 1e6, ROW_TARGET_US)
        request_rows.append([*row(label, result)[:-1], goal])
    print_table(headers, request_rows)
    print()
    print("FULL PATH: rec.record_input(X) + rec.record_prediction(y) on an open Inference:")
    print("summaries, span attributes and metric points (a nan_count point per feature with NaNs,")
    print(f"up to {MAX_POINTS} prediction-value points; model/version/region attributes);")
    print("ratio vs the same reference pass, no target.")
    print("The last row also opens and ends a current span per call.")
    print_table(headers, rows("full", False))
    print()
    expected = results[f"full:{full[-1][0]}"].calls + len(recs)
    lost = "ok" if exporter.exported == expected else "SPANS LOST (queue full?)"
    print(f"Check: {exporter.exported:,} of {expected:,} inference spans exported: {lost}")
    print(f"Total wall time {time.perf_counter() - started:.1f} s")


def row(label: str, result: Result, base: Result | None = None, target: bool = False) -> list[str]:
    if base is None or base is result:
        return [label, fmt_us(result.min), fmt_us(result.median), "", "", ""]
    ratio = result.min / base.min
    return [
        label,
        fmt_us(result.min),
        fmt_us(result.median),
        f"{ratio:.2f}",
        fmt_ratio(paired_ratios(result, base)),
        verdict(ratio, TARGET) if target else "",
    ]


if __name__ == "__main__":
    main()
