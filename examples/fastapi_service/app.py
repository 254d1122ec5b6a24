"""A fraud-scoring model server: FastAPI + a small numpy model, instrumented with inferwatch.

Run from the repository root::

    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 \
        uvicorn examples.fastapi_service.app:app --port 8000

What it shows:

* ``iw.configure(service_name="fraud-api", metric_tags=["region"])`` at start-up (the lifespan;
  no shutdown call: the middleware flushes at the lifespan's end, the process's exit at SIGTERM);
  the OTLP endpoint comes from ``OTEL_EXPORTER_OTLP_ENDPOINT``. Without one nothing is exported.
* ``iw.ASGIMiddleware``: a request scope per request, with the request id from ``X-Request-ID``
  (or generated) and the caller's ``traceparent``; ``region``/``cohort`` come from the
  ``X-Region``/``X-Cohort`` headers or the ``region``/``cohort`` query parameters. The request
  id is echoed in the ``X-Request-ID`` response header, on every response. FastAPI's OpenTelemetry
  support adds the HTTP server span, tagged too; inferwatch's spans are its children.
* ``@iw.monitor`` on the model's ``predict_proba``: one ``inference fraud`` span per call with the
  request id, tags, NaN counts per feature and a prediction summary, plus metrics.
* ``iw.feedback(request_id, label)`` in ``POST /feedback``: a delayed label (a chargeback) joined
  to the prediction of that request.
* ``structlog`` logging in the handlers.

Behaviour of ``POST /predict`` (body: one feature object, or a list of up to 1000 of them):

* 200 with scores;
* 400 for a body that is not JSON;
* 422 for a body that does not match the schema (unknown or absent feature, wrong type);
* 422 when a feature is ``null`` or ``NaN``: missing values are accepted by the schema so that
  they reach the model and are counted by inferwatch (``ml.input.nan_count`` per feature), and the
  model rejects them; its span ends with status ERROR and ``error.type`` ``...NaNInputError``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, ClassVar

import numpy as np
import structlog
from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

import inferwatch as iw
from examples.fastapi_service.features import FEATURES, RANGES, REGIONS

__all__ = ["FEATURES", "FraudModel", "NaNInputError", "app", "create_app"]

SERVICE_NAME = "fraud-api"
MODEL_NAME = "fraud"
MODEL_VERSION = "1.0"
MAX_BATCH = 1000
THRESHOLD = 0.5
REQUEST_ID_HEADER = "X-Request-ID"


# -- the model -----------------------------------------------------------------------------------
class NaNInputError(ValueError):
    """The input has missing values; the service answers 422."""

    def __init__(self, features: list[str]) -> None:
        super().__init__(f"missing values in features: {', '.join(features)}")
        self.features = features


def synthetic_transactions(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` plausible feature rows (columns in ``FEATURES`` order)."""
    low = np.array([RANGES[f][0] for f in FEATURES])
    high = np.array([RANGES[f][1] for f in FEATURES])
    rows: np.ndarray = low + rng.random((n, len(FEATURES))) * (high - low)
    return rows


class FraudModel:
    """Logistic regression over standardised features, fitted at start-up by gradient descent."""

    # The hidden rule the synthetic labels follow (weights on standardised features).
    _TRUE_WEIGHTS: ClassVar[dict[str, float]] = {
        "amount": 1.2, "merchant_risk": 1.5, "device_risk": 1.0, "n_tx_24h": 0.8,
        "distance_km": 0.6, "tenure_days": -1.0, "age": -0.3, "hour": 0.0,
    }  # fmt: skip

    def __init__(self, seed: int = 0, n_train: int = 4000, steps: int = 300) -> None:
        rng = np.random.default_rng(seed)
        X = synthetic_transactions(rng, n_train)
        self.mean, self.std = X.mean(axis=0), X.std(axis=0)
        Z = (X - self.mean) / self.std
        true_w = np.array([self._TRUE_WEIGHTS[f] for f in FEATURES])
        y = (rng.random(n_train) < _sigmoid(Z @ true_w - 2.0)).astype(np.float64)
        self.w, self.b = np.zeros(len(FEATURES)), 0.0
        for _ in range(steps):
            error = _sigmoid(Z @ self.w + self.b) - y
            self.w -= 0.5 * Z.T @ error / n_train
            self.b -= 0.5 * float(error.mean())

    @iw.monitor(model=MODEL_NAME, version=MODEL_VERSION, features=FEATURES)
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Fraud probability per row; rows must be complete (``NaNInputError`` otherwise)."""
        missing = np.isnan(X)
        if missing.any():
            raise NaNInputError([FEATURES[i] for i in np.flatnonzero(missing.any(axis=0))])
        return _sigmoid(((X - self.mean) / self.std) @ self.w + self.b)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    p: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return p


# -- the API schema ------------------------------------------------------------------------------
class Transaction(BaseModel):
    """One row of features. ``null`` (or a ``NaN`` literal) is a missing value."""

    model_config = ConfigDict(extra="forbid")

    amount: float | None
    age: float | None
    merchant_risk: float | None
    hour: float | None
    n_tx_24h: float | None
    distance_km: float | None
    device_risk: float | None
    tenure_days: float | None

    def row(self) -> list[float]:
        values = (getattr(self, f) for f in FEATURES)
        return [math.nan if v is None else v for v in values]


assert tuple(Transaction.model_fields) == FEATURES, "the schema must list FEATURES in order"

Batch = Annotated[list[Transaction], Field(min_length=1, max_length=MAX_BATCH)]


class Prediction(BaseModel):
    request_id: str
    model: str
    version: str
    scores: list[float]
    flagged: list[bool]


Label = Annotated[int, Field(ge=0, le=1, description="1: confirmed fraud, 0: legitimate")]


class Feedback(BaseModel):
    """The true label of an earlier prediction, reported later (e.g. a chargeback)."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=128)
    # A batch request made one prediction per row: its labels come as a list, in row order.
    label: Label | Annotated[list[Label], Field(min_length=1, max_length=MAX_BATCH)]


