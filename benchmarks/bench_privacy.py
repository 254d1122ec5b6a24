"""Added cost of scrubbing tags and log attributes, relative to the same path with it turned off.

    .venv/bin/python benchmarks/bench_privacy.py        # the table (~30 s)

Each pair of cases runs the same code with a different `Scrubber` installed: the one of
``configure(redact=False)`` (no rules: values are only cleaned, as without a privacy layer)
as the baseline, and the default one (credential keys, e-mail/bearer/JWT/credential patterns),
optionally with ``hash_tags`` and a user hook. Cases are timed round-robin in one process, so a
ratio compares two loops under the same load. Paths:

* the scrubbing alone: `Scrubber.tags` of the 3 tags and `Scrubber.value` of a unique request
  id, which is what `iw.context` adds per request (the baseline only cleans the values);
* scope: ``with iw.context(request_id=<unique>, region, cohort, user_id)`` entered and left
  (the request id differs on every call, as ids from headers do);
* monitored call: the scope plus an ``@iw.monitor`` call on a 1x32 float row, exporting
  through a `BatchSpanProcessor` into an exporter that discards spans;
* structlog event: ``log.info(event, 3 fields)`` inside the scope, bridged to an OTel log record
  (in-memory exporter) and rendered by nothing;
* long strings: `Scrubber.text` on 1 MB strings built to make careless patterns backtrack,
  reported in ms per MB (the cost must grow linearly with the length).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import time
from collections.abc import Callable

import numpy as np
import structlog
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import inferwatch as iw
from _common import (
    DiscardingExporter,
    Result,
    fmt_ratio,
    fmt_us,
    measure,
    paired_ratios,
    print_environment,
    print_table,
)
from inferwatch.export import privacy
from inferwatch.export.privacy import Scrubber

DISTRIBUTIONS = ("inferwatch", "opentelemetry-api", "opentelemetry-sdk", "structlog")
KEY = b"benchmark-hash-key-0123456789"
OFF = Scrubber(defaults=False)
SCRUBBERS = {
    "off (redact=False)": OFF,
    "defaults": Scrubber(),
    "defaults + hash_tags=[user_id]": Scrubber(hash_tags=["user_id"], hash_key=KEY),
    "defaults + hash + hook": Scrubber(
        hash_tags=["user_id"], hash_key=KEY, scrub=lambda key, value: value
    ),
}
TAGS = {"region": "eu-west-1", "cohort": "returning", "user_id": "u-1234567"}
HOSTILE_MB = {
    "letters, one '@' at the end": "a" * 1_000_000 + "@",
    "'a@' repeated": "a@" * 500_000,
    "'eyJaaaa.' repeated": "eyJaaaa." * 125_000,
    "'x://a:' repeated": "x://a:" * 166_667,
    "'password=' repeated": "password=" * 111_112,
}


def tags_case(scrubber: Scrubber, ids: itertools.cycle[str]) -> Callable[[], object]:
    def run() -> None:
        scrubber.tags(TAGS)
        scrubber.value("ml.request.id", next(ids))

    return run


def scope_case(scrubber: Scrubber, ids: itertools.cycle[str]) -> Callable[[], object]:
    def run() -> None:
        privacy.install(scrubber)
        with iw.context(request_id=next(ids), **TAGS):
            pass

    return run


def monitored_case(
    scrubber: Scrubber, ids: itertools.cycle[str], predict: Callable[[np.ndarray], float]
) -> Callable[[], object]:
    x = np.zeros((1, 32))

    def run() -> None:
        privacy.install(scrubber)
        with iw.context(request_id=next(ids), **TAGS):
            predict(x)

    return run


def log_case(scrubber: Scrubber, ids: itertools.cycle[str]) -> Callable[[], object]:
    log = structlog.get_logger("bench")

    def run() -> None:
        privacy.install(scrubber)
        with iw.context(request_id=next(ids), **TAGS):
            log.info("scored request", score=0.75, items=3, note="fine, nothing to hide")

    return run


def table(title: str, results: dict[str, Result], baseline: str) -> list[list[str]]:
    base = results[baseline]
    rows = [[f"[{title}]", "", "", "", ""]]
    for label, result in results.items():
        extra = "" if label == baseline else f"{(result.min - base.min) * 1e6:+,.2f}"
        ratios = fmt_ratio(paired_ratios(result, base))
        rows.append([f"  {label}", fmt_us(result.min), fmt_us(result.median), extra, ratios])
    rows.append([""] * 5)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed loops per case")
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds per timed loop")
    args = parser.parse_args()
    started = time.perf_counter()
    print_environment(DISTRIBUTIONS)
    print(f"Timing: {args.repeats} repeats of ~{args.min_time:g} s loops per case, round-robin.\n")

    logs = InMemoryLogRecordExporter()
    exporter = DiscardingExporter()
    iw.configure(
        service_name="bench",
        store=False,
        span_processors=[BatchSpanProcessor(exporter)],
        metric_readers=[InMemoryMetricReader()],
        log_processors=[SimpleLogRecordProcessor(logs)],
        metric_tags=["region"],
    )
    structlog.configure(
        processors=[*iw.logs.processors()], logger_factory=structlog.ReturnLoggerFactory()
    )
    predict = iw.monitor(model="bench", version="1")(lambda x: 0.5)
    ids = itertools.cycle([f"req-{i:08d}" for i in range(200_000)])
    rows: list[list[str]] = []
    baseline = next(iter(SCRUBBERS))
    for title, make in (
        ("the scrubbing alone: request id + 3 tags", tags_case),
        ("scope: iw.context(request_id, 3 tags)", scope_case),
        ("monitored call in a scope", functools.partial(monitored_case, predict=predict)),
        ("structlog event in a scope", log_case),
    ):
        cases = {label: make(scrubber, ids) for label, scrubber in SCRUBBERS.items()}
        rows += table(title, measure(cases, args.repeats, args.min_time), baseline)
        logs.clear()
    privacy.install(None)
    print("Per-call cost in microseconds; ratio = case / the same path with redact=False")
    headers = ["case", "min us", "median us", "+us vs off", "paired ratio med [range]"]
    print_table(headers, rows[:-1])

    print("\nScrubber.text on hostile 1 MB strings (default patterns)")
    scrubber = Scrubber()
    hostile_rows = []
    for label, text in HOSTILE_MB.items():
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            scrubber.text(text)
            timings.append(time.perf_counter() - start)
        mb = len(text) / 1e6
        hostile_rows.append([f"  {label}", f"{min(timings) / mb * 1e3:,.1f}"])
    typical = "user 4711 scored 0.93 for request abc; model v3; " * 80  # ~4 kB, no matches
    loops = 2000
    start = time.perf_counter()
    for _ in range(loops):
        scrubber.text(typical)
    per_mb = (time.perf_counter() - start) / loops / (len(typical) / 1e6)
    hostile_rows.append([f"  ordinary 4 kB log message (x{loops})", f"{per_mb * 1e3:,.1f}"])
    print_table(["input", "ms per MB"], hostile_rows)

    iw.shutdown()
    print(f"\nSpans exported and discarded: {exporter.exported:,}")
    print(f"Total wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
