"""Drift detection: `Profile.build` speed on 1M x 20, live windows, calibration of `compare`.

    .venv/bin/python benchmarks/bench_drift.py                  # everything, ~3 min on 2 cores
    .venv/bin/python benchmarks/bench_drift.py --skip-speed     # windows and calibration
    .venv/bin/python benchmarks/bench_drift.py --skip-speed --skip-calibration   # windows, ~20 s
    .venv/bin/python benchmarks/bench_drift.py --skip-speed --trials 1000 --only "categories, unch"
                                                  # tighter rates for the cases whose label matches

Speed: `Profile.build` on 1,000,000 rows x 20 float64 columns (standard normal, no NaN), given
as a 2-D array with column names and as a DataFrame (target <= 1.0 s, min of 3). Timed in the
same run, on the same array, round-robin: the exact numpy equivalents (`np.quantile` of every
column at 100 points; mean, var, min, max and NaN counts per column) and, when it imports,
whylogs `why.log(pandas=df).view()` (not warmed up: ~12 s a call; imported beforehand). A
one-off check, untimed, compares the profile's quantiles with the exact ranks.

Live windows (`DriftWindows`, the serving path): the hot-path cost of `add(X)` plus
`add_predictions(P)` per call, for a batch of 1 and of 100 rows x 20 features with 3-class
scores, against the least a buffer can do (append a reference to a list under a lock, twice);
then the cost of `close_window()` on a window of 100,000 such rows (profile + tests of the
window and the cumulative merge), and of the close that completes an hour roll-up (adds the
hour's merge and its tests), against `Profile.build` of the same rows in one call.

Calibration: each case repeats ``--trials`` times (default 100), every trial with a fresh seed
(``SeedSequence([--seed, case, trial])``). A trial draws a baseline and a current sample of one
column, builds a `Profile` of each and asks `compare(baseline, current, alpha=0.05)` whether
the column drifted. The same raw samples go to the exact tests: `scipy.stats.ks_2samp` for
numeric columns and `scipy.stats.chi2_contingency` on the exact category counts for
categorical ones. Categorical samples reach `Profile.build` as a pandas category Series.
Evidently's default drift test was meant to run on the same trials (n <= 100k), but Evidently
0.7 does not import on pandas 3, so the script only reports why; it has no Evidently runner.

* false alarms (target <= 5%): both samples from the same distribution, at n = 1k, 100k and
  1M per side; numeric N(0, 1), and 50 categories with fixed Zipf-like probabilities
  (p_i proportional to 1/i);
* power (target >= 95%): a 0.1 sigma mean shift at n = 100k per side;
* for information, no target: smaller shifts (0.02 sigma at 100k, 0.01 sigma at 1M) and a
  categorical shift, to show what the sketches cost against the exact tests.

Rates come with a 95% Clopper-Pearson interval: over 100 trials a true rate of 5% is observed
anywhere between about 1% and 11%, and a test exactly at alpha = 0.05 shows <= 5/100 only 62%
of the time.
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from _common import fmt_ratio, fmt_us, measure, paired_ratios, print_environment, print_table

DISTRIBUTIONS = ("inferwatch", "numpy", "pandas", "scipy", "datasketches", "whylogs", "evidently")
ALPHA = 0.05
FALSE_ALARM_TARGET = 0.05
POWER_TARGET = 0.95
BUILD_TARGET_S = 1.0
EVIDENTLY_MAX_N = 100_000
CATEGORIES = 50
CATEGORY_P = (1 / np.arange(1, CATEGORIES + 1)) / (1 / np.arange(1, CATEGORIES + 1)).sum()
LABELS = np.array([f"c{i:02d}" for i in range(CATEGORIES)])
COLUMN = "x"


def _try_import(name: str) -> tuple[Any, str]:
    """(module, "") or (None, why it is not available)."""
    try:
        module = __import__(name)
    except Exception as exc:  # ImportError, but also broken installs (AttributeError, ...)
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return module, ""


# -- speed ---------------------------------------------------------------------------------------


def numpy_quantiles(x: np.ndarray) -> np.ndarray:
    return np.quantile(x, np.linspace(0.0, 1.0, 100), axis=0)


def numpy_moments(x: np.ndarray) -> tuple[np.ndarray, ...]:
    return (
        x.mean(axis=0),
        x.var(axis=0),
        x.min(axis=0),
        x.max(axis=0),
        np.isnan(x).sum(axis=0),
    )


def timed_round_robin(
    cases: dict[str, Callable[[], object]], repeats: int
) -> dict[str, list[float]]:
    """Seconds per call, ``repeats`` calls per case, round-robin (order rotates every round)."""
    times: dict[str, list[float]] = {label: [] for label in cases}
    labels = list(cases)
    for label in labels:  # warm-up: first-touch page faults, caches, lazy imports
        if not label.startswith("whylogs"):  # ~13 s a call; imported already
            cases[label]()
    for r in range(repeats):
        shift = r % len(labels)
        for label in labels[shift:] + labels[:shift]:
            gc.collect()
            start = time.perf_counter()
            cases[label]()
            times[label].append(time.perf_counter() - start)
    return times


def quantile_check(profile: Any, x: np.ndarray, names: list[str]) -> str:
    """Rank error of the profile's quantiles (not part of the contract: skipped if absent)."""
    qs = np.linspace(0.0, 1.0, 101)[1:-1]
    try:
        sketched = np.array([[profile.columns[n].quantile(q) for q in qs] for n in names]).T
    except Exception as exc:
        return f"quantile check skipped ({type(exc).__name__}: {exc})"
    ordered = np.sort(x, axis=0)
    ranks = np.array(
        [np.searchsorted(ordered[:, j], sketched[:, j], side="right") for j in range(len(names))]
    ).T / len(x)
    error = np.abs(ranks - qs[:, None])
    return (
        f"Profile quantiles at 99 points x {len(names)} columns against the exact ranks: "
        f"max rank error {error.max():.3%}, median {np.median(error):.3%}"
    )


