"""End to end: the FastAPI example under uvicorn -> OTLP/HTTP -> rotel -> the in-test receiver.

The service is started as users start it (``uvicorn examples.fastapi_service.app:app``), with
inferwatch configured by the app itself from the standard ``OTEL_*`` variables and short export
intervals. One request with a unique ``X-Request-ID`` must come out the other side of the
collector as its span, its latency metric and its structlog line, all tied together.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from examples.fastapi_service.features import RANGES

if TYPE_CHECKING:
    from tests._otlp import OtlpReceiver, RotelCollector

ROOT = Path(__file__).resolve().parents[1]
ROW = {f: (low + high) / 2 for f, (low, high) in RANGES.items()}
_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class Service:
    url: str
    instance_id: str
    """``service.instance.id`` of this server's resource: what only its telemetry carries."""
    proc: subprocess.Popen[bytes]
    logs: Path

    def output(self) -> str:
        return "\n".join(
            f"--- {name}\n{(self.logs / name).read_text(errors='replace')}"
            for name in ("stdout", "stderr")
        )


def _wait_until_serving(proc: subprocess.Popen[bytes], stderr: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = _RUNNING.search(stderr.read_text(errors="replace"))
        if match:
            return int(match.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"uvicorn did not start:\n{stderr.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def service(
    rotel_collector: RotelCollector, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """The example app under uvicorn on a free port, exporting through rotel; stopped after."""
    instance_id = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "INFERWATCH_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=rotel_collector.http_endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="500",
        OTEL_BLRP_SCHEDULE_DELAY="100",
        OTEL_RESOURCE_ATTRIBUTES=f"service.instance.id={instance_id}",
        PYTHONUNBUFFERED="1",
    )
    logs = tmp_path_factory.mktemp("uvicorn")
    command = [
        sys.executable, "-m", "uvicorn", "examples.fastapi_service.app:app",
        "--host", "127.0.0.1", "--port", "0", "--no-access-log",
    ]  # fmt: skip
    with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)
    try:
        port = _wait_until_serving(proc, logs / "stderr", timeout=30)
        yield Service(f"http://127.0.0.1:{port}", instance_id, proc, logs)
    finally:
        proc.terminate()  # SIGTERM: uvicorn stops gracefully, the middleware and the exit flush
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    # A clean stop; uvicorn re-raises SIGTERM once done (the process ends of it, after the flush).
    stderr = (logs / "stderr").read_text(errors="replace")
    assert proc.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr and "Traceback" not in stderr, stderr


def _is_scored(record: dict[str, Any]) -> bool:
    body = record["body"]
    if isinstance(body, dict):
        body = body.get("event")
    return bool(body == "scored")


def test_request_span_metrics_and_log_arrive_through_rotel(
    service: Service, otlp_receiver_session: OtlpReceiver
) -> None:
    receiver = otlp_receiver_session  # not cleared: matching on this run's ids instead
    request_id = f"e2e-{uuid.uuid4().hex[:12]}"
    response = httpx.post(
        f"{service.url}/predict",
        json=ROW,
        headers={"X-Request-ID": request_id, "X-Region": "eu", "X-Cohort": "e2e"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == request_id

    def mine(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [i for i in items if i["resource"].get("service.instance.id") == service.instance_id]

    def spans_arrived(r: OtlpReceiver) -> Any:
        spans = mine(r.spans())
        inference = [
            s
            for s in spans
            if s["name"] == "inference fraud" and s["attributes"].get("ml.request.id") == request_id
        ]
        if len(inference) != 1:
            return None
        trace = [s for s in spans if s["trace_id"] == inference[0]["trace_id"]]
        servers = [s for s in trace if s["kind"] == "SERVER"]
        return servers and (inference[0], servers)

    try:
        span, servers = receiver.wait_for(spans_arrived, timeout=15)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{service.output()}") from None

    # -- the spans: inferwatch's, under FastAPI's server span -------------------------------
    assert span["resource"]["service.name"] == "fraud-api"
    expected = {"ml.model.name": "fraud", "ml.model.version": "1.0", "region": "eu",
                "cohort": "e2e", "ml.input.batch_size": 1, "ml.input.nan_count": 0}  # fmt: skip
    assert {k: span["attributes"].get(k) for k in expected} == expected
    assert span["status_code"] == "UNSET"
    (server,) = servers
    assert server["parent_span_id"] is None
    assert server["attributes"]["ml.request.id"] == request_id
    assert server["attributes"]["http.response.status_code"] == 200

    # -- the metric -------------------------------------------------------------------------
    def duration_arrived(r: OtlpReceiver) -> Any:
        return [
            p
            for p in mine(r.metrics())
            if p["name"] == "ml.inference.duration" and p["attributes"].get("region") == "eu"
        ]

    points = receiver.wait_for(duration_arrived, timeout=15)
    for point in points:
        assert point["attributes"]["ml.model.name"] == "fraud"
        assert "ml.request.id" not in point["attributes"] and "cohort" not in point["attributes"]
        assert point["type"] == "histogram" and point["count"] >= 1

    # -- the structlog line -----------------------------------------------------------------
    def log_arrived(r: OtlpReceiver) -> Any:
        records = [
            rec
            for rec in mine(r.logs())
            if _is_scored(rec) and rec["attributes"].get("ml.request.id") == request_id
        ]
        # Logged inside the request: its span is one of the trace's (once that has arrived too).
        span_ids = {s["span_id"] for s in mine(r.spans()) if s["trace_id"] == span["trace_id"]}
        return records and all(rec["span_id"] in span_ids for rec in records) and records

    (record,) = receiver.wait_for(log_arrived, timeout=15)
    assert record["trace_id"] == span["trace_id"]
    assert record["severity_text"] == "INFO"
    assert {k: record["attributes"].get(k) for k in ("region", "cohort", "rows")} == {
        "region": "eu",
        "cohort": "e2e",
        "rows": 1,
    }
