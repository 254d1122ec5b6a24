"""The ``inferwatch`` command: where do errors, slow or NaN-laden requests concentrate?

    inferwatch slice --by region,cohort --since 1h
    inferwatch bubble-up --outcome error --since 1h
    inferwatch outliers --since 10m --by duration
    inferwatch slice --by region --since 1h --every 1m
    inferwatch logs --since 1h --where region=eu --severity warning --contains timeout
    inferwatch incident --since 1h --outcome error --html incident.html
    inferwatch profile train.parquet -o baseline.iwp
    inferwatch drift baseline.iwp today.parquet --html drift.html
    inferwatch labels join .inferwatch --once --endpoint http://collector:4318

Each command reads the local store (``--store``, default ``$INFERWATCH_STORE`` or
``.inferwatch``), any directory of OTLP JSON lines files (the collector's ``file`` exporter),
or a ClickHouse server fed by the collector (``--store clickhouse://host:8123/otel``), and
prints a table, JSON or CSV on stdout. Notes about what a result does not show go with the
table, or to stderr for JSON and CSV so stdout stays machine-readable. ``profile`` and ``drift``
(in :mod:`inferwatch.cli.drift`) read data files and saved profiles instead of the store.

Exit codes: 0 success; 1 the query failed (server unreachable, SQL error), or ``drift
--fail-on-drift`` found drift; 2 bad arguments, no store at the given path, or an input file
that is missing, unreadable or of an unsupported format or version. Errors are one line on
stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, NoReturn

from inferwatch import query
from inferwatch.cli import drift as drift_cli
from inferwatch.cli import incident as incident_cli
from inferwatch.cli import labels as labels_cli
from inferwatch.cli.argtypes import integer, names, number
from inferwatch.query import Result, Spans, render
from inferwatch.query.engines import ChdbEngine
from inferwatch.query.outliers import RANKINGS
from inferwatch.query.spans import parse_time
from inferwatch.query.sql import OUTCOMES

PROG = "inferwatch"
FORMATS = ("table", "json", "csv")
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A problem with the command line or its values: exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors become one line (no usage dump) and are handled by `main`."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


_positive_int = integer(1)
_positive_float = number(0)
_names = names("tag", "region,cohort")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Slice stored inference spans: where do errors, slow or NaN-laden "
        "requests concentrate? Profile data and test it for drift.",
        epilog="Run 'inferwatch COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    common = _Parser(add_help=False)
    common.add_argument(
        "--store",
        metavar="URL_OR_DIR",
        help="the local store or a directory of OTLP JSON lines files, or "
        "clickhouse://[user:password@]host:8123/database[?table=otel_traces] "
        "(default: $INFERWATCH_STORE, else .inferwatch)",
    )
    common.add_argument(
        "--until", metavar="TIME", help="end of the window: a duration ago or ISO 8601 (now)"
    )
    common.add_argument(
        "--where",
        metavar="TAG=VALUE",
        nargs="+",
        action="extend",
        default=[],
        help="keep spans (log records) whose tag has this value (repeatable; all must match)",
    )
    common.add_argument("--model", metavar="NAME", help="keep spans of this model only")
    common.add_argument("--format", choices=FORMATS, default="table", help="output (table)")
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    since = "start of the window: a duration ago (90s, 10m, 1h, 2d) or ISO 8601 ({})"

    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub = commands.add_parser(
        "slice",
        parents=[common],
        help="requests, errors, latency and NaN share per combination of tag values",
        description="Requests, errors, error rate, latency quantiles and NaN share per "
        "combination of tag values, sorted by the outcome.",
    )
    sub.add_argument(
        "--by",
        type=_names,
        required=True,
        metavar="TAG[,TAG...]",
        help="tags to group by, e.g. region,cohort",
    )
    sub.add_argument("--since", default="1h", metavar="TIME", help=since.format("1h"))
    _outcome_arguments(sub)
    sub.add_argument("--limit", type=_positive_int, metavar="N", help="rows at most (1000)")
    sub.add_argument(
        "--every",
        metavar="DURATION",
        help="a timeline: one row per bucket of this width (1m, 250ms) and combination, and "
        "when each combination's outcome rate rose",
    )

    sub = commands.add_parser(
        "bubble-up",
        parents=[common],
        help="tag values and combinations over-represented among failing requests",
        description="Tag values and combinations of up to --max-order of them that are "
        "over-represented among the requests with the outcome, with lift and q-value.",
    )
    sub.add_argument("--since", default="1h", metavar="TIME", help=since.format("1h"))
    _outcome_arguments(sub)
    sub.add_argument(
        "--max-order", type=_positive_int, metavar="N", help="combine up to N tags (3)"
    )
    sub.add_argument(
        "--min-support",
        type=_positive_int,
        metavar="N",
        help="ignore slices with fewer requests than this",
    )
    sub.add_argument(
        "--keys",
        type=_names,
        metavar="TAG[,TAG...]",
        help="only these tags (default: every low-cardinality tag seen)",
    )
    sub.add_argument("--top", type=_positive_int, metavar="N", help="rows at most")

    sub = commands.add_parser(
        "outliers",
        parents=[common],
        help="the slowest requests, the longest inputs or the most NaNs, one row each",
        description="One row per request: the N largest by duration, input length or NaN "
        "count, with trace id, request id and tags.",
    )
    sub.add_argument("--since", default="10m", metavar="TIME", help=since.format("10m"))
    sub.add_argument("--by", choices=list(RANKINGS), default="duration", help="rank by (duration)")
    sub.add_argument("--limit", type=_positive_int, default=20, metavar="N", help="rows (20)")
    incident_cli.add_commands(commands, common, since)
    drift_cli.add_commands(commands)
    labels_cli.add_commands(commands)
    return parser


def _outcome_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--outcome",
        choices=list(OUTCOMES),
        default="error",
        help="error (status Error), slow (over --slow-ms, else the window's p95), nan (inputs "
        "with NaNs), wrong (predictions labelled wrong) (error)",
    )
    parser.add_argument(
        "--slow-ms",
        type=_positive_float,
        metavar="MS",
        help="with --outcome slow: the threshold in ms",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    parser = build_parser()
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    # The ClickHouse driver logs its own copy of an error main() reports in one line.
    driver_log = logging.getLogger("clickhouse_connect")
    level = driver_log.level
    if not debug:
        driver_log.setLevel(logging.CRITICAL)
    try:
        return _main(parser, argv, debug)
    finally:
        driver_log.setLevel(level)


def _main(parser: argparse.ArgumentParser, argv: Sequence[str] | None, debug: bool) -> int:
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        handler = getattr(args, "handler", None)
        if handler is not None:  # profile, drift: files, not the store; labels join
            output: drift_cli.Output = handler(args)
            _emit(output.text + "\n", output.notes)
            return output.code
        options = _options(args)
        return _run(args, options)
    except SystemExit as done:  # --help, --version
        return done.code if isinstance(done.code, int) else 0
    except KeyboardInterrupt:
        return 130
    except (UsageError, ValueError) as problem:
        return _fail(problem, EXIT_USAGE, debug)
    except FileNotFoundError as problem:  # no store at that path
        return _fail(problem, EXIT_USAGE, debug)
    except ImportError as problem:
        missing = problem.name or ""
        if missing and not missing.startswith("inferwatch"):
            problem = ImportError(f"{missing} is not installed: pip install 'inferwatch[query]'")
        return _fail(problem, EXIT_FAILED, debug)
    except Exception as problem:  # a query that failed: server down, SQL error
        return _fail(problem, EXIT_FAILED, debug, with_type=True)


def _fail(problem: BaseException, code: int, debug: bool, with_type: bool = False) -> int:
    if debug:
        raise problem
    text = " ".join(line.strip() for line in str(problem).splitlines() if line.strip())
    if len(text) > 400:
        text = text[:399] + "…"
    if with_type or not text:
        text = f"{type(problem).__name__}: {text}".rstrip(": ")
    print(f"{PROG}: error: {text}", file=sys.stderr)
    return code


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for the query method, validated before the store is opened."""
    now = datetime.now(timezone.utc)
    start = parse_time(args.since, now, "--since")
    end = parse_time(args.until, now, "--until")
    if start >= end:
        raise UsageError(f"--since {args.since} is not before --until {args.until or 'now'}")
    options: dict[str, Any] = {"since": args.since, "until": args.until}
    where: dict[str, str] = {}
    for item in args.where:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--where {item!r}: use TAG=VALUE, e.g. region=eu")
        where[key.strip()] = value
    if where:
        options["where"] = where
    if args.model is not None:
        options["model"] = args.model
    if args.command in ("logs", "incident"):
        return {**options, **incident_cli.options(args)}
    if args.command in ("slice", "bubble-up"):
        options["outcome"] = args.outcome
        if args.slow_ms is not None:
            if args.outcome != "slow":
                raise UsageError("--slow-ms applies to --outcome slow only")
            options["slow_ms"] = args.slow_ms
    if args.command == "slice":
        options["by"] = args.by
        if args.limit is not None:
            options["limit"] = args.limit
        if args.every is not None:
            options["every"] = args.every
    elif args.command == "bubble-up":
        given = {
            "max_order": args.max_order,
            "min_support": args.min_support,
            "keys": args.keys,
            "top": args.top,
        }
        options.update({k: v for k, v in given.items() if v is not None})
    else:
        options["by"] = args.by
        options["limit"] = args.limit
    return options


