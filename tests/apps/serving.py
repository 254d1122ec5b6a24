"""A model server as users write one, for tests/test_e2e_serving.py.

FastAPI with OpenTelemetry's own FastAPI instrumentation, ``@iw.monitor`` on the model call and
inferwatch configured from the standard ``OTEL_*`` variables with its defaults: no lifespan hook,
no flag, no ``iw.shutdown()``. ``SERVING_APP_SCOPE`` says how requests get their scope:

* ``middleware`` (default): ``app.add_middleware(iw.ASGIMiddleware, ...)``, the usual way: inside
  OpenTelemetry's middleware, so after the server span started;
* ``outside``: ``iw.ASGIMiddleware`` wrapped around the instrumented app (serve ``application``);
* ``from_headers``: the application's own middleware calling ``iw.context.from_headers``.

``SERVING_APP_FLUSH_ON_SIGTERM=0`` turns the SIGTERM guard off (what "before" was measured with).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from pydantic import BaseModel

import inferwatch as iw

iw.configure(
    service_name=os.environ.get("SERVING_APP_SERVICE", "serving-app"),
    metric_tags=["region"],
    flush_on_sigterm=os.environ.get("SERVING_APP_FLUSH_ON_SIGTERM", "1") != "0",
)
SCOPE = os.environ.get("SERVING_APP_SCOPE", "middleware")


def request_tags(request: iw.web.Request) -> dict[str, str]:
    headers = request.headers
    return {"region": headers.get("x-region", "unknown"), "cohort": headers.get("x-cohort", "")}


app = FastAPI()


class Row(BaseModel):
    x: list[float]


@iw.monitor(model="scorer", version="1")
def score(x: list[float]) -> float:
    return sum(x) / max(len(x), 1)


@app.post("/predict")
async def predict(row: Row) -> dict[str, object]:
    return {"score": score(row.x), "request_id": iw.current_request_id(), "pid": os.getpid()}


@app.get("/health")
async def health() -> dict[str, int]:
    return {"pid": os.getpid()}


if SCOPE == "middleware":
    app.add_middleware(iw.ASGIMiddleware, tags=request_tags)
elif SCOPE == "from_headers":

    @app.middleware("http")
    async def request_scope(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        headers = request.headers
        tags = {"region": headers.get("x-region", "unknown"), "cohort": headers.get("x-cohort")}
        with iw.context.from_headers(headers, **tags):
            return await call_next(request)


FastAPIInstrumentor.instrument_app(app)
application: Any = iw.ASGIMiddleware(app, tags=request_tags) if SCOPE == "outside" else app
