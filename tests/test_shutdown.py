"""Shutdown and crashes: bounded flushes, nothing lost on a clean exit, crashes stay readable.

* ``iw.shutdown()`` flushes everything queued when the collector is up, and returns within its
  deadline when the collector hangs (the guard is pytest-timeout: without the deadline the
  exporter would wait for its own 30 s timeout).
* A process that ends normally, without calling ``iw.shutdown()``, still flushes (atexit).
* SIGTERM, by default: queued telemetry is flushed before the process dies of the signal as it
  would have; an application's own handler is called (its graceful exit flushes through
  atexit), and should it end by restoring the default action and re-raising SIGTERM (as
  uvicorn does) the signal waits for the exit flush; an ignored SIGTERM stays ignored;
  configured from another thread, the guard is armed by the main thread's next request.
  (The servers themselves: tests/test_e2e_serving.py.)
* SIGKILL in the middle of a store write: every complete line stays readable and the torn
  one is skipped and counted.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import inferwatch as iw
from inferwatch.store import ReadStats, iter_segments, iter_spans
from tests._otlp import FaultyReceiver, OtlpReceiver, free_port

PROTOCOLS = ["grpc", "http/protobuf"]


@iw.monitor(model="m")
def predict(x: float) -> float:
    return x


def _calls(n: int, prefix: str = "r") -> None:
    for i in range(n):
        with iw.context(request_id=f"{prefix}-{i}"):
            assert predict(float(i)) == float(i)


def _endpoint(receiver: OtlpReceiver, protocol: str) -> str:
    return f"http://{receiver.grpc_endpoint}" if protocol == "grpc" else receiver.http_endpoint


# -- iw.shutdown() -----------------------------------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_shutdown_flushes_every_queued_span_and_metric(protocol: str) -> None:
    with OtlpReceiver() as receiver:
        iw.configure(
            service_name="shutdown-flush", endpoint=_endpoint(receiver, protocol),
            protocol=protocol, schedule_delay_ms=60_000, metric_export_interval_ms=600_000,
        )  # fmt: skip
        _calls(300)  # all still queued: the next export would be a minute away
        iw.shutdown()
        # No waiting: shutdown() returned, so everything has been delivered.
        assert sorted(s["attributes"]["ml.request.id"] for s in receiver.spans()) == sorted(
            f"r-{i}" for i in range(300)
        )
        durations = [p for p in receiver.metrics() if p["name"] == "ml.inference.duration"]
        assert sum(p["count"] for p in durations) == 300


@pytest.mark.timeout(20)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_shutdown_returns_by_its_deadline_when_the_collector_hangs(
    protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("CRITICAL")
    with FaultyReceiver() as receiver:
        receiver.hold()  # accepts, never answers
        iw.configure(
            service_name="shutdown-hung", endpoint=_endpoint(receiver, protocol),
            protocol=protocol, schedule_delay_ms=20, export_timeout_ms=30_000,
        )  # fmt: skip
        _calls(50)
        iw.shutdown(timeout_ms=500)  # returns: pytest-timeout would fail a 30 s wait
        assert receiver.waiting >= 1, "the export was still held when shutdown() returned"


@pytest.mark.timeout(20)
def test_shutdown_waits_for_a_busy_configuration_only_until_its_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A second shutdown() while the first one is stuck flushing returns by its own deadline."""
    caplog.set_level("CRITICAL")
    with FaultyReceiver() as receiver:
        receiver.hold()
        iw.configure(
            service_name="shutdown-busy", endpoint=receiver.http_endpoint,
            schedule_delay_ms=20, export_timeout_ms=30_000,
        )  # fmt: skip
        _calls(20)
        first = threading.Thread(target=iw.shutdown, kwargs={"timeout_ms": 10_000})
        first.start()
        time.sleep(0.2)
        iw.shutdown(timeout_ms=300)  # returns while the first still holds the configuration
        assert first.is_alive()
        assert iw.internal_errors().get("shutdown", 0) >= 1, "the give-up is counted"
        receiver.release()
        first.join()


# -- a normal exit, without iw.shutdown() ------------------------------------------------------
_EXITING = textwrap.dedent(
    """
    import sys
    import inferwatch as iw

    endpoint, store, protocol = sys.argv[1] or None, sys.argv[2], sys.argv[3]
    iw.configure(service_name="exiting", endpoint=endpoint, store=store, protocol=protocol,
                 schedule_delay_ms=60_000, export_timeout_ms=30_000)

    @iw.monitor(model="m")
    def predict(x):
        return x

    for i in range(40):
        with iw.context(request_id=f"r-{i}"):
            predict(float(i))
    # no iw.shutdown(): the interpreter exits with everything still queued
    """
)


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    # The timeout guards against a hang; the exit flush itself is bounded at 5 s.
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60
    )


