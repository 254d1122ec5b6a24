"""Two threads calling a monitored function: does inferwatch's aggregation make them queue?

    .venv/bin/python benchmarks/bench_threads.py        # ~20 s

In one process: calls per second of one thread and of two threads, for a bare OTel span and for
`@iw.monitor` (everything on, configured as bench_monitor.py does: a 1x32 row with one NaN, a
scalar prediction, inside `iw.context` with two tags, `region` on metrics). CPython runs one
thread at a time, so two threads do not go faster than one; what matters is that inferwatch's two
threads lose no more to each other than bare spans do. Goal: two monitored threads reach >= 90% of
(two bare threads) x (one monitored thread / one bare thread). The same for a recommender's call
(`iw.inference` recording a ranked list of 10, counted and kept for its clicks), printed without
a goal. Rounds alternate the cases.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from _common import DiscardingExporter, print_environment, print_table
from bench_monitor import configure_everything_on, make_input, predict

TARGET = 0.90


def rate(
    call: Callable[[], object], threads: int, seconds: float, wrap: Callable
) -> tuple[float, int]:
    """Calls per second of `threads` threads each calling `call` for `seconds`, and the calls."""
    counts = [0] * threads
    stop = threading.Event()

    def work(i: int) -> None:
        n = 0
        while not stop.is_set():
            for _ in range(100):
                call()
            n += 100
        counts[i] = n

    workers = [threading.Thread(target=wrap(work), args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - start), sum(counts)


def _pipeline(case: str) -> str:
    return "bare span" if case.startswith("bare") else "inferwatch"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="per case and round")
    args = parser.parse_args()
    print_environment(("inferwatch", "numpy", "opentelemetry-api", "opentelemetry-sdk"))

    import inferwatch as iw
    from inferwatch import ranking

    x = make_input()
    exporters = {"bare span": DiscardingExporter(), "inferwatch": DiscardingExporter()}
    bare_provider = TracerProvider()
    bare_provider.add_span_processor(BatchSpanProcessor(exporters["bare span"]))
    tracer = bare_provider.get_tracer("bench")

    def bare() -> float:
        with tracer.start_as_current_span("predict", attributes={"model": "bench"}):
            return predict(x)

    monitored = configure_everything_on(exporters["inferwatch"])

    def ours() -> float:
        return monitored(x)

    ranking.configure("recs", catalogue_size=10_000, window="1h")
    items = [f"item-{i}" for i in range(10)]

    def ranked() -> None:  # a recommender's call: its list counted and kept for its clicks
        with iw.inference("recs") as rec:
            rec.record_ranking(items)

    def in_scope(work: Callable[[int], None]) -> Callable[[int], None]:
        def scoped(i: int) -> None:
            with iw.context(request_id=f"r-{i}", region="eu", cohort="new"):
                work(i)

        return scoped

    def plain(work: Callable[[int], None]) -> Callable[[int], None]:
        return work

    cases = {
        "bare span, 1 thread": (bare, 1, plain),
        "bare span, 2 threads": (bare, 2, plain),
        "iw.monitor, 1 thread": (ours, 1, in_scope),
        "iw.monitor, 2 threads": (ours, 2, in_scope),
        "ranked list, 1 thread": (ranked, 1, in_scope),
        "ranked list, 2 threads": (ranked, 2, in_scope),
    }
    rates: dict[str, list[float]] = {name: [] for name in cases}
    made = dict.fromkeys(exporters, 0)
    for name, (call, threads, wrap) in cases.items():  # warm-up
        made[_pipeline(name)] += rate(call, threads, 0.1, wrap)[1]
    for round_ in range(args.rounds):
        names = list(cases)[round_ % len(cases) :] + list(cases)[: round_ % len(cases)]
        for name in names:
            call, threads, wrap = cases[name]
            per_second, calls = rate(call, threads, args.seconds, wrap)
            rates[name].append(per_second)
            made[_pipeline(name)] += calls
    iw.shutdown()
    bare_provider.shutdown()

    rows = [
        [name, f"{statistics.median(r):,.0f}", f"{min(r):,.0f}", f"{max(r):,.0f}"]
        for name, r in rates.items()
    ]
    print("\nCalls per second (median, min, max over rounds)")
    print_table(["case", "median", "min", "max"], rows)
    med = {name: statistics.median(r) for name, r in rates.items()}
    expected = (
        med["bare span, 2 threads"] * med["iw.monitor, 1 thread"] / med["bare span, 1 thread"]
    )
    share = med["iw.monitor, 2 threads"] / expected
    print(
        f"\nTwo monitored threads: {med['iw.monitor, 2 threads']:,.0f}/s, expected from the bare "
        f"spans {expected:,.0f}/s: {share:.2f} (goal >= {TARGET:.2f}): "
        f"{'met' if share >= TARGET else 'not met'}"
    )
    alone, two = med["ranked list, 1 thread"], med["ranked list, 2 threads"]
    share = two / (alone * med["bare span, 2 threads"] / med["bare span, 1 thread"])
    print(f"Two threads serving ranked lists: {two:,.0f}/s, {share:.2f} of the expected")
    # Both export through the SDK's BatchSpanProcessor (a queue of 2,048): two threads busy
    # making spans can starve its worker of the GIL long enough for the queue to fill.
    print("\nChecks")
    for name, exporter in exporters.items():
        state = "ok" if exporter.exported == made[name] else "SPANS LOST (queue full)"
        print(f"  {name}: {exporter.exported:,} of {made[name]:,} spans exported: {state}")


if __name__ == "__main__":
    main()
