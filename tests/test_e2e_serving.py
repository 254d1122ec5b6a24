"""End to end: a model server under real uvicorn and gunicorn, stopped by SIGTERM, loses nothing.

`tests/apps/serving.py` is a FastAPI app as users write one (OpenTelemetry's FastAPI
instrumentation, ``@iw.monitor``, inferwatch configured from ``OTEL_*`` with its defaults: the
SDK's 5 s span batching and 60 s metric interval, no lifespan hook, no ``iw.shutdown()``). Each
server mode is started as users start it, sent requests (some carrying a ``traceparent``), and
sent SIGTERM as soon as the last response arrived — what a Kubernetes rollout does to a pod.
Then, in the OTLP receiver: every inference span, every duration in ``ml.inference.duration``
(summed over the distinct series: one per process), one ``service.instance.id`` per process
that served, and the caller's trace continued by a SERVER span.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._otlp import OtlpReceiver, free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[1]
APP = "tests.apps.serving:application"
REQUESTS = 300
TRACED_EVERY = 10
"""Every 10th request carries a ``traceparent`` of the caller's trace."""
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"

pytest.importorskip("gunicorn", reason="the gunicorn modes need gunicorn (the dev extra)")
pytest.importorskip("uvicorn_worker", reason="gunicorn's uvicorn worker (the dev extra)")
pytest.importorskip("opentelemetry.instrumentation.fastapi", reason="the dev extra")


def _command(mode: str, port: int) -> list[str]:
    bind = ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    python = sys.executable
    return {
        "uvicorn": [python, "-m", "uvicorn", APP, *bind],
        "uvicorn --workers 2": [python, "-m", "uvicorn", APP, *bind, "--workers", "2"],
        "gunicorn": [
            python, "-m", "gunicorn", "-w", "2", "-k", "uvicorn_worker.UvicornWorker",
            "-b", f"127.0.0.1:{port}", APP,
        ],
        "gunicorn --preload": [
            python, "-m", "gunicorn", "-w", "2", "-k", "uvicorn_worker.UvicornWorker",
            "--preload", "-b", f"127.0.0.1:{port}", APP,
        ],
    }[mode]  # fmt: skip


MODES = ["uvicorn", "uvicorn --workers 2", "gunicorn", "gunicorn --preload"]


@dataclass
class Run:
    """One server run: what was sent, what the server said, how it ended."""

    service: str
    request_ids: set[str] = field(default_factory=set)
    pids: set[int] = field(default_factory=set)
    traced: set[str] = field(default_factory=set)
    """Request ids of the requests sent with the caller's ``traceparent``."""
    returncode: int | None = None
    stop_delay_s: float = 0.0
    """From the last response to SIGTERM."""
    output: str = ""


def _send(url: str, i: int) -> dict[str, Any]:
    headers = {"x-request-id": f"req-{i}", "x-region": "eu", "x-cohort": "b", "connection": "close"}
    if i % TRACED_EVERY == 0:
        headers["traceparent"] = f"00-{CALLER_TRACE}-{i + 1:016x}-01"
    row = {"x": [float(i), 1.0, 2.0]}
    response = httpx.post(f"{url}/predict", json=row, headers=headers, timeout=10)
    response.raise_for_status()
    return {"i": i, **response.json()}


def serve_and_stop(
    mode: str,
    receiver: OtlpReceiver | None,
    tmp: Path,
    stop: signal.Signals = signal.SIGTERM,
    scope: str = "middleware",
) -> Run:
    """Start ``mode``, send `REQUESTS` requests, ``stop`` right after the last response.

    Without a receiver, the app writes to the local store in ``tmp / "store"``.
    """
    run = Run(service=f"serving-{uuid.uuid4().hex[:8]}")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "INFERWATCH_"))}
    env.update(SERVING_APP_SERVICE=run.service, SERVING_APP_SCOPE=scope, PYTHONUNBUFFERED="1")
    if receiver is not None:
        env.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.http_endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        )
    else:
        env.update(INFERWATCH_STORE=str(tmp / "store"))
    log = tmp / f"{mode.replace(' ', '_')}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            _command(mode, port), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc)
        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(lambda i: _send(url, i), range(REQUESTS)))
        last = time.monotonic()
        proc.send_signal(stop)
        run.stop_delay_s = time.monotonic() - last
        run.returncode = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        run.output = log.read_text(errors="replace")
    for reply in replies:
        assert reply["request_id"] == f"req-{reply['i']}", "the request id came from the header"
        run.request_ids.add(reply["request_id"])
        run.pids.add(reply["pid"])
        if reply["i"] % TRACED_EVERY == 0:
            run.traced.add(reply["request_id"])
    return run


def inference_spans(receiver: OtlpReceiver, run: Run) -> list[dict[str, Any]]:
    return [
        s
        for s in receiver.spans()
        if s["resource"].get("service.name") == run.service
        and s["attributes"].get("ml.model.name") == "scorer"
    ]


def durations(receiver: OtlpReceiver, run: Run) -> int:
    """``ml.inference.duration`` count over the distinct series (cumulative: latest point)."""
    latest: dict[tuple[Any, ...], tuple[int, int]] = {}
    for point in receiver.metrics():
        if point["name"] != "ml.inference.duration":
            continue
        if point["resource"].get("service.name") != run.service:
            continue
        key = (point["resource"].get("service.instance.id"), *sorted(point["attributes"].items()))
        if key not in latest or point["time_ns"] >= latest[key][0]:
            latest[key] = (point["time_ns"], point["count"])
    return sum(count for _, count in latest.values())


