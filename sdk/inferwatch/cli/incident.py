"""``inferwatch logs`` and ``inferwatch incident``: the log records of a window, and the report
that answers an incident's questions in order (`inferwatch.query.incident`).

    inferwatch logs --since 1h --where region=ap-south --severity warning --contains timeout
    inferwatch logs --since 1h --by region,event
    inferwatch incident --since 1h --outcome error --html incident.html
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from inferwatch.cli.argtypes import integer, names, number
from inferwatch.query import Spans
from inferwatch.query.logs import SEVERITIES
from inferwatch.query.sql import OUTCOMES

_positive_int = integer(1)
_alpha = number(0, high=1)
_names = names("tag", "region,event")


def add_commands(
    commands: argparse._SubParsersAction[Any], common: argparse.ArgumentParser, since: str
) -> None:
    """Register ``logs`` and ``incident`` (with the common options: store, window, format)."""
    sub = commands.add_parser(
        "logs",
        parents=[common],
        help="search the log records of a window, or count them by tag or event",
        description="Log records of the window, newest first, filtered by tags (--where), "
        "severity, event, text in the body, trace or request id; with --by, counts per "
        "combination of tags (or event, severity, service). --outcome keeps the records of "
        "the requests with that outcome (joined on trace id).",
    )
    sub.add_argument("--since", default="1h", metavar="TIME", help=since.format("1h"))
    sub.add_argument(
        "--severity",
        choices=sorted(SEVERITIES, key=SEVERITIES.__getitem__),
        metavar="LEVEL",
        help="records at this level or above: " + ", ".join(SEVERITIES),
    )
    sub.add_argument("--event", metavar="NAME", help="records with this event name")
    sub.add_argument("--contains", metavar="TEXT", help="text in the body (case-insensitive)")
    sub.add_argument("--trace-id", metavar="ID", help="records of this trace")
    sub.add_argument("--request-id", metavar="ID", help="records of this request id")
    sub.add_argument(
        "--outcome",
        choices=list(OUTCOMES),
        help="only records of the window's requests with this outcome (their trace ids)",
    )
    sub.add_argument(
        "--by",
        type=_names,
        metavar="TAG[,TAG...]",
        help="count per combination of these tags; event, severity and service are fields",
    )
    sub.add_argument("--limit", type=_positive_int, default=100, metavar="N", help="rows (100)")

    sub = commands.add_parser(
        "incident",
        parents=[common],
        help="when it started, where, what the logs say, examples, and the inputs",
        description="The incident questions in order: when the outcome's rate rose (timeline "
        "and change point), where (bubble-up, with a timeline per slice), what the logs of "
        "those requests say most often, a few failing examples with their log lines, and "
        "whether the slice's inputs drifted. --html writes the report as one offline page.",
    )
    sub.add_argument("--since", default="1h", metavar="TIME", help=since.format("1h"))
    sub.add_argument(
        "--outcome", choices=list(OUTCOMES), default="error", help="what failed (error)"
    )
    sub.add_argument("--slow-ms", type=number(0), metavar="MS", help="with --outcome slow")
    sub.add_argument("--every", metavar="DURATION", help="bucket width, e.g. 1m (about 60 buckets)")
    sub.add_argument(
        "--alpha", type=_alpha, default=0.01, help="false-alarm rate of the start (0.01)"
    )
    sub.add_argument("--top", type=_positive_int, default=3, metavar="N", help="slices (3)")
    sub.add_argument("--html", metavar="FILE", help="also write the report as an HTML page")


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of `Spans.logs` or `Spans.incident` from the command line."""
    if args.command == "logs":
        given = {
            "severity": args.severity,
            "event": args.event,
            "contains": args.contains,
            "trace_id": args.trace_id,
            "request_id": args.request_id,
            "outcome": args.outcome,
            "by": args.by,
            "limit": args.limit,
        }
        return {k: v for k, v in given.items() if v is not None}
    if args.format == "csv":
        raise ValueError("incident prints --format table or json")
    if args.slow_ms is not None and args.outcome != "slow":
        raise ValueError("--slow-ms applies to --outcome slow only")
    found: dict[str, Any] = {"outcome": args.outcome, "alpha": args.alpha, "top": args.top}
    if args.every is not None:
        from inferwatch.query.timeline import every_seconds

        found["every"] = every_seconds(args.every)
    if args.slow_ms is not None:
        found["slow_ms"] = args.slow_ms
    return found


def run_incident(spans: Spans, args: argparse.Namespace, options: dict[str, Any]) -> str:
    """The report as the text to print; writes ``--html`` first (notes on stderr)."""
    report = spans.incident(**options)
    if args.html:
        from inferwatch.query.incident_html import write_html

        write_html(args.html, report)
        print(f"note: wrote the report to {args.html}", file=sys.stderr)
    if args.format == "json":
        return json.dumps(report.to_dict(), default=str) + "\n"
    return str(report) + "\n"