def speed(rows: int, cols: int, repeats: int, drift: Any) -> list[str]:
    names = [f"f{i:02d}" for i in range(cols)]
    x = np.random.default_rng(0).standard_normal((rows, cols))
    frame = pd.DataFrame(x, columns=names)
    print(f"Profile speed: {rows:,} rows x {cols} float64 columns (standard normal, no NaN),")
    print(f"min and median of {repeats} calls per case, timed round-robin in this process.")

    iw_array = "Profile.build(2-D array, columns=...)"
    iw_frame = "Profile.build(DataFrame)"
    quantiles = "numpy: np.quantile(x, 100 points, axis=0)"
    moments = "numpy: mean, var, min, max, isnan().sum() per column"
    exact = "numpy: both (an exact profile)"
    cases: dict[str, Callable[[], object]] = {}
    if drift is not None:
        cases[iw_array] = lambda: drift.Profile.build(x, columns=names)
        cases[iw_frame] = lambda: drift.Profile.build(frame)
    cases[quantiles] = lambda: numpy_quantiles(x)
    cases[moments] = lambda: numpy_moments(x)
    cases[exact] = lambda: (numpy_quantiles(x), numpy_moments(x))
    whylogs, why_not = _try_import("whylogs")
    if whylogs is not None:
        cases["whylogs: why.log(pandas=df).view()"] = lambda: whylogs.log(pandas=frame).view()
    times = timed_round_robin(cases, repeats)

    headline = iw_array if drift is not None else None
    rows_out: list[list[str]] = []
    for label, t in times.items():
        ratio = f"{min(t) / min(times[headline]):.2f}" if headline else "-"
        target = ""
        if label in (iw_array, iw_frame):
            ok = min(t) <= BUILD_TARGET_S
            target = f"<= {BUILD_TARGET_S:g} s: {'yes' if ok else 'NO'}"
        rows_out.append([label, f"{min(t):.3f}", f"{statistics.median(t):.3f}", ratio, target])
    print()
    print_table(["case", "min s", "median s", "x Profile.build(array)", "target"], rows_out)
    if whylogs is None:
        print(f"whylogs: not available ({why_not})")
    summary: list[str] = []
    if drift is not None:
        build = min(times[iw_array])
        print()
        ratios = [
            (f"Profile.build(array) / {label}", build / min(times[label]))
            for label in (quantiles, moments, exact)
        ]
        ratios.append(
            ("Profile.build(DataFrame) / Profile.build(array)", min(times[iw_frame]) / build)
        )
        ratios += [
            (f"{label} / Profile.build(array)", min(t) / build)
            for label, t in times.items()
            if label.startswith("whylogs")
        ]
        width = max(len(label) for label, _ in ratios)
        print("Ratios (min / min):")
        for label, ratio in ratios:
            print(f"  {label:<{width}}  {ratio:6.2f}")
        profile = drift.Profile.build(x, columns=names)
        other = drift.Profile.build(frame)
        start = time.perf_counter()
        report = drift.compare(profile, other)
        elapsed = time.perf_counter() - start
        print(
            f"\ncompare() of two {cols}-column profiles of the same data: {elapsed * 1e3:.1f} ms, "
            f"drifted columns: {report.drifted_columns}"
        )
        print(quantile_check(profile, x, names))
        summary.append(
            f"Profile.build {rows:,} x {cols}: {build:.3f} s from a 2-D array, "
            f"{min(times[iw_frame]):.3f} s from a DataFrame (target <= {BUILD_TARGET_S:g} s)"
        )
    print()
    return summary


