"""The drift benchmark's peers, run in a virtual environment of their own (see bench_drift.py).

    /work/peers-venv/bin/python benchmarks/_drift_peers.py --cases fa100k,corr --trials 20

alibi-detect 0.13 and NannyML 0.13 need numpy < 2 and pandas < 3, Evidently 0.7 does not import
on pandas 3: they cannot share the project's environment. This script draws the same trials as
bench_drift.py (benchmarks/_drift_cases.py) and prints one JSON object on stdout: per case, per
method, the verdict of every trial and the seconds each comparison took.

How each peer is called (its defaults, unless a column says otherwise):

* alibi-detect: ``KSDrift`` / ``ChiSquareDrift`` (p_val=0.05) on the raw samples; ``MMDDrift``
  (backend "pytorch", p_val=0.05, 100 permutations, Gaussian kernel with its median heuristic)
  on the first ``--mmd-rows`` rows of each side, in ``--mmd-trials`` trials: its cost is
  quadratic in the rows (207 s for one comparison of 5,000 x 8 rows a side on this machine).
* Evidently 0.7: ``ValueDrift(column)`` with its default method (Wasserstein distance > 0.1 for
  numbers, Jensen–Shannon > 0.1 for categories, beyond 1,000 rows), and with method "ks" /
  "chisquare"; drifted when the report's test fails.
* whylogs 1.6: profiles of both sides, ``calculate_drift_scores``; drifted when the category is
  DRIFT (p < 0.05), counted apart when POSSIBLE_DRIFT (0.05 <= p < 0.15).
* NannyML 0.13: ``UnivariateDriftCalculator`` with its default methods (Jensen–Shannon for
  both kinds) and ``DataReconstructionDriftCalculator`` (PCA reconstruction error), each with
  10 chunks per side (its thresholds come from the spread of the reference chunks); drifted
  when any analysis chunk raises an alert.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(__file__))
from _drift_cases import ALPHA, CASES, SEED, Case, checksum, draw

# The peers' usage reporting, off: this machine has no network, and a benchmark calls home to no
# one (NannyML's, Evidently's and its telemetry library's, whylogs' opt-outs).
for name, value in (
    ("NML_DISABLE_USAGE_LOGGING", "1"),
    ("DO_NOT_TRACK", "1"),
    ("ITERATIVE_DO_NOT_TRACK", "1"),
    ("WHYLOGS_NO_ANALYTICS", "1"),
):
    os.environ[name] = value
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
CHUNKS = 10

Method = Callable[[Case, np.ndarray, np.ndarray], Any]  # True/False, or "possible"


def _frame(values: np.ndarray, kind: str) -> pd.DataFrame:
    if values.ndim == 2:
        return pd.DataFrame(values, columns=[f"f{i}" for i in range(values.shape[1])])
    if kind == "categorical":
        return pd.DataFrame({"x": pd.Series([f"c{v:02d}" for v in values], dtype=object)})
    return pd.DataFrame({"x": values})


# ---- alibi-detect -------------------------------------------------------------------------------
def alibi_univariate(case: Case, a: np.ndarray, b: np.ndarray) -> bool:
    from alibi_detect.cd import ChiSquareDrift, KSDrift

    if case.kind == "categorical":
        detector = ChiSquareDrift(a.reshape(-1, 1), p_val=ALPHA)
        return bool(detector.predict(b.reshape(-1, 1))["data"]["is_drift"])
    detector = KSDrift(a.reshape(-1, 1).astype(np.float32), p_val=ALPHA)
    return bool(detector.predict(b.reshape(-1, 1).astype(np.float32))["data"]["is_drift"])


def alibi_mmd(rows: int) -> Method:
    def run(case: Case, a: np.ndarray, b: np.ndarray) -> bool:
        from alibi_detect.cd import MMDDrift

        detector = MMDDrift(a[:rows].astype(np.float32), backend="pytorch", p_val=ALPHA)
        return bool(detector.predict(b[:rows].astype(np.float32))["data"]["is_drift"])

    return run


# ---- Evidently ----------------------------------------------------------------------------------
def evidently(method: str | None) -> Method:
    def run(case: Case, a: np.ndarray, b: np.ndarray) -> bool:
        from evidently import Report
        from evidently.metrics import ValueDrift

        options = {} if method is None else {"method": method}
        report = Report([ValueDrift(column="x", **options)], include_tests=True)
        snapshot = report.run(_frame(b, case.kind), _frame(a, case.kind)).dict()
        (test,) = snapshot["tests"]
        return bool(test["status"] == "FAIL")

    return run


# ---- whylogs ------------------------------------------------------------------------------------
def whylogs(case: Case, a: np.ndarray, b: np.ndarray) -> Any:
    import whylogs as why
    from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores

    scores = calculate_drift_scores(
        target_view=why.log(pandas=_frame(b, case.kind)).view(),
        reference_view=why.log(pandas=_frame(a, case.kind)).view(),
        with_thresholds=True,
    )
    category = scores["x"]["drift_category"]
    return True if category == "DRIFT" else "possible" if category == "POSSIBLE_DRIFT" else False


# ---- NannyML ------------------------------------------------------------------------------------
def nannyml_univariate(case: Case, a: np.ndarray, b: np.ndarray) -> bool:
    import nannyml as nml

    calculator = nml.UnivariateDriftCalculator(column_names=["x"], chunk_size=len(a) // CHUNKS)
    return _nannyml_alerts(calculator, _frame(a, case.kind), _frame(b, case.kind))


def nannyml_reconstruction(case: Case, a: np.ndarray, b: np.ndarray) -> bool:
    import nannyml as nml

    base = _frame(a, case.kind)
    calculator = nml.DataReconstructionDriftCalculator(
        column_names=list(base.columns), chunk_size=len(a) // CHUNKS
    )
    return _nannyml_alerts(calculator, base, _frame(b, case.kind))


def _nannyml_alerts(calculator: Any, base: pd.DataFrame, current: pd.DataFrame) -> bool:
    """Fitted on the baseline's chunks: does any chunk of the current window raise an alert?"""
    calculator.fit(base)
    result = calculator.calculate(current).filter(period="analysis").to_df()
    alerts = [c for c in result.columns if c[-1] == "alert"]
    return bool(result[alerts].to_numpy().any())


