"""Does the export queue keep up? Threads ending spans as fast as they can, one batch processor.

    .venv/bin/python benchmarks/bench_export_queue.py        # ~1 min

Each case: 1 or 2 threads end bare spans in a tight loop for ``--seconds`` into a batch processor
whose exporter discards them; then the provider shuts down. Printed per case: spans per second,
spans made, exported, lost (made - exported) and, for inferwatch's processor (the one its own
pipelines use: an OTLP endpoint, the local store), the drops it counted, which must equal the
lost. The SDK's `BatchSpanProcessor` with its defaults (a queue of 2,048) is the reference; its
worker thread needs the GIL to empty the queue, which two busy threads can keep from it for long
enough to fill 2,048 (tens of milliseconds). Cases alternate over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from _common import DiscardingExporter, print_environment, print_table
from bench_threads import rate
from inferwatch.export.processors import CountedBatchSpanProcessor

Make = Callable[[DiscardingExporter, Callable[[], None]], SpanProcessor]
"""A processor into the exporter, calling the callable for each span it drops (if it can)."""


def run(make: Make, threads: int, seconds: float) -> dict:
    exporter = DiscardingExporter()
    drops: list[None] = []
    processor = make(exporter, lambda: drops.append(None))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")

    def end_spans() -> None:
        with tracer.start_as_current_span("predict", attributes={"model": "bench"}):
            pass

    per_second, made = rate(end_spans, threads, seconds, lambda work: work)
    provider.shutdown()
    return {
        "made": made,
        "per_second": per_second,
        "exported": exporter.exported,
        "counted": len(drops) if isinstance(processor, CountedBatchSpanProcessor) else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per case and round")
    args = parser.parse_args()
    print_environment(("inferwatch", "opentelemetry-api", "opentelemetry-sdk"))

    def sdk(exporter: DiscardingExporter, on_drop: Callable[[], None]) -> SpanProcessor:
        return BatchSpanProcessor(exporter)

    def inferwatch_defaults(
        exporter: DiscardingExporter, on_drop: Callable[[], None]
    ) -> SpanProcessor:
        # inferwatch's pipelines: a queue of 8,192, a delay of 1 s (export/providers.py)
        return CountedBatchSpanProcessor(
            exporter, on_drop, max_queue_size=8192, schedule_delay_millis=1000
        )

    def inferwatch_2048(exporter: DiscardingExporter, on_drop: Callable[[], None]) -> SpanProcessor:
        return CountedBatchSpanProcessor(exporter, on_drop, max_queue_size=2048)

    makers = {
        "SDK BatchSpanProcessor (queue 2,048)": sdk,
        "inferwatch's processor, queue 2,048": inferwatch_2048,
        "inferwatch's processor, its defaults (8,192)": inferwatch_defaults,
    }
    cases = [(name, threads) for threads in (1, 2) for name in makers]
    found: dict[tuple[str, int], list[dict]] = {case: [] for case in cases}
    for round_ in range(args.rounds):
        for name, threads in cases[round_ % len(cases) :] + cases[: round_ % len(cases)]:
            found[(name, threads)].append(run(makers[name], threads, args.seconds))

    rows = []
    for (name, threads), runs in found.items():
        made = sum(r["made"] for r in runs)
        exported = sum(r["exported"] for r in runs)
        counted = [r["counted"] for r in runs]
        rows.append([
            name, str(threads),
            f"{statistics.median(r['per_second'] for r in runs):,.0f}",
            f"{made:,}", f"{exported:,}", f"{made - exported:,} ({(made - exported) / made:.2%})",
            "-" if None in counted else f"{sum(counted):,}",
            "-" if None in counted else ("yes" if sum(counted) == made - exported else "NO"),
        ])  # fmt: skip
    print(f"\nSpans ended by tight loops, {args.rounds} rounds of {args.seconds:g} s a case")
    print_table(
        ["processor", "threads", "spans/s (median)", "made", "exported", "lost", "counted",
         "counted = lost"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