# -- live windows --------------------------------------------------------------------------------


def windows_speed(repeats: int) -> list[str]:
    import threading

    from inferwatch.drift.windows import DriftWindows

    rng = np.random.default_rng(1)
    cols = 20
    names = [f"f{i:02d}" for i in range(cols)]
    classes = ["a", "b", "c"]
    train = rng.standard_normal((20_000, cols))
    baseline = build_profile(train, names, rng.dirichlet([2, 1, 1], 20_000), classes)
    print("Live windows: 20 float features, predictions = 3-class scores (argmax profiled).")
    logging.getLogger("inferwatch.events").setLevel(logging.ERROR)  # chance alarms: not timed
    cases: dict[str, Callable[[], object]] = {}
    lock = threading.Lock()
    buffer: list[tuple[Any, int]] = []
    for rows in (1, 100):
        x, p = rng.standard_normal((rows, cols)), rng.dirichlet([2, 1, 1], rows)
        w = DriftWindows("bench", baseline, 3600, max_rows_per_window=10**9)

        def hot(w: Any = w, x: np.ndarray = x, p: np.ndarray = p) -> None:
            w.add(x)
            w.add_predictions(p)
            if w._rows > 200_000:  # keep the buffer small; not part of the hot path's cost
                w._buf.clear()
                w._pending["ml.prediction"].clear()
                w._rows = 0
                w._pending_rows["ml.prediction"] = 0

        def bare(x: np.ndarray = x, p: np.ndarray = p) -> None:
            with lock:
                buffer.append((x, len(x)))
            with lock:
                buffer.append((p, len(p)))
            if len(buffer) > 100_000:
                buffer.clear()

        cases[f"add(X) + add_predictions(P), {rows} row(s)"] = hot
        cases[f"  list.append under a lock x2, {rows} row(s)"] = bare
    results = measure(cases, repeats=7, min_time=0.1)
    labels = list(cases)
    table = []
    for label, peer in zip(labels[::2], labels[1::2], strict=True):
        case, base = results[label], results[peer]
        table.append([label, fmt_us(case.min), fmt_us(case.median), ""])
        ratio = f"{case.min / base.min:.2f} ({fmt_ratio(paired_ratios(case, base))})"
        table.append([peer, fmt_us(base.min), fmt_us(base.median), ratio])
    print_table(["case", "min us", "median us", "add / append (paired)"], table)

    n = 100_000
    chunks = [
        (rng.standard_normal((100, cols)), rng.dirichlet([2, 1, 1], 100)) for _ in range(n // 100)
    ]
    every_x = np.vstack([c[0] for c in chunks])
    every_p = np.vstack([c[1] for c in chunks])
    closes: list[float] = []
    hour_closes: list[float] = []
    builds: list[float] = []
    for _ in range(repeats):
        w = DriftWindows("bench", baseline, 300, max_rows_per_window=10**9)  # 12 make an hour
        for i in range(12):
            for x, p in chunks:
                w.add(x)
                w.add_predictions(p)
            gc.collect()
            start = time.perf_counter()
            w.close_window()
            (hour_closes if i == 11 else closes).append(time.perf_counter() - start)
        assert len(w.rollups["1h"]) == 1 and w.rollups["1h"][0].n_rows == 12 * n
        gc.collect()
        start = time.perf_counter()
        build_profile(every_x, names, every_p, classes)
        builds.append(time.perf_counter() - start)
    build = min(builds)
    print()
    print_table(
        ["case (100,000 rows x 20 + predictions)", "min ms", "median ms", "x Profile.build"],
        [
            [label, f"{min(t) * 1e3:.1f}", f"{statistics.median(t) * 1e3:.1f}",
             f"{min(t) / build:.2f}"]
            for label, t in (
                ("Profile.build of the same rows (one call)", builds),
                ("close_window() (window + cumulative tests)", closes),
                ("close_window() completing the 1h roll-up", hour_closes),
            )
        ],
    )  # fmt: skip
    print()
    return [
        f"windows: close_window() of 100k rows {min(closes) * 1e3:.1f} ms "
        f"({min(closes) / build:.2f} x Profile.build), completing an hour "
        f"{min(hour_closes) * 1e3:.1f} ms"
    ]


def build_profile(x: np.ndarray, names: list[str], scores: np.ndarray, classes: list[str]) -> Any:
    from inferwatch.drift import Profile

    return Profile.build(x, columns=names, predictions=scores, class_names=classes)


# -- calibration ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    label: str
    kind: str  # "numeric" | "categorical"
    n: int
    shift: float = 0.0
    """numeric: mean shift of the current sample in sigma; categorical: probability mass moved
    from the most frequent category to the least frequent one."""
    goal: str = "false alarm"  # "false alarm" | "power" | "info"

    @property
    def target(self) -> str:
        if self.goal == "false alarm":
            return f"<= {FALSE_ALARM_TARGET:.0%}"
        if self.goal == "power":
            return f">= {POWER_TARGET:.0%}"
        return "(info)"

    def met(self, rate: float) -> str:
        if self.goal == "false alarm":
            return "yes" if rate <= FALSE_ALARM_TARGET else "NO"
        if self.goal == "power":
            return "yes" if rate >= POWER_TARGET else "NO"
        return ""

    def significance(self, flags: list[bool]) -> str:
        """One-sided binomial test of the observed count against the target rate."""
        if not flags or self.goal == "info":
            return ""
        k, n = sum(flags), len(flags)
        if self.goal == "false alarm":
            p = stats.binomtest(k, n, FALSE_ALARM_TARGET, alternative="greater").pvalue
            return f"above 5%: p={p:.2f}" + (" ABOVE" if p < 0.05 else "")
        p = stats.binomtest(k, n, POWER_TARGET, alternative="less").pvalue
        return f"below 95%: p={p:.2f}" + (" BELOW" if p < 0.05 else "")


CASES = [
    Case("numeric N(0,1), unchanged, n=1k", "numeric", 1_000),
    Case("numeric N(0,1), unchanged, n=100k", "numeric", 100_000),
    Case("numeric N(0,1), unchanged, n=1M", "numeric", 1_000_000),
    Case("50 categories, unchanged, n=1k", "categorical", 1_000),
    Case("50 categories, unchanged, n=100k", "categorical", 100_000),
    Case("50 categories, unchanged, n=1M", "categorical", 1_000_000),
    Case("numeric, 0.1 sigma shift, n=100k", "numeric", 100_000, 0.1, "power"),
    Case("numeric, 0.02 sigma shift, n=100k", "numeric", 100_000, 0.02, "info"),
    Case("numeric, 0.01 sigma shift, n=1M", "numeric", 1_000_000, 0.01, "info"),
    Case("50 categories, 0.2% of mass c00 -> c49, n=100k", "categorical", 100_000, 0.002, "info"),
]


@dataclass
class Sample:
    values: Any  # what the profiles and Evidently see
    raw: np.ndarray  # numeric values, or category codes
    counts: np.ndarray | None = None  # exact category counts


def draw(case: Case, rng: np.random.Generator, shifted: bool) -> Sample:
    if case.kind == "numeric":
        values = rng.standard_normal(case.n)
        if shifted and case.shift:
            values += case.shift
        return Sample(values, values)
    p = CATEGORY_P
    if shifted and case.shift:
        p = p.copy()
        p[0] -= case.shift
        p[-1] += case.shift
    codes = rng.choice(CATEGORIES, size=case.n, p=p)
    return Sample(
        pd.Series(pd.Categorical.from_codes(codes, categories=LABELS)),
        codes,
        np.bincount(codes, minlength=CATEGORIES),
    )


def exact_test(case: Case, a: Sample, b: Sample) -> tuple[float, float]:
    """(p-value, statistic) of the exact test on the raw samples."""
    if case.kind == "numeric":
        result = stats.ks_2samp(a.raw, b.raw)
        return float(result.pvalue), float(result.statistic)
    assert a.counts is not None and b.counts is not None
    table = np.vstack([a.counts, b.counts])
    table = table[:, table.sum(axis=0) > 0]  # a category neither sample drew
    result = stats.chi2_contingency(table, correction=False)
    return float(result.pvalue), float(result.statistic)


@dataclass
class Outcome:
    case: Case
    iw: list[bool] = field(default_factory=list)
    exact: list[bool] = field(default_factory=list)
    iw_tests: set[str] = field(default_factory=set)
    statistic_error: list[float] = field(default_factory=list)  # |D sketch - D exact|, KS only
    checks_failed: int = 0
    seconds: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("draw", "iw", "exact"), 0.0)
    )


