"""Wall time of `import inferwatch` in a fresh interpreter, against numpy + the OTel SDK alone.

    .venv/bin/python benchmarks/bench_import.py            # the table (~10 s)
    .venv/bin/python benchmarks/bench_import.py --runs 9

A serving process that only decorates a function pays this once per worker, at start-up (and
again on every restart and autoscaled replica). Each case runs in its own fresh interpreter,
``--runs`` times, round-robin (the order rotates every round) after one unrecorded warm-up round
that writes the bytecode caches and warms the page cache:

* ``python -c pass``: the interpreter's own start-up, the floor of the process time (it has no
  import to time);
* numpy + OTel SDK (the baseline): ``import numpy, opentelemetry.sdk.trace,
  opentelemetry.sdk.metrics``, what inferwatch cannot avoid loading;
* ``import inferwatch``.

Per case: the import as timed inside the child (``perf_counter`` around the statement), and the
whole process as timed by the parent (start-up, the child's few lines of reporting and teardown
included); best and median of the runs. Ratios are inferwatch over the baseline, as best/best
and as the median of the ratios of the same round. Then one ``python -X importtime -c "import
inferwatch"`` gives the modules with the largest cumulative import time, and the child's
``sys.modules`` tells which heavy optional parts `import inferwatch` loaded, each with the chain
of imports that first pulled it in (read from the importtime nesting).

The children import inferwatch from this checkout's ``sdk/`` (put first on ``PYTHONPATH``),
whatever the virtual environment's own install points at, so the figures belong to the source
revision printed in the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import fmt_ratio, print_environment, print_table

ROOT = Path(__file__).resolve().parent.parent
GOAL_S = 0.30
MARKER = "BENCH-RESULT "
DISTRIBUTIONS = ("inferwatch", "numpy", "opentelemetry-api", "opentelemetry-sdk")
BARE = "python -c pass"
BASELINE = "numpy + OTel SDK (baseline)"
INFERWATCH = "import inferwatch"
CASES: dict[str, str | None] = {
    BARE: None,  # exactly `python -c pass`: no statement to time, no report
    BASELINE: "import numpy, opentelemetry.sdk.trace, opentelemetry.sdk.metrics",
    INFERWATCH: "import inferwatch",
}
HEAVY = (
    "inferwatch.alerts",
    "inferwatch.drift",
    "inferwatch.query",
    "inferwatch.ranking",
    "inferwatch.validation",
    "rich",
    "scipy",
    "pandas",
    "chdb",
    "pydantic",
)
TOP = 15

# Runs in the child: the import timed alone, then (outside the timed part) what got loaded.
CHILD = """\
import time
_started = time.perf_counter()
{statement}
_elapsed = time.perf_counter() - _started
import json, sys
_loaded = {{
    name: sum(1 for m in sys.modules if m == name or m.startswith(name + "."))
    for name in {heavy!r}
}}
_module = sys.modules.get("inferwatch")
print({marker!r} + json.dumps({{
    "import_s": _elapsed, "loaded": _loaded, "file": getattr(_module, "__file__", None),
}}))
"""


@dataclass
class Case:
    label: str
    imports: list[float] = field(default_factory=list)
    """Seconds of the import statement, timed in the child; one entry per run."""
    processes: list[float] = field(default_factory=list)
    """Seconds of the whole child process, timed by the parent; one entry per run."""
    report: dict[str, Any] = field(default_factory=dict)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    path = [str(ROOT / "sdk"), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def run_child(statement: str | None, env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """(seconds of the whole process, the child's report: {} for the bare interpreter)."""
    code = "pass"
    if statement is not None:
        code = CHILD.format(statement=statement, heavy=HEAVY, marker=MARKER)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"child failed ({statement}):\n{done.stderr}")
    if statement is None:
        return elapsed, {}
    line = next(x for x in done.stdout.splitlines() if x.startswith(MARKER))
    report: dict[str, Any] = json.loads(line[len(MARKER) :])
    return elapsed, report


