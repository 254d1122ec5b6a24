"""A classifier service whose labels come back through its own API, for tests/test_e2e_labels.py.

``POST /predict`` (headers ``x-request-id``, ``x-region``) serves a prediction; ``POST
/feedback`` reports its true label with ``iw.feedback`` — in whichever worker accepts it.
inferwatch writes the local store (``INFERWATCH_STORE``), ``region`` on metrics.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from pydantic import BaseModel

import inferwatch as iw

iw.configure(service_name="labelled-app", metric_tags=["region"])
app = FastAPI()


def request_tags(request: iw.web.Request) -> dict[str, str]:
    return {"region": request.headers.get("x-region", "unknown")}


app.add_middleware(iw.ASGIMiddleware, tags=request_tags)


class Row(BaseModel):
    x: float


class Label(BaseModel):
    request_id: str
    label: str


@iw.monitor(model="approver", version="2", prediction_kind="classification")
def approve(x: float) -> str:
    return "approve" if x > 0 else "decline"


@app.post("/predict")
async def predict(row: Row) -> dict[str, object]:
    return {"decision": approve(row.x), "pid": os.getpid()}


@app.post("/feedback")
async def feedback(label: Label) -> dict[str, object]:
    return {"status": iw.feedback(label.request_id, label.label), "pid": os.getpid()}


@app.get("/health")
async def health() -> dict[str, int]:
    return {"pid": os.getpid()}