def run_case(index: int, case: Case, trials: int, seed: int, drift: Any) -> Outcome:
    out = Outcome(case)
    clock = time.perf_counter
    for trial in range(trials):
        rng = np.random.default_rng(np.random.SeedSequence([seed, index, trial]))
        t0 = clock()
        a = draw(case, rng, shifted=False)
        b = draw(case, rng, shifted=True)
        t1 = clock()
        if drift is not None:
            kwargs = {"categorical": [COLUMN]} if case.kind == "categorical" else {}
            base = drift.Profile.build({COLUMN: a.values}, **kwargs)
            current = drift.Profile.build({COLUMN: b.values}, **kwargs)
            report = drift.compare(base, current, alpha=ALPHA)
            column = report[COLUMN]
            out.iw.append(bool(column.drifted))
            out.iw_tests.add(str(column.test))
            if bool(report.drifted) != bool(column.drifted) or (
                list(report.drifted_columns) != ([COLUMN] if column.drifted else [])
            ):
                out.checks_failed += 1
        t2 = clock()
        exact_p, exact_statistic = exact_test(case, a, b)
        out.exact.append(exact_p < ALPHA)
        if drift is not None and case.kind == "numeric":
            out.statistic_error.append(abs(float(column.statistic) - exact_statistic))
        t3 = clock()
        out.seconds["draw"] += t1 - t0
        out.seconds["iw"] += t2 - t1
        out.seconds["exact"] += t3 - t2
    return out


