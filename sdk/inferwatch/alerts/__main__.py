"""``python -m inferwatch.alerts``: check policy files, render Prometheus rules and a dashboard.

    python -m inferwatch.alerts check collector_config/alerts.yaml
    python -m inferwatch.alerts render collector_config/alerts.yaml --out collector_config
    python -m inferwatch.alerts render alerts.yaml --out out --target UnderscoreEscapingWithSuffixes

``render`` writes ``OUT/prometheus/inferwatch-alerts.yml`` and
``OUT/grafana/inferwatch-dashboard.json``; the same policies give the same bytes. Metric and
label names are those of ``--target``, the path the metrics take into Prometheus (default: the
file's ``target``, else otel-python):

  otel-python                        the OTel Python SDK's PrometheusMetricReader, scraped
  UnderscoreEscapingWithSuffixes     the collector's prometheus / prometheusremotewrite
                                     exporters, Prometheus' or Mimir's OTLP receiver (their
                                     default translation_strategy)
  UnderscoreEscapingWithoutSuffixes  the same with add_metric_suffixes: false, or that strategy
  NoUTF8EscapingWithSuffixes         Prometheus 3 (or the collector) with that strategy
  NoTranslation                      Prometheus 3 with that strategy

See docs/alerts.md, "Where the metrics go".
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from inferwatch.alerts.grafana import dashboard_json
from inferwatch.alerts.loader import load_rules
from inferwatch.alerts.policy import PolicyError, format_duration
from inferwatch.alerts.prometheus import render_prometheus_rules
from inferwatch.alerts.targets import TARGETS, Target

RULES_FILE = Path("prometheus") / "inferwatch-alerts.yml"
DASHBOARD_FILE = Path("grafana") / "inferwatch-dashboard.json"


def render(policies: Path, out: Path, target: Target | None = None) -> list[Path]:
    """Write the rule file and the dashboard for ``policies`` under ``out``; returns the paths.

    ``target``: the path the metrics take into Prometheus (default: the file's ``target``).
    """
    rules = load_rules(policies)
    written = []
    for relative, text in (
        (RULES_FILE, render_prometheus_rules(rules, source=policies.name, target=target)),
        (DASHBOARD_FILE, dashboard_json(rules, target=target)),
    ):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inferwatch.alerts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a policy file")
    check.add_argument("policies", type=Path)
    render_cmd = commands.add_parser(
        "render",
        help="write Prometheus rules and a dashboard",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    render_cmd.add_argument("policies", type=Path)
    render_cmd.add_argument("--out", type=Path, required=True, help="output directory")
    render_cmd.add_argument(
        "--target",
        choices=TARGETS,
        help="the path the metrics take into Prometheus, which decides their names "
        "(default: the policy file's target, else otel-python)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            rules = load_rules(args.policies)
            for p in rules.policies:
                channels = ", ".join(p.channels)
                print(
                    f"{p.name}: {p.statistic_text()} of {p.metric} over "
                    f"{format_duration(p.window)} {p.op} {p.threshold:g} "
                    f"for {format_duration(p.for_)} [{p.severity}] -> {channels}"
                )
            print(f"{len(rules.policies)} policies OK")
        else:
            for path in render(args.policies, args.out, args.target):
                print(f"wrote {path}")
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
