"""Delayed labels: the cost of `iw.feedback()` per call, and memory per remembered prediction.

    .venv/bin/python benchmarks/bench_feedback.py        # the tables (~30 s)

Per call, against baselines timed in the same rounds:

* ``feedback(id, label)`` for a remembered prediction (joined: label checked, window counts,
  delay histogram, one ``ml.feedback`` log record), for an unknown id (a log record for a later
  join), and for a duplicate label;
* ``feedback(id, clicks=[item])`` for a remembered ranked list of 10 items (joined: the item's
  position found, CTR counters, delay histogram, one log record);
* baseline A: a bare dict look-up plus an OTel SDK ``Counter.add`` with the same attributes;
* baseline B: a bare dict look-up plus one OTel log record emitted through the same logger
  provider (what any label pipeline writing its labels as logs pays).

Each round re-fills the index (untimed) so every joined call meets an open prediction, then
times the cases in a rotating order over ``--calls`` ids each; per-call times are the loop time
divided by the calls. Log records go through inferwatch's batch processor into an exporter that
discards them; its queue is large enough that none are dropped (checked at the end).

The hot path: an ``@iw.monitor`` call with remembering on, against the same call with it off
(``configure_feedback(max_predictions=0)``), timed round-robin with `_common.measure`. The index
is full after the warm-up, so each remembered call also evicts the oldest prediction. The same
for an inference that records a ranked list of 10 items (remembered for its clicks).

Memory: tracemalloc's traced size before and after remembering 100,000 predictions (each with
a fresh request id, trace id and span id, as a server would have made them), divided by 100,000;
reference: a dict of the same 100,000 fresh request ids to None. Ranked lists of 10 items are
measured with item ids from a catalogue the service holds anyway (only the list is new).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence

import numpy as np
from opentelemetry import metrics, trace
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
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
from inferwatch.delayed_labels import configure_feedback, current_index, feedback
from inferwatch.delayed_labels.index import INDICES, PredictionIndex, set_index
from inferwatch.export.state import get_state
from inferwatch.instrument.context import new_request_id
from inferwatch.instrument.inference import ModelSpec
from inferwatch.ranking import RecordedList
from inferwatch.ranking.clicks import ServedList, served_lists

DISTRIBUTIONS = ("inferwatch", "numpy", "opentelemetry-api", "opentelemetry-sdk")
MEMORY_PREDICTIONS = 100_000
CLASSES = ["approve", "review", "deny"]
ITEMS = [f"item-{i}" for i in range(10_000)]
LIST_SIZE = 10


class DiscardingLogExporter(LogRecordExporter):
    def __init__(self) -> None:
        self.exported = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.exported += len(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def per_call(loop: Callable[[], None], calls: int) -> float:
    gc.collect()
    start = time.perf_counter()
    loop()
    return (time.perf_counter() - start) / calls


def fill(index: PredictionIndex, spec: ModelSpec, attributes: dict, ids: list[str]) -> None:
    for i, request_id in enumerate(ids):
        index.remember(request_id, spec, attributes, CLASSES[i % 3], 1, fake_context())


def fake_context() -> trace.SpanContext:
    """A sampled span's context with fresh ids, as a server's spans would have."""
    return trace.SpanContext(
        random.getrandbits(128), random.getrandbits(64), False, trace.TraceFlags(1)
    )


def fake_span() -> trace.Span:
    return trace.NonRecordingSpan(fake_context())


def ranked_list(i: int) -> RecordedList:
    start = (i * LIST_SIZE) % (len(ITEMS) - LIST_SIZE)
    return RecordedList({}, ITEMS[start : start + LIST_SIZE], None)


def fill_lists(ids: list[str]) -> None:
    lists = served_lists()
    now = lists.index.clock()
    for i, request_id in enumerate(ids):
        lists.remember(ServedList(request_id, "recs", ranked_list(i), now, fake_span()))


def remember_cost(rounds: int, calls: int = 200_000) -> list[float]:
    """Seconds per `PredictionIndex.remember` into a full index of 100,000 (each evicts the
    oldest), fresh request ids, one measurement per round (goal: <= 1 us)."""
    index = PredictionIndex(86400.0, 100_000, 3600.0, 24)
    spec = ModelSpec("bench", "1")
    attributes = {"ml.model.name": "bench"}
    context = fake_context()
    ids = [f"req-{i:09d}" for i in range(100_000 + rounds * calls)]
    remember = index.remember
    for request_id in ids[:100_000]:
        remember(request_id, spec, attributes, "ok", 1, context)
    times = []
    for r in range(rounds):
        chunk = ids[100_000 + r * calls : 100_000 + (r + 1) * calls]

        def loop(chunk: list[str] = chunk) -> None:
            for request_id in chunk:
                remember(request_id, spec, attributes, "ok", 1, context)

        times.append(per_call(loop, calls))
    return times


def label_costs(calls: int, repeats: int) -> dict[str, Result]:
    state = get_state()
    spec = ModelSpec("fraud", "3.1")
    attributes = spec.metrics(state, {"region": "eu"}).attributes
    counter = metrics.get_meter("bench").create_counter("bench.baseline")
    logger = state.logger_provider.get_logger("bench")  # type: ignore[union-attr]
    table = {f"x-{i}": i for i in range(calls)}
    names = ["joined", "unknown id", "duplicate", "A: dict.get + Counter.add",
             "B: dict.get + log record", "clicks joined (list of 10)"]  # fmt: skip
    results = {name: Result(name) for name in names}
    for r in range(repeats):
        configure_feedback(max_predictions=2 * calls)
        ids = [new_request_id() for _ in range(calls)]
        unknown = [new_request_id() for _ in range(calls)]
        fill(current_index(), spec, attributes, ids)
        fill_lists(ids)
        clicked = [[ranked_list(i).keys[i % LIST_SIZE]] for i in range(calls)]
        labels = [CLASSES[(i + 1) % 3] if i % 5 == 0 else CLASSES[i % 3] for i in range(calls)]

        def joined(ids: list[str] = ids, labels: list[str] = labels) -> None:
            for request_id, label in zip(ids, labels, strict=True):
                feedback(request_id, label)

        def unknown_ids(unknown: list[str] = unknown) -> None:
            for request_id in unknown:
                feedback(request_id, "approve")

        def duplicate(ids: list[str] = ids) -> None:
            for request_id in ids:
                feedback(request_id, "approve")

        def clicks(ids: list[str] = ids, clicked: list[list[str]] = clicked) -> None:
            for request_id, items in zip(ids, clicked, strict=True):
                feedback(request_id, clicks=items)

        def counter_add() -> None:
            get, add = table.get, counter.add
            for key in table:
                get(key)
                add(1, attributes)

        def log_record() -> None:
            get, emit = table.get, logger.emit
            for key in table:
                get(key)
                emit(LogRecord(timestamp=time.time_ns(), severity_number=SeverityNumber.INFO,
                               body="label", attributes={**attributes, "ml.request.id": key,
                                                         "ml.label.value": "approve"}))  # fmt: skip

        loops = {names[0]: joined, names[1]: unknown_ids, names[3]: counter_add,
                 names[4]: log_record, names[5]: clicks}  # fmt: skip
        order = list(loops)
        order = order[r % len(order) :] + order[: r % len(order)]
        times = {name: per_call(loops[name], calls) for name in order}
        times[names[2]] = per_call(duplicate, calls)  # after "joined": every id is labelled
        for name, seconds in times.items():
            results[name].per_call.append(seconds)
            results[name].calls += calls
        state.logger_provider.force_flush()  # type: ignore[union-attr]
    return results


def hot_path(repeats: int, min_time: float) -> dict[str, Result]:
    on = PredictionIndex(86400.0, 100_000, 3600.0, 24)
    off = PredictionIndex(86400.0, 0, 3600.0, 24)

    @iw.monitor(model="fraud", version="3.1")
    def predict(x: float) -> str:
        return CLASSES[int(x) % 3]

    def call(index: PredictionIndex) -> None:
        set_index(index)
        with iw.context(region="eu"):
            predict(1.0)

    def serve_list(index: PredictionIndex, items: list[str] = ITEMS[:LIST_SIZE]) -> None:
        set_index(index)
        with iw.inference(model="recs") as rec:
            rec.record_ranking(items)

    return measure({"remembering off": lambda: call(off), "remembering on": lambda: call(on),
                    "ranked list, remembering off": lambda: serve_list(off),
                    "ranked list, remembering on": lambda: serve_list(on)},
                   repeats, min_time)  # fmt: skip


def memory() -> list[list[str]]:
    state = get_state()
    spec = ModelSpec("fraud", "3.1", class_names=CLASSES)
    attributes = spec.metrics(state, {"region": "eu"}).attributes
    batch = (np.zeros(32, dtype=np.int64), INDICES)
    cases: dict[str, Callable[[PredictionIndex, str], None]] = {
        "one class (str)": lambda index, rid: index.remember(
            rid, spec, attributes, CLASSES[len(rid) % 3], 1, fake_context()),
        "one value (float)": lambda index, rid: index.remember(
            rid, spec, attributes, random.random(), 1, fake_context()),
        "a batch of 32 (argmax indices)": lambda index, rid: index.remember(
            rid, spec, attributes, (batch[0].copy(), INDICES), 32, fake_context()),
    }  # fmt: skip
    rows = []
    set_index(PredictionIndex(86400.0, MEMORY_PREDICTIONS, 3600.0, 24))

    def lists() -> object:
        lists = served_lists()
        for i in range(MEMORY_PREDICTIONS):
            served = ServedList(new_request_id(), "recs", ranked_list(i), time.time(), fake_span())
            lists.remember(served)
        return lists

    list_size = _traced(lists)
    assert len(served_lists()) == MEMORY_PREDICTIONS
    reference = _traced(lambda: {new_request_id(): None for _ in range(MEMORY_PREDICTIONS)})
    for name, remember in cases.items():
        index = PredictionIndex(86400.0, MEMORY_PREDICTIONS, 3600.0, 24)

        def run(index: PredictionIndex = index, remember: Callable = remember) -> object:
            for _ in range(MEMORY_PREDICTIONS):
                remember(index, new_request_id())
            return index

        size = _traced(run)
        assert len(index) == MEMORY_PREDICTIONS
        rows.append([name, f"{size / MEMORY_PREDICTIONS:,.0f}", f"{size / 2**20:,.1f}",
                     f"{size / reference:.2f}"])  # fmt: skip
    rows.append([f"a ranked list of {LIST_SIZE} (for its clicks)",
                 f"{list_size / MEMORY_PREDICTIONS:,.0f}", f"{list_size / 2**20:,.1f}",
                 f"{list_size / reference:.2f}"])  # fmt: skip
    rows.append(["reference: dict of the request ids", f"{reference / MEMORY_PREDICTIONS:,.0f}",
                 f"{reference / 2**20:,.1f}", "1.00"])  # fmt: skip
    return rows


def _traced(build: Callable[[], object]) -> float:
    """Bytes still allocated by ``build()`` while its result is alive."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return float(after - before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per case")
    parser.add_argument("--calls", type=int, default=20_000, help="feedback calls per round")
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds per hot-path loop")
    args = parser.parse_args()
    started = time.perf_counter()
    print_environment(DISTRIBUTIONS)
    logs = DiscardingLogExporter()
    iw.configure(
        service_name="bench",
        span_processors=[BatchSpanProcessor(DiscardingExporter(), max_queue_size=1 << 20)],
        metric_readers=[InMemoryMetricReader()],
        log_processors=[BatchLogRecordProcessor(logs, max_queue_size=1 << 20)],
        metric_tags=["region"],
        store=False,
    )
    results = label_costs(args.calls, args.repeats)
    emitted = sum(
        results[n].calls
        for n in ("joined", "unknown id", "B: dict.get + log record", "clicks joined (list of 10)")
    )
    headers = ["case", "min us", "median us", "vs A min", "vs A paired med [range]",
               "vs B paired med [range]"]  # fmt: skip
    a, b = results["A: dict.get + Counter.add"], results["B: dict.get + log record"]
    rows = []
    for result in results.values():
        rows.append([result.label, fmt_us(result.min), fmt_us(result.median),
                     f"{result.min / a.min:.2f}", fmt_ratio(paired_ratios(result, a)),
                     fmt_ratio(paired_ratios(result, b))])  # fmt: skip
    print(f"iw.feedback() per call: {args.repeats} rounds of {args.calls:,} calls per case; "
          "20% of joined labels are wrong")  # fmt: skip
    print_table(headers, rows)
    print()
    hot = hot_path(args.repeats, args.min_time)
    print("Hot path: @iw.monitor call (scalar class prediction, region tag), remembering on/off;")
    print(f"then an iw.inference block recording a ranked list of {LIST_SIZE}")
    rows = []
    for prefix in ("", "ranked list, "):
        off, on = hot[f"{prefix}remembering off"], hot[f"{prefix}remembering on"]
        added = statistics.median(on.per_call) - statistics.median(off.per_call)
        rows += [
            [off.label, fmt_us(off.min), fmt_us(off.median), "", "", ""],
            [on.label, fmt_us(on.min), fmt_us(on.median), f"{on.min / off.min:.2f}",
             fmt_ratio(paired_ratios(on, off)), fmt_us(added)],
        ]  # fmt: skip
    print_table(["case", "min us", "median us", "ratio", "paired ratio med [range]",
                 "added us (median)"], rows)  # fmt: skip
    print()
    remembering = remember_cost(7)
    print(
        "PredictionIndex.remember into a full index of 100,000, fresh request ids (goal <= 1 us): "
        f"min {fmt_us(min(remembering))} us, median {fmt_us(statistics.median(remembering))} us"
    )
    print()
    print(f"Memory per remembered prediction (tracemalloc, {MEMORY_PREDICTIONS:,} predictions)")
    print_table(["prediction", "bytes each", "MiB total", "vs reference"], memory())
    print()
    iw.shutdown()
    lost = "ok" if logs.exported >= emitted else "LOG RECORDS LOST"
    print(f"Check: {logs.exported:,} log records exported, {emitted:,} emitted in timed loops "
          f"(plus warm-up): {lost}")  # fmt: skip
    print()
    print(f"\nTotal wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