# -- the request scope ---------------------------------------------------------------------------
def request_tags(request: iw.web.Request) -> dict[str, str]:
    """``region`` and ``cohort`` from headers, else query parameters; region kept bounded."""
    headers, query = request.headers, request.query
    region = (headers.get("x-region") or query.get("region") or "").strip().lower()
    cohort = (headers.get("x-cohort") or query.get("cohort") or "").strip().lower()
    # region is a metric tag: an open set of values would be a metric per value.
    if region not in REGIONS:
        region = "other" if region else "unknown"
    return {"region": region, "cohort": cohort[:64] or "unknown"}


# -- the application -----------------------------------------------------------------------------
def create_app(configure_telemetry: bool = True, *, seed: int = 0) -> FastAPI:
    """The service. ``configure_telemetry=False`` leaves `iw.configure` to the caller (tests)."""
    model = FraudModel(seed=seed)
    log = structlog.get_logger()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if configure_telemetry:
            settings = iw.configure(service_name=SERVICE_NAME, metric_tags=["region"])
            log.info("telemetry configured", otlp_endpoint=settings.endpoint or "none")
        # Nothing to flush by hand: iw.ASGIMiddleware flushes when this lifespan ends, and the
        # process's exit (SIGTERM included) flushes the rest (docs/deployment.md).
        yield

    app = FastAPI(title="fraud-api", version=MODEL_VERSION, lifespan=lifespan)
    # A request scope per request (request id from X-Request-ID, echoed back; the tags above);
    # inside FastAPI's OpenTelemetry middleware, it tags that HTTP server span too.
    app.add_middleware(iw.ASGIMiddleware, tags=request_tags)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        detail: str | list[dict[str, Any]]
        if any(e.get("type") == "json_invalid" for e in errors):
            status, detail = 400, "request body is not valid JSON"
        else:  # no "input" echoed back: it may hold NaN, which JSON responses cannot carry
            status = 422
            detail = [{k: e.get(k) for k in ("loc", "msg", "type")} for e in errors]
        log.info("rejected", path=request.url.path, status=status)
        return JSONResponse(
            {"detail": detail, "request_id": iw.current_request_id()}, status_code=status
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "model": MODEL_NAME, "version": MODEL_VERSION}

    @app.post("/predict")
    def predict(body: Annotated[Transaction | Batch, Body()]) -> Prediction:
        """Score one transaction or a batch. Sync: FastAPI runs it in its thread pool."""
        rows = body if isinstance(body, list) else [body]
        X = np.array([row.row() for row in rows], dtype=np.float64)
        try:
            scores = model.predict_proba(X)
        except NaNInputError as exc:
            log.warning("rejected", reason="missing values", features=exc.features, rows=len(X))
            raise HTTPException(
                status_code=422,
                detail={"error": "missing values", "features": exc.features},
            ) from exc
        flagged = scores >= THRESHOLD
        log.info(
            "scored",
            rows=len(scores),
            score_max=round(float(scores.max()), 4),
            flagged=int(flagged.sum()),
        )
        return Prediction(
            request_id=iw.current_request_id() or "",
            model=MODEL_NAME,
            version=MODEL_VERSION,
            scores=[round(float(s), 6) for s in scores],
            flagged=flagged.tolist(),
        )

    @app.post("/feedback", status_code=202)
    def feedback(body: Feedback) -> dict[str, Any]:
        """Record the true label of an earlier request, joined to its prediction by request id.

        ``iw.feedback`` answers ``joined`` when this process served the prediction: the label
        counts in that prediction's serving window. A prediction another replica served is
        ``unknown`` here; its ``ml.feedback`` log record still goes out, and the query layer joins
        it to the span later. The other answers (duplicate, expired, invalid) are in
        docs/delayed-labels.md.
        """
        join = iw.feedback(body.request_id, body.label)
        log.info("feedback", prediction_request_id=body.request_id, label=body.label, join=join)
        return {"status": "accepted", "request_id": body.request_id, "join": join}

    return app


app = create_app()
"""The app uvicorn serves: ``uvicorn examples.fastapi_service.app:app``."""