def settle(receiver: OtlpReceiver, run: Run, timeout: float = 10.0) -> None:
    """Wait for everything the run sent (or until nothing new arrives for a while)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(inference_spans(receiver, run)) >= REQUESTS and durations(receiver, run) >= REQUESTS:
            return
        time.sleep(0.1)


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as started:
        yield started


@pytest.fixture(scope="module", params=MODES)
def stopped(
    request: pytest.FixtureRequest, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    run = serve_and_stop(request.param, receiver, tmp_path_factory.mktemp("serving"))
    settle(receiver, run)
    return run


@pytest.mark.timeout(180)
def test_sigterm_right_after_the_last_response_loses_no_span(
    stopped: Run, receiver: OtlpReceiver
) -> None:
    assert_lost_nothing(stopped, receiver)


def assert_lost_nothing(stopped: Run, receiver: OtlpReceiver) -> None:
    assert stopped.stop_delay_s < 0.5
    assert stopped.returncode in (0, -signal.SIGTERM, -signal.SIGINT), stopped.output
    assert "Traceback" not in stopped.output, stopped.output
    spans = inference_spans(receiver, stopped)
    got = {s["attributes"]["ml.request.id"] for s in spans}
    assert len(spans) == REQUESTS and got == stopped.request_ids, (
        f"{len(spans)} of {REQUESTS} inference spans arrived\n{stopped.output}"
    )


@pytest.mark.timeout(180)
def test_every_duration_is_counted_once_across_processes(
    stopped: Run, receiver: OtlpReceiver
) -> None:
    assert durations(receiver, stopped) == REQUESTS, stopped.output


@pytest.mark.timeout(180)
def test_each_process_has_its_own_instance_id(stopped: Run, receiver: OtlpReceiver) -> None:
    spans = inference_spans(receiver, stopped)
    instances = {s["resource"].get("service.instance.id") for s in spans}
    assert None not in instances
    assert len(instances) == len(stopped.pids), (instances, stopped.pids)


@pytest.mark.timeout(180)
def test_the_server_spans_carry_the_request_id_and_tags(
    stopped: Run, receiver: OtlpReceiver
) -> None:
    assert_server_spans_tagged(stopped, receiver)


@pytest.mark.timeout(180)
def test_a_traceparent_request_keeps_its_server_span_on_the_callers_trace(
    stopped: Run, receiver: OtlpReceiver
) -> None:
    assert_caller_trace_continued(stopped, receiver)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("scope", ["outside", "from_headers"])
def test_whichever_way_the_scope_is_opened_server_spans_are_tagged_and_continue_the_trace(
    scope: str, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    run = serve_and_stop("uvicorn", receiver, tmp_path, scope=scope)
    settle(receiver, run)
    assert_lost_nothing(run, receiver)
    assert_server_spans_tagged(run, receiver)
    assert_caller_trace_continued(run, receiver)


def server_spans(receiver: OtlpReceiver, run: Run) -> list[dict[str, Any]]:
    return [
        s
        for s in receiver.spans()
        if s["resource"].get("service.name") == run.service
        and s["kind"] == "SERVER"
        and s["name"] == "POST /predict"
    ]


def assert_server_spans_tagged(run: Run, receiver: OtlpReceiver) -> None:
    spans = server_spans(receiver, run)
    assert len(spans) == REQUESTS, len(spans)
    tagged = [
        s for s in spans
        if s["attributes"].get("ml.request.id") in run.request_ids
        and s["attributes"].get("region") == "eu" and s["attributes"].get("cohort") == "b"
    ]  # fmt: skip
    assert len(tagged) >= 0.99 * REQUESTS, f"{len(tagged)} of {len(spans)} tagged"


def assert_caller_trace_continued(run: Run, receiver: OtlpReceiver) -> None:
    spans = [s for s in receiver.spans() if s["resource"].get("service.name") == run.service]
    on_caller_trace = [
        s for s in server_spans(receiver, run) if s["trace_id"] == CALLER_TRACE
    ]  # fmt: skip
    assert len(on_caller_trace) == len(run.traced), {(s["kind"], s["name"]) for s in spans}
    assert {s["attributes"].get("ml.request.id") for s in on_caller_trace} == run.traced
    traced = [
        s for s in inference_spans(receiver, run) if s["attributes"]["ml.request.id"] in run.traced
    ]  # fmt: skip
    assert len(traced) == len(run.traced)
    assert all(s["trace_id"] == CALLER_TRACE for s in traced)


@pytest.mark.timeout(180)
def test_sigint_on_uvicorn_loses_nothing(receiver: OtlpReceiver, tmp_path: Path) -> None:
    run = serve_and_stop("uvicorn", receiver, tmp_path, stop=signal.SIGINT)
    settle(receiver, run)
    assert_lost_nothing(run, receiver)
    assert durations(receiver, run) == REQUESTS


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["uvicorn", "uvicorn --workers 2", "gunicorn --preload"])
def test_with_the_local_store_every_segment_is_closed_and_the_slice_exact(
    mode: str, tmp_path: Path
) -> None:
    from inferwatch import query
    from inferwatch.store import iter_segments

    run = serve_and_stop(mode, None, tmp_path)
    assert run.returncode in (0, -signal.SIGTERM), run.output
    store = tmp_path / "store"
    segments = list(iter_segments(store))
    assert segments and not [s.name for s in segments if s.name.endswith(".open.jsonl")]
    spans = query.open(store)
    result = spans.slice(by=["region"], since="1h", model="scorer")
    assert [(r["region"], r["requests"]) for r in result.rows] == [("eu", REQUESTS)], result
    assert not result.notes, result.notes
