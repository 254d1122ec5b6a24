"""A model server as users write one, for tests/test_e2e_serving.py.

FastAPI with OpenTelemetry's own FastAPI instrumentation, ``@iw.monitor`` on the model call and
inferwatch configured from the standard ``OTEL_*`` variables with its defaults: no lifespan hook,
no flag, no ``iw.shutdown()``. ``SERVING_APP_FLUSH_ON_SIGTERM=0`` turns the SIGTERM guard off
(what the figures "before" were measured with).
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from pydantic import BaseModel

import inferwatch as iw

iw.configure(
    service_name=os.environ.get("SERVING_APP_SERVICE", "serving-app"),
    metric_tags=["region"],
    flush_on_sigterm=os.environ.get("SERVING_APP_FLUSH_ON_SIGTERM", "1") != "0",
)

app = FastAPI()


class Row(BaseModel):
    x: list[float]
    region: str = "eu"


@iw.monitor(model="scorer", version="1")
def score(x: list[float]) -> float:
    return sum(v for v in x if v == v) / max(len(x), 1)


@app.post("/predict")
async def predict(row: Row) -> dict[str, object]:
    with iw.context(region=row.region):
        return {"score": score(row.x), "request_id": iw.current_request_id(), "pid": os.getpid()}


@app.get("/health")
async def health() -> dict[str, int]:
    return {"pid": os.getpid()}


FastAPIInstrumentor.instrument_app(app)
