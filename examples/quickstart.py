"""Quick start: a small fraud model under `@iw.monitor`, simulated traffic, a planted problem.

Run with `make demo` (or `python examples/quickstart.py`). Traffic comes from three regions and
two cohorts; one region (ap-south) sends NaN-laden feature rows, which the model rejects. The
script prints what inferwatch emitted and where the errors concentrate.

Telemetry is captured in memory so the demo needs no backend; set OTEL_EXPORTER_OTLP_ENDPOINT
to also ship it over OTLP to a collector.
"""

from __future__ import annotations

import argparse
import time
from contextlib import suppress

import numpy as np
import pandas as pd
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import inferwatch as iw

FEATURES = ["amount", "age", "merchant_risk", "hour", "n_tx_24h", "distance", "device", "tenure"]
REGIONS = {"eu": 0.0, "us": 0.0, "ap-south": 0.3}  # region -> share of rows with NaNs


class FraudModel:
    """Logistic regression fitted with a few hundred steps of gradient descent."""

    def __init__(self, rng: np.random.Generator) -> None:
        X = rng.normal(size=(5000, len(FEATURES)))
        true_w = rng.normal(size=len(FEATURES))
        y = (X @ true_w + rng.normal(scale=0.5, size=len(X)) > 1.0).astype(float)
        self.w = np.zeros(len(FEATURES))
        for _ in range(300):
            p = 1 / (1 + np.exp(-(X @ self.w)))
            self.w -= 0.5 * X.T @ (p - y) / len(X)

    @iw.monitor(model="fraud", version="3.1", features=FEATURES)
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if np.isnan(X).any():
            raise ValueError("input contains NaN")
        return 1 / (1 + np.exp(-(X @ self.w)))


def simulate(model: FraudModel, requests: int, rng: np.random.Generator) -> None:
    regions = list(REGIONS)
    for i in range(requests):
        region = regions[rng.integers(len(regions))]
        cohort = "new" if rng.random() < 0.3 else "returning"
        X = rng.normal(size=(int(rng.integers(1, 5)), len(FEATURES)))
        if rng.random() < REGIONS[region]:
            X[:, rng.integers(len(FEATURES))] = np.nan  # the upstream bug: a feature goes missing
        # A ValueError is the service's 422; the span records it as an error.
        with (
            iw.context(request_id=f"req-{i:05d}", region=region, cohort=cohort),
            suppress(ValueError),
        ):
            model.predict_proba(X)


def summarize(spans: InMemorySpanExporter, reader: InMemoryMetricReader) -> None:
    rows = []
    for span in spans.get_finished_spans():
        a = span.attributes or {}
        rows.append(
            {
                "region": a.get("region"),
                "cohort": a.get("cohort"),
                "error": span.status.status_code == StatusCode.ERROR,
                "nan_inputs": int(a.get("ml.input.nan_count", 0)) > 0,
                "latency_ms": ((span.end_time or 0) - (span.start_time or 0)) / 1e6,
            }
        )
    df = pd.DataFrame(rows)
    print(f"\nspans emitted: {len(df)} (one per inference, each with a request id and tags)")
    table = df.groupby(["region", "cohort"]).agg(
        requests=("error", "size"),
        errors=("error", "sum"),
        nan_inputs=("nan_inputs", "sum"),
        p95_ms=("latency_ms", lambda s: s.quantile(0.95)),
    )
    table["error_rate"] = table["errors"] / table["requests"]
    print("\nwhere do the errors come from?")
    print(table.sort_values("errors", ascending=False).round(3).to_string())

    print("\nmetrics emitted (name: data points):")
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                print(f"  {metric.name}: {len(list(metric.data.data_points))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    settings = iw.configure(
        service_name="fraud-api",
        service_version="2026.11",
        environment="demo",
        metric_tags=["region"],  # low cardinality: allowed on metrics
        span_processors=[SimpleSpanProcessor(spans)],
        metric_readers=[reader],
    )
    print(f"inferwatch configured: service=fraud-api, OTLP endpoint={settings.endpoint or 'none'}")
    rng = np.random.default_rng(args.seed)
    model = FraudModel(rng)
    started = time.perf_counter()
    simulate(model, args.requests, rng)
    elapsed = time.perf_counter() - started
    print(f"served {args.requests} requests in {elapsed:.2f}s")
    summarize(spans, reader)
    print(f"\ninternal errors swallowed by inferwatch: {sum(iw.internal_errors().values())}")
    iw.shutdown()


if __name__ == "__main__":
    main()