def rate_cell(flags: list[bool]) -> str:
    if not flags:
        return "-"
    k, n = sum(flags), len(flags)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return f"{k / n:6.1%} [{ci.low:.1%}-{ci.high:.1%}]"


def calibration(trials: int, seed: int, drift: Any, only: str | None) -> list[list[str]]:
    # Evidently's default drift test would run on the same trials (n <= 100k, it is slow). Its
    # 0.7 release does not import on pandas 3 (`infer_dtype_from_object` is gone), so there is
    # no runner for it here: the column says why.
    evidently, why_not = _try_import("evidently")
    evidently_cell = "not available" if evidently is None else "imports; no runner written"
    cases = [c for c in CASES if only is None or only in c.label]
    print(f"Calibration: {trials} trials per case, alpha = {ALPHA}, seed = {seed};")
    print("rates with a 95% Clopper-Pearson interval. 'agree' = trials where inferwatch and the")
    print("exact test reached the same verdict.")
    if evidently is None:
        print(f"Evidently: not available ({why_not})")
    else:
        print("Evidently: imports, but this script has no runner for it (see the source)")
    print()
    rows: list[list[str]] = []
    summary: list[list[str]] = []
    for index, case in enumerate(cases):
        start = time.perf_counter()
        out = run_case(CASES.index(case), case, trials, seed, drift)
        wall = time.perf_counter() - start
        per = {k: v / trials * 1e3 for k, v in out.seconds.items()}
        agree = (
            f"{sum(i == e for i, e in zip(out.iw, out.exact, strict=True)) / trials:.0%}"
            if out.iw
            else "-"
        )
        d_err = f"{statistics.median(out.statistic_error):.4f}" if out.statistic_error else ""
        iw_rate = rate_cell(out.iw)
        rows.append(
            [
                case.label,
                ",".join(sorted(out.iw_tests)) or "-",
                iw_rate,
                rate_cell(out.exact),
                agree,
                d_err,
                f"{per['draw']:.1f}",
                f"{per['iw']:.1f}",
                f"{per['exact']:.1f}",
                f"{wall:.1f}",
            ]
        )
        if out.checks_failed:
            print(
                f"  CHECK FAILED: {case.label}: report.drifted / drifted_columns disagreed with "
                f"report[col].drifted in {out.checks_failed} trials"
            )
        iw_value = sum(out.iw) / trials if out.iw else None
        summary.append(
            [
                case.label,
                iw_rate,
                rate_cell(out.exact),
                evidently_cell if case.n <= EVIDENTLY_MAX_N else "not run (n > 100k)",
                case.target,
                case.met(iw_value) if iw_value is not None else "-",
                case.significance(out.iw),
            ]
        )
        print(f"  [{index + 1}/{len(cases)}] {case.label}: {wall:.1f} s", flush=True)
    print()
    print_table(
        [
            "case",
            "test",
            "inferwatch",
            "exact scipy",
            "agree",
            "med |dD|",
            "draw ms",
            "iw ms",
            "exact ms",
            "case s",
        ],
        rows,
    )
    print("(med |dD|: median |KS statistic from the sketches - exact KS statistic|;")
    print(" iw ms: two Profile.build + compare per trial; exact ms: the scipy test per trial)")
    print()
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the speed test")
    parser.add_argument("--cols", type=int, default=20, help="columns for the speed test")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per speed case")
    parser.add_argument("--trials", type=int, default=100, help="trials per calibration case")
    parser.add_argument("--seed", type=int, default=20261127, help="base seed for the trials")
    parser.add_argument("--only", help="run only the calibration cases whose label contains this")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-calibration", action="store_true")
    parser.add_argument("--skip-windows", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    print_environment(DISTRIBUTIONS)
    drift: Any = None
    try:
        from inferwatch.drift import Profile, compare

        drift = SimpleNamespace(Profile=Profile, compare=compare)
    except Exception as exc:
        print(
            f"inferwatch.drift: NOT IMPORTABLE ({type(exc).__name__}: {exc}); "
            "only the reference columns are measured\n"
        )
    summary_speed: list[str] = []
    if not args.skip_speed:
        summary_speed = speed(args.rows, args.cols, args.repeats, drift)
    if not args.skip_windows and drift is not None:
        summary_speed += windows_speed(args.repeats)
    summary: list[list[str]] = []
    if not args.skip_calibration:
        summary = calibration(args.trials, args.seed, drift, args.only)
    print("Summary")
    for line in summary_speed:
        print(f"  {line}")
    if summary:
        headers = ["case", "inferwatch", "exact scipy", "Evidently", "target", "met?"]
        print_table([*headers, "binomial test vs target"], summary)
        print(
            "(met?: the observed rate against the target. A test exactly at alpha = 0.05 shows\n"
            " <= 5 false alarms in 100 trials only 62% of the time, so the last column asks\n"
            " whether the rate is significantly worse than the target, one-sided, at 5%.)"
        )
    print(f"\nTotal wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
