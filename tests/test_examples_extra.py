"""The FastAPI service, its load generator, batch scoring and the text classifier, run briefly.

The scripts run as users run them (subprocesses, small sizes). The service runs in-process with
inferwatch configured by the ``telemetry`` fixture (in-memory capture, strict mode) before the
app is created, through FastAPI's ``TestClient`` and under a uvicorn server on a free port.
"""

from __future__ import annotations

import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry._logs import LogRecord
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from examples.fastapi_service import loadgen
from examples.fastapi_service.app import FEATURES, create_app
from examples.fastapi_service.features import RANGES
from tests._otlp import free_port

if TYPE_CHECKING:
    from tests.conftest import Captured

ROOT = Path(__file__).resolve().parents[1]
GOOD = {f: (low + high) / 2 for f, (low, high) in RANGES.items()}
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN_ID = "b7ad6b7169203331"


def _run_example(script: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}  # export nowhere
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def _number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in output:\n{text}"
    return int(match.group(1))


# -- scripts -------------------------------------------------------------------------------------
def test_batch_scoring_counts_missing_values_per_chunk() -> None:
    out = _run_example("batch_scoring.py", "--rows", "10500", "--chunk-size", "5000")
    assert "scored 10500 rows in 3 chunks" in out
    assert "spans: 3 inference + 6 stage" in out
    assert "stage featurize: 3 spans" in out and "stage score: 3 spans" in out
    assert "chunk sizes: 500, 5000" in out  # the last chunk is the remainder
    # What inferwatch counted per feature is what the table holds.
    counted, actual = re.search(r"nan_count\): (.+); table has (.+)", out).groups()  # type: ignore[union-attr]
    assert counted == actual and "age=" in counted
    assert _number(r"missing values seen by inferwatch: (\d+)", out) == sum(
        int(part.split("=")[1]) for part in counted.split(", ")
    )
    assert "internal errors swallowed by inferwatch: 0" in out


def test_text_classifier_spans_show_every_long_input() -> None:
    args = ("--batches", "12", "--batch-size", "8", "--long-share", "0.3", "--seed", "3")
    out = _run_example("text_classifier.py", *args)
    assert "classified 96 tickets in 12 batches" in out
    assert float(re.search(r"accuracy: ([\d.]+)", out).group(1)) > 0.85  # type: ignore[union-attr]
    planted = re.search(r"planted: (\d+) abnormally long tickets in (\d+) batches", out)
    assert planted, out
    tickets, batches = int(planted.group(1)), int(planted.group(2))
    assert batches > 0
    # ml.input.length.max on the spans finds every batch with a long ticket ...
    assert _number(r"batches with an input over 2048 characters: (\d+)", out) == batches
    assert _number(r"spans marked ml.input.long: (\d+)", out) == batches
    # ... and with batches of at most 16 texts every length reaches the histogram.
    assert f"lengths recorded over 2048: {tickets} of 96" in out
    classes = re.search(r"ml.prediction.count\): (.+)", out).group(1)  # type: ignore[union-attr]
    assert sum(int(c.split("=")[1]) for c in classes.split(", ")) == 96
    assert "internal errors swallowed by inferwatch: 0" in out


