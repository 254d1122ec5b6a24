"""Time from a planted fault to firing: in the process vs a real Prometheus, and their agreement.

    .venv/bin/python benchmarks/bench_alert_firing.py            # 3 runs, ~2.5 min
    .venv/bin/python benchmarks/bench_alert_firing.py --runs 1

Runs the scenario of tests/test_e2e_prometheus.py (tests/_alert_scenario.py): a service on the
OTel Python Prometheus exporter, Debian's ``prometheus`` scraping it every second and evaluating
the default policies rendered with 10 s windows (a ``for`` of 3 s where they wait), the same
policies in an `AlertReader` collected every second, ``prometheus-alertmanager`` routing to a
local webhook. 15 s of warm-up and 6 s of healthy traffic, then every fault at once for 20 s.

Per policy, the median over runs of the seconds from the fault to the first firing:

* in-process: the first collection at which the reader has the alert firing;
* Prometheus: the first rule evaluation with the alert firing (``timestamp(ALERTS{...})``);
* webhook: Alertmanager's notification arriving at the receiver (its ``group_wait`` is 1 s);

and the ratio in-process / Prometheus. Each counts the first group that starts firing at or
after the fault; a policy that also fired before it (a drift test rejecting a healthy window,
at its alpha of 0.05 per 2 s window) is noted.

Agreement: at each in-process collection after the first window, for each group, whether the
condition holds in the process and in Prometheus queried at the same instant (paired steps);
and the median of each side's values for the groups that fire, once a whole window (plus two
seconds) has passed since the fault.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from pathlib import Path

from _common import print_environment, print_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests import _alert_scenario as scenario
from tests._alert_scenario import first_after


def _seconds(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the hanging collector makes the exporters complain
    print_environment(["inferwatch", "opentelemetry-sdk", "opentelemetry-exporter-prometheus"])
    times: dict[str, dict[str, list[float]]] = {}
    early: dict[str, int] = {}
    agreement: dict[str, list[int]] = {}
    samples: dict[str, list[tuple[float, float | None]]] = {}
    for number in range(args.runs):
        run = scenario.run()
        try:
            for policy in run.rules.policies:
                name = policy.name
                starts = {
                    "in-process": run.firings_in_process(name),
                    "Prometheus": run.firings_in_prometheus(name),
                    "webhook": [at for at, _ in run.webhooks_of(name)],
                }
                mine = times.setdefault(name, {k: [] for k in starts})
                if any(t < run.fault_at for t in starts["in-process"] + starts["Prometheus"]):
                    early[name] = early.get(name, 0) + 1
                for where, found in starts.items():
                    at = first_after(found, run.fault_at)
                    if at is not None:
                        mine[where].append(at - run.fault_at)
                agree, total, values = run.paired_steps(name)
                counts = agreement.setdefault(name, [0, 0])
                counts[0] += agree
                counts[1] += total
                samples.setdefault(name, []).extend(values)
        finally:
            run.prometheus.stop()
        print(f"run {number + 1} of {args.runs} done", file=sys.stderr)

    print(f"\nSeconds from the planted fault to firing (median of {args.runs} runs)")
    rows = []
    for name, found in times.items():
        process, prometheus = found["in-process"], found["Prometheus"]
        ratio = "-"
        if process and prometheus:
            ratio = f"{statistics.median(process) / statistics.median(prometheus):.2f}"
        note = f"also fired before the fault in {early[name]} run(s)" if name in early else ""
        rows.append([name, _seconds(process), _seconds(prometheus), ratio,
                     _seconds(found["webhook"]), note])  # fmt: skip
    print_table(["policy", "in-process", "Prometheus", "ratio", "webhook", ""], rows)

    print("\nPaired evaluation steps: the condition holds in both or in neither")
    rows = []
    for name, (agree, total) in agreement.items():
        pairs = [(a, b) for a, b in samples[name] if b is not None]
        medians = "-"
        if pairs:
            medians = (f"{statistics.median(a for a, _ in pairs):.4g} / "
                       f"{statistics.median(b for _, b in pairs):.4g}")  # fmt: skip
        rows.append([name, f"{agree}/{total}", f"{agree / total:.3f}" if total else "-",
                     medians])  # fmt: skip
    agree = sum(a for a, _ in agreement.values())
    total = sum(t for _, t in agreement.values())
    rows.append(["all", f"{agree}/{total}", f"{agree / total:.3f}" if total else "-", ""])
    print_table(["policy", "agree", "share", "once faulty: in-process / Prometheus"], rows)


if __name__ == "__main__":
    main()
