"""Drift detection: speed, and calibration and power against the exact tests and the peers.

    .venv/bin/python benchmarks/bench_drift.py               # everything, ~1 h on 2 busy cores
    .venv/bin/python benchmarks/bench_drift.py --only table  # one stage: speed, windows,
                                                             # calibration, table, multivariate
    .venv/bin/python benchmarks/bench_drift.py --only calibration --trials 1000

The peers run in a virtual environment of their own — alibi-detect 0.13 and NannyML 0.13 pin
numpy < 2 and pandas < 3, and Evidently 0.7 does not import on pandas 3 — made once with

    python3.11 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install "alibi-detect[torch]" nannyml evidently "whylogs[viz]" scipy

(`--peers-python` points elsewhere; without it the peers' rows say why they are missing). This
script runs benchmarks/_drift_peers.py there as a subprocess, which draws the same trials from
benchmarks/_drift_cases.py (a checksum of each case's first trial is compared), and reads its
verdicts and times back as JSON.

Speed: `Profile.build` on 1,000,000 rows x 20 float64 columns (standard normal, no NaN), given
as a 2-D array with column names and as a DataFrame (target <= 1.0 s, min of 3), against the
exact numpy equivalents timed round-robin in the same process (`np.quantile` of every column at
100 points; mean, var, min, max and NaN counts per column). A one-off check, untimed, compares
the profile's quantiles with the exact ranks.

Live windows (`DriftWindows`, the serving path): the hot-path cost of `add(X)` plus
`add_predictions(P)` per call against a bare lock-and-append, and the cost of `close_window()`
on 100,000 rows x 20 features (profile + tests of the window and the cumulative merge), of the
close that completes an hour, against `Profile.build` of the same rows.

Calibration (inferwatch and the exact tests, ``--trials`` each, 200 by default): false alarms at
n = 1k, 100k and 1M per side, numeric N(0, 1) and 50 Zipf-like categories; whether the 200
p-values of each unchanged case are uniform (a KS test against U(0, 1)); power at 0.02 sigma
(100k) and 0.01 sigma (1M). The exact tests: `scipy.stats.ks_2samp` on the raw values,
`scipy.stats.chi2_contingency` on the exact counts.

The issue's table (``--table-trials``, 20): the same six cases for inferwatch, the exact tests
and the peers (see _drift_peers.py for how each is called). Multivariate (``--mv-trials``, 100
for inferwatch, ``--table-trials`` for NannyML and the column-by-column exact tests,
``--mmd-trials`` for alibi-detect's MMDDrift): 8 columns whose first two become correlated
(0 -> 0.6) with unchanged marginals, n = 5,000 a side; 384-d embeddings shifted by 0.1 of their
spread along one random direction, n = 2,000 a side (and, for information, by 0.1 of one
coordinate's sigma, which no test can see at that size). Every method's time per comparison is
printed: for inferwatch, both profiles built and compared.

Rates come with a 95% Clopper-Pearson interval.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from _common import fmt_ratio, fmt_us, measure, paired_ratios, print_environment, print_table
from _drift_cases import (
    ALPHA,
    CALIBRATION,
    CATEGORIES,
    COLUMNS,
    MULTIVARIATE,
    SEED,
    TABLE,
    Case,
    checksum,
    draw,
)

DISTRIBUTIONS = ("inferwatch", "numpy", "pandas", "scipy", "datasketches")
FALSE_ALARM_TARGET = 0.05
POWER_TARGET = 0.90
BUILD_TARGET_S = 1.0
LABELS = np.array([f"c{i:02d}" for i in range(CATEGORIES)])
NAMES = [f"f{i}" for i in range(COLUMNS)]
PEERS_PYTHON = "/work/peers-venv/bin/python"
STAGES = ("speed", "windows", "calibration", "table", "multivariate")


# -- speed ----------------------------------------------------------------------------------------


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


# -- live windows ---------------------------------------------------------------------------------


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


# -- trials: inferwatch and the exact tests -------------------------------------------------------


@dataclass
class Trials:
    """The verdicts (and p-values, seconds) of one method on the trials of one case."""

    verdicts: list[Any] = field(default_factory=list)  # True / False / "possible"
    p_values: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    methods: set[str] = field(default_factory=set)
    error: str | None = None

    @property
    def found(self) -> int:
        return sum(v is True for v in self.verdicts)

    def cell(self) -> str:
        if self.error:
            return "error"
        if not self.verdicts:
            return "—"
        possible = sum(v == "possible" for v in self.verdicts)
        extra = f" (+{possible})" if possible else ""
        return f"{self.found}/{len(self.verdicts)}{extra}"


def _category_series(codes: np.ndarray) -> pd.Series:
    return pd.Series(pd.Categorical.from_codes(codes, categories=LABELS))


def inferwatch_trial(case: Case, a: np.ndarray, b: np.ndarray, out: Trials) -> None:
    """Both profiles built and compared; the verdict of the case's test."""
    from inferwatch.drift import Profile, compare

    start = time.perf_counter()
    if case.kind == "numeric":
        base, cur = Profile.build({"x": a}), Profile.build({"x": b})
    elif case.kind == "categorical":
        base = Profile.build({"x": _category_series(a)})
        cur = Profile.build({"x": _category_series(b)})
    elif case.kind == "correlation":
        base, cur = Profile.build(a, columns=NAMES), Profile.build(b, columns=NAMES)
    else:
        base, cur = Profile.build({"emb": a}), Profile.build({"emb": b})
    report = compare(base, cur, alpha=ALPHA)
    out.seconds.append(time.perf_counter() - start)
    if case.kind == "correlation":
        result: Any = report.multivariate
        out.methods.add("mmd")
    else:
        result = report["emb" if case.kind == "embedding" else "x"]
        out.methods.add(str(result.method or result.test))
    out.verdicts.append(bool(result.drifted))
    out.p_values.append(float(result.p_value) if result.p_value is not None else 1.0)