def methods(case: Case, mmd_rows: int) -> dict[str, Method]:
    if case.kind == "numeric":
        return {
            "alibi-detect KSDrift": alibi_univariate,
            "Evidently default": evidently(None),
            "Evidently ks": evidently("ks"),
            "whylogs KS": whylogs,
            "NannyML default (univariate)": nannyml_univariate,
        }
    if case.kind == "categorical":
        return {
            "alibi-detect ChiSquareDrift": alibi_univariate,
            "Evidently default": evidently(None),
            "Evidently chisquare": evidently("chisquare"),
            "whylogs chi-square": whylogs,
            "NannyML default (univariate)": nannyml_univariate,
        }
    return {
        f"alibi-detect MMDDrift ({mmd_rows} rows a side)": alibi_mmd(mmd_rows),
        "NannyML data reconstruction (PCA)": nannyml_reconstruction,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", required=True, help="comma-separated case keys")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--mmd-rows", type=int, default=2048)
    parser.add_argument("--mmd-trials", type=int, default=5)
    args = parser.parse_args()
    import alibi_detect
    import evidently as ev
    import nannyml
    import whylogs as why

    out: dict[str, Any] = {
        "versions": {
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "alibi-detect": alibi_detect.__version__,
            "evidently": ev.__version__,
            "nannyml": nannyml.__version__,
            "whylogs": why.__version__,
        },
        "cases": {},
    }
    for key in args.cases.split(","):
        case = CASES[key]
        results: dict[str, Any] = {}
        for name, method in methods(case, args.mmd_rows).items():
            trials = args.mmd_trials if "MMDDrift" in name else args.trials
            verdicts: list[Any] = []
            seconds: list[float] = []
            error = None
            for trial in range(trials):
                a, b = draw(case, trial, args.seed)
                start = time.perf_counter()
                try:
                    verdicts.append(method(case, a, b))
                except Exception as exc:  # reported, not fatal: the other peers still run
                    error = f"{type(exc).__name__}: {exc}"[:300]
                    break
                seconds.append(time.perf_counter() - start)
            results[name] = {"verdicts": verdicts, "seconds": seconds, "error": error}
            done = sum(v is True for v in verdicts)
            print(f"  peers: {case.label}: {name}: {done}/{len(verdicts)}", file=sys.stderr)
        out["cases"][key] = {"checksum": checksum(case, args.seed), "methods": results}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