def measure(runs: int, env: dict[str, str]) -> dict[str, Case]:
    cases = {label: Case(label) for label in CASES}
    for statement in CASES.values():  # warm-up round, not recorded
        run_child(statement, env)
    labels = list(CASES)
    for r in range(runs):
        shift = r % len(labels)
        for label in labels[shift:] + labels[:shift]:
            process_s, report = run_child(CASES[label], env)
            if report:
                cases[label].imports.append(report["import_s"])
            cases[label].processes.append(process_s)
            cases[label].report = report
    return cases


@dataclass
class Timed:
    name: str
    depth: int
    self_us: int
    cumulative_us: int


def importtime(env: dict[str, str]) -> list[Timed]:
    """`python -X importtime -c "import inferwatch"`, in the order it prints (children first)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import inferwatch"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"-X importtime failed:\n{done.stderr}")
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line[len("import time:") :].split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        # The name is indented two spaces per level of nesting, after the one of the separator.
        name = fields[2]
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append(Timed(name.strip(), depth, int(fields[0]), int(fields[1])))
    return rows


def chain(rows: list[Timed], name: str) -> list[str]:
    """The modules whose import first pulled `name` in, innermost first.

    `-X importtime` prints a module once, when its import ends, after everything it imported:
    the importer of a line is the next line below it that is one level shallower.
    """
    index = next((i for i, row in enumerate(rows) if row.name == name), None)
    if index is None:
        return []
    found = [name]
    depth = rows[index].depth
    for row in rows[index + 1 :]:
        if row.depth < depth:
            found.append(row.name)
            depth = row.depth
    return found


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per case")
    args = parser.parse_args()
    started = time.perf_counter()
    print_environment(DISTRIBUTIONS)
    env = child_env()
    print(f"Timing: {args.runs} fresh interpreters per case, round-robin, after a warm-up round.")
    cases = measure(args.runs, env)
    print(f"inferwatch imported from {cases[INFERWATCH].report['file']}\n")

    print("Seconds; import = the statement timed in the child, process = the whole child")
    rows = [
        [
            f"  {case.label}",
            fmt_s(min(case.imports)) if case.imports else "-",
            fmt_s(statistics.median(case.imports)) if case.imports else "-",
            fmt_s(min(case.processes)),
            fmt_s(statistics.median(case.processes)),
        ]
        for case in cases.values()
    ]
    headers = ["case", "import best", "import median", "process best", "process median"]
    print_table(headers, rows)

    iw, base, bare = cases[INFERWATCH], cases[BASELINE], cases[BARE]
    print("\nRatios: best/best, and the median [range] of the ratios of the same round")
    for label, case, against in (
        ("import: inferwatch / numpy + OTel SDK", iw.imports, base.imports),
        ("process: inferwatch / numpy + OTel SDK", iw.processes, base.processes),
        ("process: inferwatch / python -c pass", iw.processes, bare.processes),
    ):
        paired = [c / b for c, b in zip(case, against, strict=True)]
        print(f"  {label:<40}  {min(case) / min(against):5.2f}  (paired {fmt_ratio(paired)})")
    extra = min(iw.imports) - min(base.imports)
    print(f"  import inferwatch adds {extra:.3f} s to numpy + OTel SDK (best against best)")

    rows_timed = importtime(env)
    print(f"\nTop {TOP} modules by cumulative import time (one run of -X importtime, ms)")
    top = sorted(rows_timed, key=lambda row: row.cumulative_us, reverse=True)[:TOP]
    print_table(
        ["module", "cumulative", "self"],
        [[f"  {r.name}", f"{r.cumulative_us / 1e3:,.1f}", f"{r.self_us / 1e3:,.1f}"] for r in top],
    )

    print("\nHeavy optional parts loaded by `import inferwatch` (modules in sys.modules)")
    loaded = iw.report["loaded"]
    width = max(len(name) for name in HEAVY)
    for name in HEAVY:
        count = loaded[name]
        if not count:
            print(f"  {name:<{width}}  not loaded")
            continue
        via = chain(rows_timed, name)[1:]
        print(f"  {name:<{width}}  LOADED ({count} modules)" + (f" via {' <- '.join(via)}"))

    best = min(iw.imports)
    met = "met" if best <= GOAL_S else "not met"
    print(f"\nimport inferwatch: best {best:.3f} s (goal <= {GOAL_S:.2f} s): {met}")
    print(f"\nTotal wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
