"""Concurrency and fork: request ids and tags never bleed, forked workers keep instrumenting.

Threads, asyncio tasks, nested ``iw.context`` scopes and generators interleaved between
requests: every exported span must carry the request id and tags of the request that made it,
and nothing else. Forked children (``os.fork``, as gunicorn's pre-fork workers, and
multiprocessing's "fork" start method) keep instrumenting into their own store segment or
exporter, never re-export what the parent had queued, and do not deadlock on locks that another
thread of the parent held at fork time.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace

import inferwatch as iw
from inferwatch import semconv
from inferwatch.store import iter_spans, parse_segment_name
from tests._otlp import FaultyReceiver
from tests.conftest import Captured

OTHER = trace.get_tracer("some.client.library")
THREADS = 6
TASKS = 12

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@iw.monitor(model="score")
def score(x: float) -> float:
    with OTHER.start_as_current_span("feature lookup"):
        return x * 2


@iw.monitor(model="score-async")
async def score_async(x: float) -> float:
    await asyncio.sleep(0)  # let other tasks run in the middle of the call
    with OTHER.start_as_current_span("async feature lookup"):
        await asyncio.sleep(0)
    return x * 2


@iw.monitor(model="tokens")
def tokens(n: int) -> Iterator[int]:
    for i in range(n):
        with OTHER.start_as_current_span("decode step"):
            yield i


@iw.monitor(model="tokens-async")
async def tokens_async(n: int) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        with OTHER.start_as_current_span("async decode step"):
            yield i


def _assert_no_bleed(spans: list[Any]) -> None:
    """Each span's tags are those of its request; a child's request is its parent's."""
    by_id = {span.context.span_id: span for span in spans}
    for span in spans:
        attrs = dict(span.attributes or {})
        rid = attrs.get("ml.request.id")
        assert rid is not None, f"{span.name} carries no request id"
        assert attrs.get("region") == f"region-of-{rid}", (span.name, attrs)
        assert attrs.get("tenant") == f"tenant-of-{rid}", (span.name, attrs)
        parent = by_id.get(span.parent.span_id) if span.parent else None
        if parent is not None:
            assert (parent.attributes or {})["ml.request.id"] == rid, (span.name, parent.name)


def _request(rid: str, **more: str) -> iw.context:
    return iw.context(request_id=rid, region=f"region-of-{rid}", tenant=f"tenant-of-{rid}", **more)


# -- threads x tasks x nested scopes x interleaved generators --------------------------------------
async def _one_request(rid: str) -> int:
    async with _request(rid):
        total = await score_async(1.0)
        with iw.context(step="nested"):  # an inner scope keeps the request id, adds a tag
            assert iw.current_request_id() == rid
            total += score(1.0)
            stream = tokens(3)
            first = next(stream)
        await asyncio.sleep(0)  # other requests run while this stream is half consumed
        async for item in tokens_async(3):
            total += item
        total += first + sum(stream)  # the rest of the stream, outside the nested scope
        assert iw.current_request_id() == rid
        return int(total)


