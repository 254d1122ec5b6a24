"""``python -m inferwatch.alerts``: check policy files, render Prometheus rules and a dashboard.

    python -m inferwatch.alerts check collector_config/alerts.yaml
    python -m inferwatch.alerts render collector_config/alerts.yaml --out collector_config

``render`` writes ``OUT/prometheus/inferwatch-alerts.yml`` and
``OUT/grafana/inferwatch-dashboard.json``; the same policies give the same bytes.
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

RULES_FILE = Path("prometheus") / "inferwatch-alerts.yml"
DASHBOARD_FILE = Path("grafana") / "inferwatch-dashboard.json"


def render(policies: Path, out: Path) -> list[Path]:
    """Write the rule file and the dashboard for ``policies`` under ``out``; returns the paths."""
    rules = load_rules(policies)
    written = []
    for relative, text in (
        (RULES_FILE, render_prometheus_rules(rules, source=policies.name)),
        (DASHBOARD_FILE, dashboard_json(rules)),
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
    render_cmd = commands.add_parser("render", help="write Prometheus rules and a dashboard")
    render_cmd.add_argument("policies", type=Path)
    render_cmd.add_argument("--out", type=Path, required=True, help="output directory")
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
            for path in render(args.policies, args.out):
                print(f"wrote {path}")
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