def report_trial(case: Case, a: np.ndarray, b: np.ndarray, out: Trials) -> None:
    """The correlation case: any test of the report (the 8 columns and the multivariate one)."""
    from inferwatch.drift import Profile, compare

    start = time.perf_counter()
    report = compare(Profile.build(a, columns=NAMES), Profile.build(b, columns=NAMES))
    out.seconds.append(time.perf_counter() - start)
    out.verdicts.append(bool(report.drifted))


def exact_trial(case: Case, a: np.ndarray, b: np.ndarray, out: Trials) -> None:
    """scipy on the raw data; for rows, KS on every column with Benjamini–Hochberg."""
    start = time.perf_counter()
    if case.kind == "numeric":
        p = float(stats.ks_2samp(a, b).pvalue)
    elif case.kind == "categorical":
        table = np.vstack(
            [np.bincount(a, minlength=CATEGORIES), np.bincount(b, minlength=CATEGORIES)]
        )
        table = table[:, table.sum(axis=0) > 0]
        p = float(stats.chi2_contingency(table, correction=False).pvalue)
    else:
        ps = [stats.ks_2samp(a[:, j], b[:, j]).pvalue for j in range(a.shape[1])]
        p = float(np.min(stats.false_discovery_control(ps, method="bh")))
    out.seconds.append(time.perf_counter() - start)
    out.verdicts.append(p <= ALPHA)
    out.p_values.append(p)


def run_trials(
    case: Case, trials: int, seed: int, runners: dict[str, Callable[..., None]]
) -> dict[str, Trials]:
    results = {name: Trials() for name in runners}
    for trial in range(trials):
        a, b = draw(case, trial, seed)
        for name, runner in runners.items():
            runner(case, a, b, results[name])
    return results


def rate_cell(flags: list[Any]) -> str:
    if not flags:
        return "-"
    k, n = sum(f is True for f in flags), len(flags)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return f"{k / n:6.1%} [{ci.low:.1%}-{ci.high:.1%}]"


def seconds_cell(seconds: list[float]) -> str:
    return f"{statistics.median(seconds) * 1e3:,.1f}" if seconds else "-"


# -- the peers ------------------------------------------------------------------------------------