def _store_request_ids(store: Path) -> list[str]:
    return sorted(s["attributes"]["ml.request.id"] for s in iter_spans(store))


@pytest.mark.timeout(90)
def test_a_normal_exit_flushes_to_the_store_and_closes_the_segment(tmp_path: Path) -> None:
    done = _run(_EXITING, "", str(tmp_path), "http/protobuf")
    assert done.returncode == 0, done.stderr
    assert _store_request_ids(tmp_path) == sorted(f"r-{i}" for i in range(40))
    (segment,) = iter_segments(tmp_path)
    assert not segment.name.endswith(".open.jsonl"), "closed: complete and durable"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_normal_exit_flushes_to_the_collector(protocol: str, tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        done = _run(_EXITING, _endpoint(receiver, protocol), str(tmp_path), protocol)
        assert done.returncode == 0, done.stderr
        ids = sorted(s["attributes"]["ml.request.id"] for s in receiver.spans())
        assert ids == sorted(f"r-{i}" for i in range(40))


@pytest.mark.timeout(90)
def test_a_normal_exit_with_a_hung_collector_still_exits(tmp_path: Path) -> None:
    with FaultyReceiver() as receiver:
        receiver.hold()
        done = _run(_EXITING, receiver.http_endpoint, str(tmp_path), "http/protobuf")
        assert done.returncode == 0, done.stderr
        assert receiver.waiting >= 1, "it did try to flush"


_COLLECTOR_DOWN = textwrap.dedent(
    """
    import sys, time
    import inferwatch as iw

    iw.configure(service_name="down", endpoint=sys.argv[1], max_queue_size=20_000)

    @iw.monitor(model="m", long_input_quantile=0.99)
    def predict(x):
        return 1.0

    for i in range(6_000):
        predict("a text input, whose lengths a sketch learns")
    started = time.monotonic()
    iw.shutdown()  # the default deadline
    print(f"shutdown {time.monotonic() - started:.1f}", flush=True)
    """
)


@pytest.mark.timeout(25)  # the SDK's own bound is 30 s per processor
def test_shutdown_with_the_collector_down_keeps_its_deadline_and_says_what_was_lost() -> None:
    port = free_port()  # nothing listens there: every export is refused
    done = _run(_COLLECTOR_DOWN, f"http://127.0.0.1:{port}")
    assert done.returncode == 0, done.stderr
    lost = [line for line in done.stderr.splitlines() if "still queued at the deadline" in line]
    assert len(lost) == 1 and "spans still queued at the deadline: lost" in lost[0], done.stderr
    assert "nanobind" not in done.stderr, "no native object outlived the interpreter"


# -- SIGTERM -----------------------------------------------------------------------------------
_TERMINATED = textwrap.dedent(
    """
    import signal, sys, threading
    import inferwatch as iw

    mode, store = sys.argv[1], sys.argv[2]
    stopping = threading.Event()
    if mode in ("application-handler", "server-reraise"):  # installed before configure
        def graceful(signum, frame):
            if mode == "application-handler":
                sys.exit(0)
            stopping.set()  # a server: stop serving, then end as the signal would have
        signal.signal(signal.SIGTERM, graceful)
    elif mode == "ignored":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    options = dict(service_name="terminated", store=store, schedule_delay_ms=60_000)
    if mode == "turned-off":
        options["flush_on_sigterm"] = False
    if mode == "configured-in-a-thread":
        configuring = threading.Thread(target=iw.configure, kwargs=options)
        configuring.start()
        configuring.join()
    else:
        iw.configure(**options)

    @iw.monitor(model="m")
    def predict(x):
        return x

    for i in range(25):
        with iw.context(request_id=f"r-{i}"):
            predict(float(i))
    print("ready", flush=True)
    if mode == "server-reraise":
        stopping.wait(30)
        for i in range(25, 30):  # in-flight requests finish during the graceful stop
            with iw.context(request_id=f"r-{i}"):
                predict(float(i))
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # uvicorn's capture_signals, at its end
        signal.raise_signal(signal.SIGTERM)
        print("still running after the re-raise", flush=True)
    else:
        sys.stdin.readline()  # serving, until SIGTERM (or this line)
    """
)


def _terminate(mode: str, store: Path) -> tuple[int, Any]:
    child = subprocess.Popen(
        [sys.executable, "-c", _TERMINATED, mode, str(store)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "ready\n", child.stderr.read() if child.stderr else ""
        child.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # let a handler run before the line below ends an ignoring child
        try:
            child.stdin.write("still here\n")
            child.stdin.flush()
        except BrokenPipeError:  # it is gone already
            pass
        return child.wait(timeout=30), child
    finally:
        if child.poll() is None:
            child.kill()


@pytest.mark.timeout(60)
def test_sigterm_flushes_by_default_and_the_process_still_dies_of_it(tmp_path: Path) -> None:
    code, _ = _terminate("default", tmp_path)
    assert code == -signal.SIGTERM, "the default action happened, after the flush"
    assert _store_request_ids(tmp_path) == sorted(f"r-{i}" for i in range(25))


@pytest.mark.timeout(60)
def test_sigterm_turned_off_loses_what_was_queued(tmp_path: Path) -> None:
    """What the guard prevents: Python's default SIGTERM action skips atexit."""
    code, _ = _terminate("turned-off", tmp_path)
    assert code == -signal.SIGTERM
    assert not tmp_path.exists() or _store_request_ids(tmp_path) == []


@pytest.mark.timeout(60)
def test_sigterm_goes_to_the_applications_own_handler(tmp_path: Path) -> None:
    code, _ = _terminate("application-handler", tmp_path)
    assert code == 0, "the application's handler ran: it exits cleanly"
    assert _store_request_ids(tmp_path) == sorted(f"r-{i}" for i in range(25))  # via atexit


@pytest.mark.timeout(60)
def test_a_server_re_raising_sigterm_after_its_graceful_stop_loses_nothing(
    tmp_path: Path,
) -> None:
    code, child = _terminate("server-reraise", tmp_path)
    assert code == -signal.SIGTERM, "it still died of the re-raised signal"
    out = child.stdout.read()
    assert "still running after the re-raise" in out, "the signal waited for the exit"
    assert _store_request_ids(tmp_path) == sorted(f"r-{i}" for i in range(30))


@pytest.mark.timeout(60)
def test_an_ignored_sigterm_stays_ignored(tmp_path: Path) -> None:
    code, _ = _terminate("ignored", tmp_path)
    assert code == 0, "it kept running until its input ended, then exited normally"
    assert _store_request_ids(tmp_path) == sorted(f"r-{i}" for i in range(25))


@pytest.mark.timeout(60)
def test_configured_in_a_thread_the_main_threads_next_request_arms_it(tmp_path: Path) -> None:
    code, _ = _terminate("configured-in-a-thread", tmp_path)
    assert code == -signal.SIGTERM
    assert _store_request_ids(tmp_path) == sorted(f"r-{i}" for i in range(25))


# -- SIGKILL in the middle of a store write --------------------------------------------------------
_WRITER = textwrap.dedent(
    """
    import sys
    import inferwatch as iw

    iw.configure(service_name="killed", store=sys.argv[1], schedule_delay_ms=10)

    @iw.monitor(model="m")
    def predict(x):
        return x

    for i in range(50):
        with iw.context(request_id=f"r-{i}"):
            predict(float(i))
    from opentelemetry import trace
    trace.get_tracer_provider().force_flush()
    print("flushed", flush=True)
    # One huge line (a 32 MiB tag): its write takes long enough to be killed in the middle.
    with iw.context(request_id="huge", blob="x" * (32 << 20)):
        predict(0.0)
    import time
    while True:
        time.sleep(1)
    """
)


@pytest.mark.timeout(120)
def test_sigkill_mid_write_leaves_every_complete_line_readable(tmp_path: Path) -> None:
    for attempt in range(8):
        store = tmp_path / f"attempt-{attempt}"
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(store)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None and child.stdout.readline() == "flushed\n"
            written = _bytes_in(store)
            while _bytes_in(store) == written:  # the huge line has started to land
                time.sleep(0.0005)
            child.kill()
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
        stats = ReadStats()
        ids = _store_request_ids_with(store, stats)
        assert ids == sorted(f"r-{i}" for i in range(50)) or ids == sorted(
            [*(f"r-{i}" for i in range(50)), "huge"]
        ), ids
        assert stats.malformed == 0
        if stats.torn:  # killed in the middle of the huge write, as wanted
            assert stats.torn == 1 and "huge" not in ids
            return
    pytest.fail("the kill never landed inside the write in 8 attempts")


def _bytes_in(store: Path) -> int:
    total = 0
    for path in store.iterdir():
        with contextlib.suppress(FileNotFoundError):  # renamed on rotation meanwhile
            total += path.stat().st_size
    return total


def _store_request_ids_with(store: Path, stats: ReadStats) -> list[str]:
    return sorted(s["attributes"]["ml.request.id"] for s in iter_spans(store, stats))
