"""``inferwatch labels join``: count every delayed label where all processes' telemetry meets.

    inferwatch labels join .inferwatch --once --endpoint http://collector:4318 --metric-tags region
    inferwatch labels join .inferwatch --every 1m
    inferwatch labels join clickhouse://ch:8123/otel --every 1m

Runs `inferwatch.delayed_labels.joiner.LabelJoiner`: one pass (``--once``, the default) or a pass
every interval until SIGTERM or Ctrl-C. Each pass prints one line (or a JSON object). Exit codes
as for the other commands; ``--once`` exits 1 when the export failed (nothing was committed).
With ``--every`` a failed pass (the export, a store not there yet, ClickHouse down, another
joiner's lock) is one line on stderr and the next pass runs at the next interval: never a crash
loop.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from inferwatch.cli.argtypes import integer, names
from inferwatch.cli.drift import Output
from inferwatch.durations import FORMS, parse_duration

if TYPE_CHECKING:
    from inferwatch.delayed_labels.joiner import PassResult

_tags = names("tag", "region,cohort")


def _duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds is None or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like {FORMS}")
    return seconds


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``labels join`` (its handler is ``args.handler``)."""
    labels = commands.add_parser(
        "labels",
        help="delayed labels: join them to their predictions across processes",
        description="Delayed labels. 'labels join' counts every label against its prediction "
        "in the store and exports the label counters over OTLP.",
    )
    actions = labels.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub = actions.add_parser(
        "join",
        help="join labels to predictions in a store and export the label counters",
        description="Join the store's delayed labels (ml.feedback records) to their inference "
        "spans by request id and model, and export ml.label.* counters for every label not "
        "counted before (the serving processes' own joins are skipped). The state is kept in "
        "the store's labels/ directory, so a restart or a second --once counts nothing twice.",
    )
    sub.add_argument(
        "source",
        metavar="STORE",
        help="the store directory, or clickhouse://[user:password@]host:8123/database (the "
        "exporter's otel_traces and otel_logs)",
    )
    when = sub.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="one pass, then exit (the default)")
    when.add_argument("--every", type=_duration, metavar="DURATION", help="a pass every 1m, ...")
    sub.add_argument(
        "--endpoint",
        metavar="URL",
        help="OTLP endpoint for the counters ($OTEL_EXPORTER_OTLP_ENDPOINT, else "
        "http://localhost:4318)",
    )
    sub.add_argument("--protocol", choices=("http/protobuf", "grpc"), help="OTLP protocol")
    sub.add_argument(
        "--metric-tags",
        type=_tags,
        default=[],
        metavar="TAG[,TAG...]",
        help="the serving processes' configure(metric_tags=...)",
    )
    sub.add_argument("--window", default="1h", metavar="DURATION", help="serving window (1h)")
    sub.add_argument(
        "--windows", type=integer(1), default=24, metavar="N", help="windows kept (24)"
    )
    sub.add_argument("--lookback", default="1d", metavar="DURATION", help="labels read (1d)")
    sub.add_argument(
        "--grace",
        default="10m",
        metavar="DURATION",
        help="how long a label waits for its prediction to be stored (10m)",
    )
    sub.add_argument(
        "--max-classes",
        type=integer(1),
        default=100,
        metavar="N",
        help="classes named per model on ml.label.class, then __other__ (100)",
    )
    sub.add_argument(
        "--service-name",
        default="inferwatch-labels",
        help="service.name of the labels without a prediction (the others go out under their "
        "spans' service)",
    )
    sub.add_argument("--format", choices=("table", "json"), default="table", help="output")
    sub.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub.set_defaults(handler=run_join)


def run_join(args: argparse.Namespace) -> Output:
    from inferwatch.delayed_labels.joiner import LabelJoiner

    def joiner() -> LabelJoiner:
        return LabelJoiner(
            args.source,
            endpoint=args.endpoint,
            protocol=args.protocol,
            metric_tags=args.metric_tags,
            window=args.window,
            windows=args.windows,
            lookback=args.lookback,
            grace=args.grace,
            service_name=args.service_name,
            max_classes=args.max_classes,
        )

    if args.every is None:
        once = joiner()  # a missing store, a bad option, ClickHouse down: the exit code says so
        try:
            result = once.run()
        finally:
            once.shutdown()
        return Output(_line(result, args.format), result.notes, 0 if result.exported else 1)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    current: LabelJoiner | None = None
    try:
        while True:
            try:  # ClickHouse down, the store's lock held, an export refused: one line, retried
                current = current or joiner()
                result = current.run()
            except (ValueError, TypeError):  # the command line itself: no retry will fix it
                raise
            except Exception as problem:
                print(f"inferwatch: label join pass failed: {problem}", file=sys.stderr, flush=True)
            else:
                print(_line(result, args.format), flush=True)
                for note in result.notes:
                    print(f"note: {note}", file=sys.stderr, flush=True)
            if stop.wait(args.every):
                return Output("stopped", [])
    except KeyboardInterrupt:
        return Output("stopped", [])
    finally:
        signal.signal(signal.SIGTERM, previous)
        if current is not None:
            current.shutdown()


def _line(result: PassResult, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            {
                "judged": result.judged,
                "unjoined": result.unjoined,
                "pending": result.pending,
                "exported": result.exported,
                "seconds": round(result.seconds, 3),
                "notes": result.notes,
            }
        )
    return result.summary()