# -- the FastAPI service in-process ------------------------------------------------------------
@pytest.fixture
def app(telemetry: Captured) -> FastAPI:
    """The service, created after inferwatch was configured by the ``telemetry`` fixture."""
    return create_app(configure_telemetry=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _inference_spans(telemetry: Captured) -> list[ReadableSpan]:
    return telemetry.spans("inference fraud")


def _log_records(telemetry: Captured, body: str) -> list[LogRecord]:
    return [r.log_record for r in telemetry.logs() if r.log_record.body == body]


def _server_span(telemetry: Captured, trace_id: int) -> ReadableSpan:
    (span,) = [
        s
        for s in telemetry.spans()
        if s.kind == SpanKind.SERVER and s.context is not None and s.context.trace_id == trace_id
    ]
    return span


def test_predict_tags_spans_and_echoes_the_request_id(
    client: TestClient, telemetry: Captured
) -> None:
    headers = {"X-Request-ID": "req-ok-1", "X-Region": "eu", "X-Cohort": "new"}
    response = client.post("/predict", json=GOOD, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == "req-ok-1"
    body = response.json()
    assert body["request_id"] == "req-ok-1"
    assert (body["model"], body["version"]) == ("fraud", "1.0")
    (score,) = body["scores"]
    assert 0.0 < score < 1.0 and body["flagged"] == [score >= 0.5]

    (span,) = _inference_spans(telemetry)
    attrs = dict(span.attributes or {})
    expected = {
        "ml.request.id": "req-ok-1",
        "region": "eu",
        "cohort": "new",
        "ml.model.name": "fraud",
        "ml.input.batch_size": 1,
        "ml.input.nan_count": 0,
    }
    assert {k: attrs.get(k) for k in expected} == expected
    assert math.isclose(float(attrs["ml.prediction.mean"]), score, rel_tol=1e-5)  # type: ignore[arg-type]
    assert span.status.status_code == StatusCode.UNSET

    # FastAPI's server span is the root of the same trace and carries the scope too.
    assert span.context is not None
    server = _server_span(telemetry, span.context.trace_id)
    assert server.parent is None
    server_attrs = dict(server.attributes or {})
    assert server_attrs["ml.request.id"] == "req-ok-1" and server_attrs["region"] == "eu"
    assert server_attrs["http.response.status_code"] == 200

    # The handler's structlog line, bridged to an OTel log record inside the request's trace.
    (scored,) = _log_records(telemetry, "scored")
    assert scored.trace_id == span.context.trace_id
    assert scored.span_id in {s.context.span_id for s in telemetry.spans() if s.context}
    log_attrs = dict(scored.attributes or {})
    assert log_attrs["ml.request.id"] == "req-ok-1" and log_attrs["region"] == "eu"
    assert log_attrs["rows"] == 1

    durations = telemetry.points("ml.inference.duration")
    assert [a.get("region") for a, _ in durations] == ["eu"]
    assert all("cohort" not in a and "ml.request.id" not in a for a, _ in durations)


def test_tags_from_query_parameters_and_generated_request_id(
    client: TestClient, telemetry: Captured
) -> None:
    response = client.post("/predict?region=ap-south&cohort=returning", json=[GOOD, GOOD, GOOD])
    assert response.status_code == 200, response.text
    request_id = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{16}", request_id)
    assert response.json()["request_id"] == request_id
    assert len(response.json()["scores"]) == 3
    (span,) = _inference_spans(telemetry)
    attrs = dict(span.attributes or {})
    assert attrs["ml.request.id"] == request_id
    assert (attrs["region"], attrs["cohort"]) == ("ap-south", "returning")
    assert attrs["ml.input.batch_size"] == 3 and attrs["ml.prediction.count"] == 3


def test_unknown_region_is_bounded_for_metrics(client: TestClient, telemetry: Captured) -> None:
    response = client.post("/predict", json=GOOD, headers={"X-Region": "mars-1"})
    assert response.status_code == 200
    (span,) = _inference_spans(telemetry)
    assert (span.attributes or {})["region"] == "other"
    assert (span.attributes or {})["cohort"] == "unknown"


def test_nan_features_are_a_422_and_an_error_span(client: TestClient, telemetry: Captured) -> None:
    # JSON has no NaN, but Python's json (and so the service) reads the NaN literal.
    others = ", ".join(f'"{k}": {v}' for k, v in GOOD.items() if k not in ("amount", "age"))
    raw = '{"amount": NaN, "age": null, ' + others + "}"
    response = client.post(
        "/predict",
        content=raw,
        headers={"Content-Type": "application/json", "X-Request-ID": "req-nan", "X-Region": "us"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["X-Request-ID"] == "req-nan"
    assert response.json()["detail"] == {"error": "missing values", "features": ["amount", "age"]}

    (span,) = _inference_spans(telemetry)
    attrs = dict(span.attributes or {})
    assert attrs["ml.request.id"] == "req-nan" and attrs["region"] == "us"
    assert span.status.status_code == StatusCode.ERROR
    assert str(attrs["error.type"]).endswith("NaNInputError")
    assert attrs["ml.input.nan_count"] == 2
    assert [e.name for e in span.events] == ["exception"]
    # A 4xx is the client's problem: the server span is not an error.
    assert span.context is not None
    server = _server_span(telemetry, span.context.trace_id)
    assert server.status.status_code != StatusCode.ERROR

    nan_points = {a.get("ml.feature"): p.value for a, p in telemetry.points("ml.input.nan_count")}
    assert nan_points == {"amount": 1, "age": 1}
    (duration,) = telemetry.points("ml.inference.duration")
    assert str(duration[0]["error.type"]).endswith("NaNInputError")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('{"amount": 12.5, "age": ', 400),  # not JSON
        ("not json at all", 400),
        ('{"amount": 1}', 422),  # features absent
        ('{"amount": "n/a", ' + ", ".join(f'"{f}": 1' for f in FEATURES[1:]) + "}", 422),
        ("[]", 422),  # an empty batch
    ],
    ids=["truncated", "garbage", "absent-features", "string-value", "empty-batch"],
)
def test_bad_requests_never_reach_the_model(
    client: TestClient, telemetry: Captured, body: str, status: int
) -> None:
    response = client.post(
        "/predict",
        content=body,
        headers={"Content-Type": "application/json", "X-Request-ID": f"req-bad-{status}"},
    )
    assert response.status_code == status, response.text
    assert response.headers["X-Request-ID"] == f"req-bad-{status}"
    assert response.json()["request_id"] == f"req-bad-{status}"
    assert _inference_spans(telemetry) == []


def test_extra_feature_is_rejected(client: TestClient, telemetry: Captured) -> None:
    response = client.post("/predict", json={**GOOD, "ip_address": 1})
    assert response.status_code == 422
    assert _inference_spans(telemetry) == []


def test_feedback_is_joined_to_its_prediction(client: TestClient, telemetry: Captured) -> None:
    served = client.post("/predict", json=GOOD, headers={"X-Request-ID": "req-fb-1"})
    batch = client.post("/predict", json=[GOOD, GOOD], headers={"X-Request-ID": "req-fb-2"})
    assert served.status_code == batch.status_code == 200
    response = client.post("/feedback", json={"request_id": "req-fb-1", "label": 1})
    rows = client.post("/feedback", json={"request_id": "req-fb-2", "label": [0, 1]})
    elsewhere = client.post("/feedback", json={"request_id": "req-elsewhere", "label": 0})
    bad = client.post("/feedback", json={"request_id": "req-fb-1", "label": 7})
    assert response.status_code == rows.status_code == elsewhere.status_code == 202
    assert response.json() == {"status": "accepted", "request_id": "req-fb-1", "join": "joined"}
    assert rows.json()["join"] == "joined"  # a batch request: one label per row
    assert elsewhere.json()["join"] == "unknown"  # served by no one here
    assert bad.status_code == 422

    # The handler's own event; its request id is the /feedback request's, not the prediction's.
    event = _log_records(telemetry, "feedback")[0]
    attrs = dict(event.attributes or {})
    assert (attrs["prediction_request_id"], attrs["label"], attrs["join"]) == (
        "req-fb-1",
        1,
        "joined",
    )
    assert attrs["ml.request.id"] == response.headers["X-Request-ID"] != "req-fb-1"
    # inferwatch's ml.feedback record links the label to the span of the prediction it judges,
    # and the unknown one still goes out, with its request id, for a later join.
    records = {
        r.attributes["ml.request.id"]: r
        for r in _log_records(telemetry, "delayed label")
        if r.attributes is not None
    }
    assert set(records) == {"req-fb-1", "req-fb-2", "req-elsewhere"}
    (span,) = [
        s
        for s in _inference_spans(telemetry)
        if (s.attributes or {}).get("ml.request.id") == "req-fb-1"
    ]
    assert span.context is not None
    assert (records["req-fb-1"].trace_id, records["req-fb-1"].span_id) == (
        span.context.trace_id,
        span.context.span_id,
    )
    assert records["req-elsewhere"].trace_id == 0
    (count,) = telemetry.points("ml.label.count")
    assert count[1].value == 3  # the three rows of the two served requests


def test_caller_trace_is_continued_under_the_server_span(
    client: TestClient, telemetry: Captured
) -> None:
    traceparent = f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"
    response = client.post(
        "/predict", json=GOOD, headers={"traceparent": traceparent, "X-Request-ID": "req-tp"}
    )
    assert response.status_code == 200
    (span,) = _inference_spans(telemetry)
    assert span.context is not None and span.parent is not None
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    server = _server_span(telemetry, span.context.trace_id)
    assert server.parent is not None and f"{server.parent.span_id:016x}" == CALLER_SPAN_ID
    # The inference span sits under the server span (via FastAPI's endpoint span), not beside it.
    by_id = {s.context.span_id: s for s in telemetry.spans() if s.context is not None}
    ancestor, chain = span, []
    while ancestor.parent is not None and ancestor.parent.span_id in by_id:
        ancestor = by_id[ancestor.parent.span_id]
        chain.append(ancestor.name)
    assert ancestor is server, chain


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"
    assert response.headers["X-Request-ID"]


# -- the load generator against a real server -------------------------------------------------
@contextmanager
def _uvicorn_in_thread(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yield its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _summary_rows(out: str) -> Counter[tuple[str, int]]:
    rows: Counter[tuple[str, int]] = Counter()
    for kind, status, count in re.findall(r"^(\w+)\s+(\d{3})\s+(\d+)$", out, re.MULTILINE):
        rows[(kind, int(status))] += int(count)
    return rows


def test_loadgen_against_uvicorn(
    app: FastAPI, telemetry: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    requests, seed = 60, 4
    traffic = loadgen.Traffic(seed)  # the plan is deterministic for a seed, whatever the threads
    planned = Counter(traffic.next()[1].kind for _ in range(requests))
    assert planned["ok"] and planned["nan"] and planned["malformed"] and planned["schema"]
    statuses = {"ok": 200, "nan": 422, "malformed": 400, "schema": 422, "feedback": 202}

    with _uvicorn_in_thread(app) as url:
        args = ["--url", url, "--requests", str(requests), "--seed", str(seed)]
        code = loadgen.main([*args, "--concurrency", "4"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"sent {requests} requests" in out and "0 connection errors" in out
    assert f"request ids echoed: {requests}/{requests}" in out
    assert _summary_rows(out) == Counter({(k, statuses[k]): n for k, n in planned.items()})

    spans = _inference_spans(telemetry)
    assert len(spans) == planned["ok"] + planned["nan"]
    errors = [s for s in spans if s.status.status_code == StatusCode.ERROR]
    assert len(errors) == planned["nan"]
    regions = {(s.attributes or {}).get("region") for s in spans}
    assert regions <= {"eu", "us", "ap-south"}
    assert all(str((s.attributes or {}).get("ml.request.id")) for s in spans)


def test_loadgen_reports_an_unreachable_service(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # closed again once found: nothing listens there
    code = loadgen.main(["--url", f"http://127.0.0.1:{port}", "--requests", "3", "--timeout", "2"])
    out = capsys.readouterr().out
    assert code == 1
    assert "3 connection errors" in out and "is the service running?" in out
