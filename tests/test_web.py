"""`iw.ASGIMiddleware` and `iw.WSGIMiddleware` beside OpenTelemetry's own HTTP instrumentation.

In process, through the real SDK pipeline (the ``telemetry`` fixture): a Flask app under
OpenTelemetry's WSGI middleware, in both orders, and an ASGI app driven by hand (requests and
the lifespan). Under real servers: tests/test_e2e_serving.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from flask import Flask
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import inferwatch as iw
from inferwatch import errors
from tests.conftest import Captured

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


def tags(request: iw.web.Request) -> dict[str, str]:
    return {"region": request.headers.get("x-region") or request.query.get("region", "unknown")}


@iw.monitor(model="web")
def score(x: float) -> float:
    return x * 2


def flask_app(order: str) -> Flask:
    app = Flask("scorer")

    @app.post("/predict")
    def predict() -> dict[str, Any]:
        return {"score": score(1.0), "request_id": iw.current_request_id()}

    if order == "inside":  # ours inside the server span: the span gets the tags when we run
        app.wsgi_app = OpenTelemetryMiddleware(iw.WSGIMiddleware(app.wsgi_app, tags=tags))  # type: ignore[method-assign]
    else:  # ours outside: the server span starts inside the scope
        app.wsgi_app = iw.WSGIMiddleware(OpenTelemetryMiddleware(app.wsgi_app), tags=tags)  # type: ignore[method-assign]
    return app


@pytest.mark.parametrize("order", ["inside", "outside"])
def test_wsgi_server_span_tagged_and_continuing_the_callers_trace(
    telemetry: Captured, order: str
) -> None:
    client = flask_app(order).test_client()
    plain = client.post(
        "/predict", headers={"X-Request-ID": "r-1", "X-Region": "eu"}, buffered=True
    )
    traced = client.post(
        "/predict",
        headers={"X-Request-ID": "r-2", "X-Region": "us", "traceparent": TRACEPARENT},
        buffered=True,
    )
    assert plain.json["request_id"] == "r-1" and plain.headers["X-Request-ID"] == "r-1"
    assert traced.headers["X-Request-ID"] == "r-2"
    servers = [s for s in telemetry.spans() if s.kind is SpanKind.SERVER]
    assert len(servers) == 2, [(s.name, s.kind) for s in telemetry.spans()]
    by_id = {s.attributes["ml.request.id"]: s for s in servers}
    assert by_id["r-1"].attributes["region"] == "eu" and by_id["r-2"].attributes["region"] == "us"
    assert f"{by_id['r-2'].context.trace_id:032x}" == CALLER_TRACE
    inference = {s.attributes["ml.request.id"]: s for s in telemetry.spans("inference web")}
    assert inference["r-2"].parent.span_id == by_id["r-2"].context.span_id
    assert inference["r-1"].context.trace_id == by_id["r-1"].context.trace_id


def test_without_server_instrumentation_the_inference_continues_the_callers_trace(
    telemetry: Captured,
) -> None:
    app = Flask("bare")

    @app.post("/predict")
    def predict() -> dict[str, Any]:
        return {"score": score(1.0)}

    app.wsgi_app = iw.WSGIMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    app.test_client().post("/predict", headers={"traceparent": TRACEPARENT})
    (span,) = telemetry.spans("inference web")
    assert f"{span.context.trace_id:032x}" == CALLER_TRACE
    assert span.parent is not None and span.parent.is_remote


# -- ASGI, driven by hand ---------------------------------------------------------------------
async def asgi_predict(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                score(3.0)  # the application's own shutdown still records: flushed after it
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = str(score(1.0)).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def call(
    app: Any, headers: list[tuple[bytes, bytes]], query: bytes = b""
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": headers}
    scope["query_string"] = query
    await app(scope, receive, send)
    return sent


def test_asgi_request_scope_and_request_id_header(telemetry: Captured) -> None:
    app = iw.ASGIMiddleware(asgi_predict, tags=tags)
    sent = asyncio.run(call(app, [(b"x-request-id", b"r-9"), (b"x-region", b"eu")]))
    assert (b"x-request-id", b"r-9") in sent[0]["headers"]
    asyncio.run(call(app, [], query=b"region=ap-south&region=eu"))
    first, second = telemetry.spans("inference web")
    assert first.attributes["ml.request.id"] == "r-9" and first.attributes["region"] == "eu"
    assert second.attributes["region"] == "ap-south", "tags from the query: its first value"


def test_asgi_lifespan_end_flushes_after_the_applications_shutdown() -> None:
    exporter = InMemorySpanExporter()
    iw.configure(
        service_name="lifespan",
        span_processors=[BatchSpanProcessor(exporter, schedule_delay_millis=600_000)],
        store=False,
    )
    app = iw.ASGIMiddleware(asgi_predict)
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    exported_when_sent: list[int] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        exported_when_sent.append(len(exporter.get_finished_spans()))

    try:
        asyncio.run(app({"type": "lifespan"}, receive, send))
        assert exported_when_sent == [0, 1], "the shutdown's inference, exported before done"
        score(4.0)  # still configured: a flush, not a shutdown
        assert iw.flush() and len(exporter.get_finished_spans()) == 2
    finally:
        iw.shutdown()


def test_a_failing_tags_function_does_not_fail_the_request(telemetry: Captured) -> None:
    def broken(request: iw.web.Request) -> dict[str, str]:
        raise KeyError("x-region")

    errors.set_strict(False)  # the fixture is strict: an internal error would be raised
    app = iw.ASGIMiddleware(asgi_predict, tags=broken)
    sent = asyncio.run(call(app, [(b"x-request-id", b"r-3")]))
    assert sent[0]["status"] == 200
    assert telemetry.spans("inference web")[0].attributes["ml.request.id"] == "r-3"
    assert iw.internal_errors().get("web.tags") == 1


def test_tags_must_be_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        iw.ASGIMiddleware(asgi_predict, tags={"region": "eu"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        iw.WSGIMiddleware(lambda e, s: [], tags="region")  # type: ignore[arg-type]