def _thread(index: int, results: dict[str, int]) -> None:
    async def main() -> None:
        rids = [f"t{index}-k{k}" for k in range(TASKS)]
        for rid, total in zip(rids, await asyncio.gather(*map(_one_request, rids)), strict=True):
            results[rid] = total

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_threads_tasks_nested_scopes_and_generators_never_mix_requests(
    telemetry: Captured,
) -> None:
    results: dict[str, int] = {}
    threads = [threading.Thread(target=_thread, args=(i, results)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    requests = THREADS * TASKS
    assert results == {f"t{i}-k{k}": 2 + 2 + 3 + 3 for i in range(THREADS) for k in range(TASKS)}
    spans = telemetry.spans()
    # Per request: 4 inference spans, 1 + 1 lookups, 3 + 3 decode steps.
    assert len(spans) == requests * 12
    _assert_no_bleed(spans)
    inferences = [s for s in spans if s.name.startswith("inference ")]
    assert len({(s.attributes or {})["ml.request.id"] for s in inferences}) == requests
    nested = [s for s in spans if (s.attributes or {}).get("step") == "nested"]
    assert {s.name for s in nested} == {"inference score", "feature lookup", "inference tokens",
                                        "decode step"}  # fmt: skip


@pytest.mark.timeout(60)
def test_a_context_object_shared_by_concurrent_requests_gives_each_its_own_id(
    telemetry: Captured,
) -> None:
    shared = iw.context(region="eu")  # made once, entered by every request

    async def request(n: int) -> str | None:
        async with shared:
            rid = iw.current_request_id()
            await asyncio.sleep(0.001 * (n % 3))  # exits interleave with other tasks' entries
            score(float(n))
            assert iw.current_request_id() == rid
            return rid

    async def many() -> list[str | None]:
        return await asyncio.gather(*(request(n) for n in range(50)))

    rids: list[str | None] = []
    threads = [threading.Thread(target=lambda: rids.extend(asyncio.run(many())))
               for _ in range(4)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(rids) == 200 and len(set(rids)) == 200, "one request id per entry"
    spans = telemetry.spans("inference score")
    assert sorted(str((s.attributes or {})["ml.request.id"]) for s in spans) == sorted(
        map(str, rids)
    )
    assert iw.internal_errors() == {}


def test_interleaved_streams_tag_their_steps_with_their_own_request(telemetry: Captured) -> None:
    with _request("a"):
        stream_a = tokens(4)
        next(stream_a)  # the stream starts in request a
    with _request("b"):
        stream_b = tokens(4)
        next(stream_b)
    with _request("consumer"):  # a third scope drains both, alternating
        for _ in zip(stream_a, stream_b, strict=True):
            assert iw.current_request_id() == "consumer"
    spans = telemetry.spans()
    assert len(spans) == 2 * (1 + 4)
    _assert_no_bleed(spans)
    steps = [s for s in spans if s.name == "decode step"]
    assert sorted((s.attributes or {})["ml.request.id"] for s in steps) == ["a"] * 4 + ["b"] * 4


# -- fork -----------------------------------------------------------------------------------------
def _configure_store(directory: Path) -> None:
    # A long delay: the parent's spans are still queued when it forks.
    iw.configure(service_name="forking", store=str(directory), schedule_delay_ms=60_000)


def _calls(prefix: str, n: int) -> None:
    for i in range(n):
        with iw.context(request_id=f"{prefix}-{i}"):
            assert score(float(i)) == 2.0 * i


def _mp_child(prefix: str) -> None:
    """A multiprocessing worker: it only instruments; nothing here flushes or shuts down."""
    _calls(prefix, 20)


def _store_spans(directory: Path) -> dict[int, list[dict[str, Any]]]:
    """The inference spans of a store, by the pid that wrote their segment."""
    by_pid: dict[int, list[dict[str, Any]]] = {}
    for path in directory.iterdir():
        name = parse_segment_name(path.name)
        if name is not None and name.signal == "traces":
            spans = [s for s in iter_spans(path) if s["name"] == "inference score"]
            by_pid.setdefault(name.pid, []).extend(spans)
    return by_pid


def _request_ids(spans: list[dict[str, Any]]) -> list[str]:
    return sorted(s["attributes"]["ml.request.id"] for s in spans)


@needs_fork
@pytest.mark.timeout(60)
def test_forked_children_instrument_into_their_own_store_segments(tmp_path: Path) -> None:
    _configure_store(tmp_path)
    try:
        _calls("parent-before", 10)  # queued in the parent, not yet written

        pid = os.fork()
        if pid == 0:  # a pre-fork worker, as gunicorn makes them
            code = 1
            try:
                _calls("forked", 20)
                iw.shutdown(timeout_ms=5_000)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0

        context = multiprocessing.get_context("fork")
        worker = context.Process(target=_mp_child, args=("mp",))
        worker.start()
        worker.join(timeout=30)
        assert worker.exitcode == 0

        _calls("parent-after", 10)
    finally:
        iw.shutdown()

    by_pid = _store_spans(tmp_path)
    assert set(by_pid) == {os.getpid(), pid, worker.pid}, "one segment per process"
    parent = [f"parent-before-{i}" for i in range(10)] + [f"parent-after-{i}" for i in range(10)]
    assert _request_ids(by_pid[os.getpid()]) == sorted(parent)
    # A child never exports what its parent had queued, and its own spans reach the store,
    # the multiprocessing worker's too (flushed when it exits, without asking for it).
    assert _request_ids(by_pid[pid]) == sorted(f"forked-{i}" for i in range(20))
    assert _request_ids(by_pid[worker.pid]) == sorted(f"mp-{i}" for i in range(20))
    span_ids = [s["span_id"] for spans in by_pid.values() for s in spans]
    assert len(span_ids) == len(set(span_ids)) == 60


def _mp_child_configures(directory: str) -> None:
    iw.configure(service_name="forked-configure", store=directory)
    _calls("reconfigured", 5)


@needs_fork
@pytest.mark.timeout(60)
def test_fork_while_another_thread_is_mid_export_and_mid_shutdown_does_not_deadlock(
    tmp_path: Path,
) -> None:
    """Locks held by the parent's other threads at fork time are not held in the child.

    The parent's exporter thread is stuck in an export to a collector that does not answer,
    and another thread is inside ``iw.shutdown()`` waiting on that flush (holding the
    configuration lock): the child still instruments, reconfigures and exits.
    """
    with FaultyReceiver() as receiver:
        receiver.hold()
        iw.configure(
            service_name="fork-locks", endpoint=receiver.http_endpoint, schedule_delay_ms=20,
            export_timeout_ms=30_000, logs=False,
        )  # fmt: skip
        _calls("parent", 5)
        deadline = time.monotonic() + 10
        while receiver.waiting < 1:
            assert time.monotonic() < deadline, "the export never reached the receiver"
            time.sleep(0.01)
        stopping = threading.Thread(target=iw.shutdown, kwargs={"timeout_ms": 20_000})
        stopping.start()
        time.sleep(0.2)  # inside shutdown(), waiting on the held export
        assert stopping.is_alive()

        context = multiprocessing.get_context("fork")
        store = tmp_path / "child-store"
        worker = context.Process(target=_mp_child_configures, args=(str(store),))
        worker.start()
        receiver.release()  # the child's shutdown of the inherited pipeline may export too
        worker.join(timeout=40)
        stopping.join(timeout=30)
        assert worker.exitcode == 0, "the child finished (no deadlock)"
    spans = [s for spans in _store_spans(store).values() for s in spans]
    assert _request_ids(spans) == sorted(f"reconfigured-{i}" for i in range(5))
    assert {s["resource"]["service.name"] for s in spans} == {"forked-configure"}


def test_request_ids_differ_between_forked_children() -> None:
    """Request ids come from a generator reseeded after fork: siblings never repeat them."""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    read, write = os.pipe()
    pids = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            os.close(read)
            os.write(write, (iw.new_request_id() + "\n").encode())
            os._exit(0)
        pids.append(pid)
    os.close(write)
    for pid in pids:
        os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        ids = pipe.read().split()
    assert len(ids) == 3 and len(set(ids)) == 3 and iw.new_request_id() not in ids


def _fork_holding(locks: list[Any], child: Callable[[], bool]) -> int:
    """Fork while holding `locks` (as other threads of the parent would); the child's exit code:
    0 when `child()` returned True, 1 when False, 2 when it raised."""
    for lock in locks:
        lock.acquire()
    try:
        pid = os.fork()
        if pid == 0:
            try:
                os._exit(0 if child() else 1)
            except BaseException:
                os._exit(2)
    finally:
        for lock in locks:
            lock.release()
    return _exit_code_or_deadlock(pid)


def _exit_code_or_deadlock(pid: int) -> int:
    """The forked child's exit code; fails the test if it is still running after 30 s."""
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the child deadlocked on a lock inherited from the parent")
        time.sleep(0.02)


@needs_fork
def test_a_forked_child_reports_its_own_calls_of_a_function_the_parent_called(
    telemetry: Captured,
) -> None:
    """A pre-fork server calls the model in the parent (a warm-up) and forks: each worker's
    durations, NaN counts and prediction values are its own calls only, though the parent had
    already bound the model's series."""

    @iw.monitor(model="warm")
    def warm(x: list[float]) -> float:
        return 0.5

    def totals() -> tuple[int, float, int]:
        durations = telemetry.points(semconv.METRIC_INFERENCE_DURATION)
        nans = telemetry.points(semconv.METRIC_INPUT_NAN_COUNT)
        values = telemetry.points(semconv.METRIC_PREDICTION_VALUE)
        return (
            sum(p.count for a, p in durations if a.get("ml.model.name") == "warm"),
            sum(p.value for a, p in nans if a.get("ml.model.name") == "warm"),
            sum(p.count for a, p in values if a.get("ml.model.name") == "warm"),
        )

    with iw.context(request_id="parent", region="eu"):
        for _ in range(5):
            warm([1.0, float("nan")])
    assert totals() == (5, 5, 5)

    def child() -> bool:
        with iw.context(request_id="child", region="eu"):
            for _ in range(2):
                warm([float("nan"), float("nan")])
        return totals() == (2, 4, 2)

    assert _fork_holding([], child) == 0
    assert totals() == (5, 5, 5)  # the parent's own, untouched by the child


def test_counter_and_rate_limiter_locks_held_at_fork_are_free_in_the_child(
    telemetry: Captured,
) -> None:
    """The metric reader may be inside a counter's lock, or a thread inside the internal-error
    or rate-limit lock, when a pre-fork server forks: the child's own calls must not hang."""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    from inferwatch import errors as _internal
    from inferwatch.export.state import get_state
    from inferwatch.summaries.data_checks import RateLimiter

    counter = get_state().nan_count
    limiter = RateLimiter()

    def child() -> bool:  # each of these would block forever on an inherited lock
        counter.add(1, {"ml.model.name": "child"})
        limiter.allow(("event", "child"))
        _internal.log_internal_error("child", RuntimeError("counted"))
        return _internal.internal_errors().get("child") == 1

    assert _fork_holding([counter._lock, limiter._lock, _internal._lock], child) == 0


def test_label_and_click_locks_held_at_fork_are_free_in_the_child(telemetry: Captured) -> None:
    """A label being joined (or the metric reader reading the label counts) in another thread
    of the parent at fork time: the child still serves, remembers and takes labels and clicks."""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    from inferwatch.delayed_labels import current_index
    from inferwatch.ranking import clicks

    def child() -> bool:
        with iw.context(request_id="child-1"), iw.inference("recs") as rec:
            rec.record_prediction("relevant")
            rec.record_ranking(["a", "b"])
        labelled = iw.feedback("child-1", "relevant") == "joined"
        return labelled and iw.feedback("child-1", clicks=["b"]) == "joined"

    held = [current_index()._lock, clicks.served_lists()._lock, clicks._lock]
    assert _fork_holding(held, child) == 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_threads_filling_the_export_queue_have_every_dropped_span_counted() -> None:
    """Four threads end spans into inferwatch's batch processor while its exporter is stuck:
    each span is exported or counted as dropped, once (by ``on_drop`` and in the SDK's
    ``queue_full`` metric), and the queue never holds much more than its bound."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from inferwatch.export.processors import CountedBatchSpanProcessor
    from inferwatch.export.providers import sdk_self_metrics

    release = threading.Event()
    exported: list[int] = []

    class StuckExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            release.wait(10)
            exported.append(len(spans))
            return SpanExportResult.SUCCESS

    drops: list[int] = []
    reader = InMemoryMetricReader()
    with sdk_self_metrics(True):
        processor = CountedBatchSpanProcessor(
            StuckExporter(), on_drop=lambda: drops.append(1), max_queue_size=64,
            max_export_batch_size=16, schedule_delay_millis=1,
            meter_provider=MeterProvider(metric_readers=[reader]),
        )  # fmt: skip
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    threads, per_thread = 4, 2000
    longest = [0]

    def work() -> None:
        for _ in range(per_thread):
            with tracer.start_as_current_span("s"):
                pass
            longest[0] = max(longest[0], len(processor._batch_processor._queue))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    release.set()
    provider.shutdown()
    assert drops, "the stuck exporter let the queue fill"
    assert sum(exported) + len(drops) == threads * per_thread
    assert longest[0] <= 64 + threads
    data = reader.get_metrics_data()
    full = [
        point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "otel.sdk.processor.span.processed"
        for point in metric.data.data_points
        if point.attributes.get("error.type") == "queue_full"
    ]
    assert full == [len(drops)]
