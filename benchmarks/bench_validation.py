"""Cost of `Schema.check` per input form, relative to the same batch as a 2-D float array.

    .venv/bin/python benchmarks/bench_validation.py          # the table (~15 s)

The batch is 1000 rows x 32 float features; the schema is `Schema.from_profile` of 10,000
training rows (dtype "number", min/max, nullable where the training data had NaNs), so every
feature has a dtype, a min and a max rule. The live batch has ~1% NaN and ~1% values out of the
training range. Each case checks the same values in another form: a 2-D array with feature
names (the baseline), a DataFrame, a dict of numpy columns, a list of 1000 dict rows (the form a
JSON API hands over), and that list with ~1% of the values replaced by None, a missing key, a
string or a bool (which breaks the fast all-numbers path of those columns). The last row checks
the 1000 rows one `Schema.check(row)` call at a time, for scale. Every case must find the same
violation counts (printed as a check).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from _common import (
    Result,
    fmt_ratio,
    fmt_us,
    measure,
    paired_ratios,
    print_environment,
    print_table,
)
from inferwatch.drift import Profile
from inferwatch.validation import Schema

ROWS, COLUMNS = 1000, 32
FEATURES = [f"f{i:02d}" for i in range(COLUMNS)]
BASELINE = "2-D float array + feature names"
DISTRIBUTIONS = ("inferwatch", "numpy", "pandas", "pydantic")


def make_data() -> tuple[Schema, dict[str, Any], list[dict[str, Any]]]:
    rng = np.random.default_rng(0)
    train = rng.standard_normal((10_000, COLUMNS))
    train[rng.random(train.shape) < 0.001] = np.nan
    train[:, :: COLUMNS // 4] = np.abs(train[:, :: COLUMNS // 4])  # a few non-negative features
    schema = Schema.from_profile(Profile.build(train, columns=FEATURES))
    x = rng.standard_normal((ROWS, COLUMNS)) * 1.2  # some values past the training range
    x[rng.random(x.shape) < 0.01] = np.nan
    records = [dict(zip(FEATURES, row, strict=True)) for row in x.tolist()]
    messy = [dict(r) for r in records]
    for i, j in zip(*np.nonzero(rng.random(x.shape) < 0.01), strict=True):
        kind = (i + j) % 4
        row, name = messy[i], FEATURES[j]
        if kind == 0:
            row[name] = None
        elif kind == 1:
            del row[name]
        elif kind == 2:
            row[name] = str(row[name])
        else:
            row[name] = True
    forms: dict[str, Any] = {
        BASELINE: x,
        "DataFrame": pd.DataFrame(x, columns=FEATURES),
        "dict of numpy columns": {name: x[:, j] for j, name in enumerate(FEATURES)},
        "list of dict rows (floats, NaN)": records,
        "list of dict rows (+1% None/missing/str/bool)": messy,
    }
    return schema, forms, messy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed loops per case")
    parser.add_argument("--min-time", type=float, default=0.1, help="seconds per timed loop")
    args = parser.parse_args()
    started = time.perf_counter()
    print_environment(DISTRIBUTIONS)
    schema, forms, messy = make_data()
    print(f"Batch: {ROWS} rows x {COLUMNS} float features; schema: Schema.from_profile (dtype,")
    print("min, max and nullability on every feature). Ratios against the 2-D array case.")
    print()

    per_row = f"{ROWS} x Schema.check(one dict row) (messy rows)"
    cases: dict[str, Callable[[], object]] = {
        label: (lambda x=x: schema.check(x, FEATURES)) for label, x in forms.items()
    }
    cases[per_row] = lambda: [schema.check(row) for row in messy]
    results = measure(cases, args.repeats, args.min_time)

    base = results[BASELINE]
    rows = [row(label, result, base) for label, result in results.items()]
    print_table(["case", "min us", "median us", "ratio", "paired ratio med [range]"], rows)
    print()
    found = {label: schema.check(x, FEATURES) for label, x in forms.items()}
    clean = {k: v for k, v in found.items() if "+1%" not in k}
    same = len({tuple(sorted(v.counts.items())) for v in clean.values()}) == 1
    print(f"Check: the clean forms find the same violations: {'ok' if same else 'DIFFERENT'} "
          f"({found[BASELINE].total} violations in {found[BASELINE].rows} rows)")  # fmt: skip
    batch = found["list of dict rows (+1% None/missing/str/bool)"]
    one_by_one: dict[tuple[str, str], int] = {}
    for r in messy:
        for key, n in schema.check(r).counts.items():
            one_by_one[key] = one_by_one.get(key, 0) + n
    agree = batch.counts == one_by_one
    print(f"Check: messy rows, batch == row by row: {'ok' if agree else 'DIFFERENT'} "
          f"({batch.total} violations)")  # fmt: skip
    print(f"Total wall time {time.perf_counter() - started:.1f} s")


def row(label: str, result: Result, base: Result) -> list[str]:
    if result is base:
        return [label, fmt_us(result.min), fmt_us(result.median), "1.00", ""]
    return [
        label,
        fmt_us(result.min),
        fmt_us(result.median),
        f"{result.min / base.min:.2f}",
        fmt_ratio(paired_ratios(result, base)),
    ]


if __name__ == "__main__":
    main()