def _run(args: argparse.Namespace, options: dict[str, Any]) -> int:
    spans = query.open(args.store)
    methods: dict[str, Callable[..., Result]] = {
        "slice": spans.slice,
        "bubble-up": spans.bubble_up,
        "outliers": spans.outliers,
        "logs": spans.logs,
    }
    if args.command in ("bubble-up", "incident"):
        importlib.import_module("inferwatch.query.bubble")  # fail here, not mid-spinner
    if args.command == "incident":
        with _progress(spans, args.command):
            text = incident_cli.run_incident(spans, args, options)
        _emit(text, ())
    else:
        with _progress(spans, args.command):
            result = methods[args.command](**options)
        _write(result, args.format)
    skipped = getattr(getattr(spans.engine, "stats", None), "skipped_lines", 0)
    if skipped:
        print(f"note: skipped {skipped} malformed or torn lines in the store", file=sys.stderr)
    return 0


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


@contextmanager
def _progress(spans: Spans, command: str) -> Iterator[None]:
    """A spinner on stderr (a terminal only) while the store is read and the query runs."""
    if not _stderr_is_tty():
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    engine = spans.engine
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        if isinstance(engine, ChdbEngine):
            task = progress.add_task(
                f"reading {engine.directory} (the first query converts its segment files)"
            )
            engine.relation()  # the conversion; later calls only pick up changed files
            progress.update(task, description=f"{command}: querying")
        else:
            progress.add_task(f"{command}: querying {engine!r}")
        yield


def _write(result: Result, fmt: str) -> None:
    if fmt == "table":
        text = str(result) + "\n"
    elif fmt == "json":
        text = render.to_json(result.columns, result.rows) + "\n"
    else:
        text = render.to_csv(result.columns, result.rows)
    _emit(text, result.notes if fmt != "table" else ())


def _emit(text: str, notes: Sequence[str]) -> None:
    """`text` on stdout, then `notes` on stderr (tables carry their notes themselves)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `inferwatch ... | head`: the reader has gone, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("inferwatch")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