def run_peers(
    python: str, cases: list[Case], trials: int, mmd_trials: int, seed: int
) -> tuple[dict[str, Any], str]:
    """The peers' results from _drift_peers.py in their venv, or ({}, why not)."""
    if not Path(python).exists():
        return {}, f"no peers' Python at {python} (see this script's docstring)"
    script = Path(__file__).with_name("_drift_peers.py")
    argv = [python, str(script), "--cases", ",".join(c.key for c in cases)]
    argv += ["--trials", str(trials), "--mmd-trials", str(mmd_trials), "--seed", str(seed)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    progress = [line for line in done.stderr.splitlines() if line.startswith("  peers:")]
    print("\n".join(progress), flush=True)
    if done.returncode != 0:
        return {}, f"the peers' run failed: {done.stderr.strip().splitlines()[-1:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    for case in cases:
        theirs = result["cases"][case.key]["checksum"]
        if theirs != checksum(case, seed):
            return {}, f"{case.label}: the peers drew other data ({theirs})"
    return result, ""


def peer_trials(peers: dict[str, Any], case: Case, name: str) -> Trials:
    found = peers.get("cases", {}).get(case.key, {}).get("methods", {}).get(name)
    if found is None:
        return Trials()
    return Trials(verdicts=found["verdicts"], seconds=found["seconds"], error=found["error"])


# -- stages ---------------------------------------------------------------------------------------


def calibration(trials: int, seed: int) -> list[str]:
    print(f"Calibration: {trials} trials per case, alpha = {ALPHA}, seed = {seed}; rates with a")
    print("95% Clopper-Pearson interval; uniformity: KS test of the p-values against U(0, 1).")
    rows, summary = [], []
    for case in CALIBRATION:
        start = time.perf_counter()
        runners = {"inferwatch": inferwatch_trial, "exact": exact_trial}
        got = run_trials(case, trials, seed, runners)
        iw, exact = got["inferwatch"], got["exact"]
        uniform = ""
        if not case.drifted:
            uniform = f"{stats.kstest(iw.p_values, 'uniform').pvalue:.3f}"
            uniform += f" / {stats.kstest(exact.p_values, 'uniform').pvalue:.3f}"
        rate = iw.found / trials
        if case.drifted:
            target = f">= {POWER_TARGET:.0%}" if case.key == "s002" else "(info)"
            met = ("yes" if rate >= POWER_TARGET else "NO") if case.key == "s002" else ""
        else:
            target, met = (
                f"<= {FALSE_ALARM_TARGET:.0%}",
                "yes" if rate <= FALSE_ALARM_TARGET else "NO",
            )
        rows.append([
            case.label, ",".join(sorted(iw.methods)), rate_cell(iw.verdicts),
            rate_cell(exact.verdicts), uniform, target, met, seconds_cell(iw.seconds),
            seconds_cell(exact.seconds),
        ])  # fmt: skip
        summary.append(
            f"{case.label}: inferwatch {iw.found}/{trials}, exact {exact.found}/{trials}"
        )
        print(f"  {case.label}: {time.perf_counter() - start:.0f} s", flush=True)
    print()
    headers = ["case", "test", "inferwatch", "exact scipy", "uniform p (iw / exact)"]
    headers += ["target", "met?", "iw ms", "exact ms"]
    print_table(headers, rows)
    print("(iw ms: two Profile.build + compare per trial, median; exact ms: the scipy test)")
    print()
    return summary


_NANNYML = "NannyML default (univariate)"
TABLE_ROWS = [  # (row, method for numeric cases, for categorical ones)
    ("exact scipy KS / chi²", "exact", "exact"),
    (
        "alibi-detect KSDrift / ChiSquareDrift",
        "alibi-detect KSDrift",
        "alibi-detect ChiSquareDrift",
    ),
    ("Evidently default", "Evidently default", "Evidently default"),
    ("Evidently ks / chisquare", "Evidently ks", "Evidently chisquare"),
    ("whylogs KS / chi² (+possible)", "whylogs KS", "whylogs chi-square"),
    ("NannyML default (any of 10 chunks)", _NANNYML, _NANNYML),
    ("inferwatch", "inferwatch", "inferwatch"),
]


def issue_table(trials: int, seed: int, peers_python: str) -> list[str]:
    print(f"The issue's table: {trials} trials per case, the same data for every method.")
    mine = {
        c.key: run_trials(c, trials, seed, {"inferwatch": inferwatch_trial, "exact": exact_trial})
        for c in TABLE
    }
    peers, why_not = run_peers(peers_python, TABLE, trials, 0, seed)
    if why_not:
        print(f"peers: not run ({why_not})")
    rows, times = [], []
    for label, numeric, categorical in TABLE_ROWS:
        cells, seconds = [], []
        for case in TABLE:
            name = categorical if case.kind == "categorical" else numeric
            got = mine[case.key].get(name) or peer_trials(peers, case, name)
            cells.append(got.cell())
            if case.key == "fa100k":
                seconds = got.seconds
            if case.key == "fa1m":
                times.append([label, seconds_cell(seconds), seconds_cell(got.seconds)])
        rows.append([label, *cells])
    print()
    print_table(["", *(c.label for c in TABLE)], rows)
    print("Time per comparison (median ms; inferwatch: both profiles built, then compared):")
    print_table(["method", "n=100k", "n=1M"], times)
    if peers:
        print(f"peers' versions: {peers['versions']}")
    print()
    return [f"{r[0]}: {', '.join(r[1:])}" for r in rows]


def multivariate(
    mv_trials: int, trials: int, mmd_trials: int, seed: int, peers_python: str
) -> list[str]:
    print(f"Multivariate: inferwatch {mv_trials} trials, the exact column-by-column tests and")
    print(f"NannyML {trials}, alibi-detect MMDDrift {mmd_trials}; the same data for every method.")
    mine = {}
    for case in MULTIVARIATE:
        runners: dict[str, Callable[..., None]] = {"inferwatch": inferwatch_trial}
        if case.kind == "correlation":
            runners["report"] = report_trial
        mine[case.key] = run_trials(case, mv_trials, seed, runners)
        mine[case.key].update(run_trials(case, trials, seed, {"exact": exact_trial}))
        print(f"  {case.label}: done", flush=True)
    peers, why_not = run_peers(peers_python, MULTIVARIATE, trials, mmd_trials, seed)
    if why_not:
        print(f"peers: not run ({why_not})")
    names = [
        ("inferwatch (multivariate test / vector feature)", "inferwatch"),
        ("inferwatch, report.drifted (8 columns + together)", "report"),
        ("exact scipy KS per column + BH", "exact"),
        ("alibi-detect MMDDrift (2,048 rows a side)", "alibi-detect MMDDrift (2048 rows a side)"),
        ("NannyML data reconstruction (any of 10 chunks)", "NannyML data reconstruction (PCA)"),
    ]
    rows, summary = [], []
    for label, name in names:
        cells = []
        for case in MULTIVARIATE:
            got = mine[case.key].get(name) or peer_trials(peers, case, name)
            cells.append(
                f"{got.cell()} ({seconds_cell(got.seconds)} ms)" if got.verdicts else got.cell()
            )
        rows.append([label, *cells])
        summary.append(f"{label}: {', '.join(cells)}")
    print()
    print_table(["", *(c.label for c in MULTIVARIATE)], rows)
    print("(found/trials, and the median time per comparison)")
    print()
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the speed test")
    parser.add_argument("--cols", type=int, default=20, help="columns for the speed test")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per speed case")
    parser.add_argument("--trials", type=int, default=200, help="trials per calibration case")
    parser.add_argument("--table-trials", type=int, default=20, help="trials of the issue's table")
    parser.add_argument("--mv-trials", type=int, default=100, help="inferwatch multivariate trials")
    parser.add_argument("--mmd-trials", type=int, default=5, help="alibi-detect MMDDrift trials")
    parser.add_argument("--seed", type=int, default=SEED, help="base seed for the trials")
    parser.add_argument("--only", choices=STAGES, action="append", help="run only these stages")
    parser.add_argument("--peers-python", default=PEERS_PYTHON, help="the peers' venv's python")
    args = parser.parse_args()
    stages = args.only or list(STAGES)

    started = time.perf_counter()
    print_environment(DISTRIBUTIONS)
    import inferwatch.drift as drift

    summary: list[str] = []
    if "speed" in stages:
        summary += speed(args.rows, args.cols, args.repeats, drift)
    if "windows" in stages:
        summary += windows_speed(args.repeats)
    if "calibration" in stages:
        summary += calibration(args.trials, args.seed)
    if "table" in stages:
        summary += issue_table(args.table_trials, args.seed, args.peers_python)
    if "multivariate" in stages:
        summary += multivariate(
            args.mv_trials, args.table_trials, args.mmd_trials, args.seed, args.peers_python
        )
    print("Summary")
    for line in summary:
        print(f"  {line}")
    print(f"\nTotal wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
