"""Quick start: a small fraud model under `@iw.monitor`, simulated traffic, a planted problem.

Run with `make demo` (or `python examples/quickstart.py`). Traffic comes from three regions and
two cohorts; one region (ap-south) sends NaN-laden feature rows, which the model rejects, and
every region's `amount` has quietly shifted since training (drift, no error at all). The
script prints what inferwatch emitted, where the errors concentrate, and what drifted.

With no OTLP endpoint, spans and logs go to the embedded local store (OTLP JSON lines under
.inferwatch/demo/), which the script then slices with chDB, the in-process ClickHouse engine.
Set OTEL_EXPORTER_OTLP_ENDPOINT to ship the telemetry to a collector instead.
"""

from __future__ import annotations

import argparse
import shutil
import time
from contextlib import suppress
from pathlib import Path

import numpy as np
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import inferwatch as iw

FEATURES = ["amount", "age", "merchant_risk", "hour", "n_tx_24h", "distance", "device", "tenure"]
REGIONS = {"eu": 0.0, "us": 0.0, "ap-south": 0.3}  # region -> share of rows with NaNs
AMOUNT = FEATURES.index("amount")


class FraudModel:
    """Logistic regression fitted with a few hundred steps of gradient descent."""

    def __init__(self, rng: np.random.Generator) -> None:
        X = rng.normal(size=(5000, len(FEATURES)))
        # The baseline for drift: what the model was trained on, as a mergeable sketch profile.
        self.baseline = iw.Profile.build(X, columns=FEATURES)
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


def simulate(model: FraudModel, requests: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Serve the traffic; return the feature rows served (for the drift check)."""
    regions = list(REGIONS)
    served = []
    for i in range(requests):
        region = regions[rng.integers(len(regions))]
        cohort = "new" if rng.random() < 0.3 else "returning"
        X = rng.normal(size=(int(rng.integers(1, 5)), len(FEATURES)))
        X[:, AMOUNT] += 0.3  # the silent failure: amounts arrive in another currency
        if rng.random() < REGIONS[region]:
            X[:, rng.integers(len(FEATURES))] = np.nan  # the loud one: a feature goes missing
        served.append(X)
        # A ValueError is the service's 422; the span records it as an error.
        with (
            iw.context(request_id=f"req-{i:05d}", region=region, cohort=cohort),
            suppress(ValueError),
        ):
            model.predict_proba(X)
    return served


def print_metrics(reader: InMemoryMetricReader) -> None:
    print("\nmetrics emitted (name: data points):")
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name.startswith("ml."):
                    print(f"  {metric.name}: {len(list(metric.data.data_points))}")


def check_drift(model: FraudModel, served: list[np.ndarray]) -> None:
    """Production inputs against the training baseline: errors are loud, drift is not."""
    current = iw.Profile.build(np.vstack(served), columns=FEATURES)
    print("\nhas the input drifted from training?  iw.drift.compare(baseline, current)")
    print(iw.drift.compare(model.baseline, current))


def investigate(store: Path) -> None:
    """What the on-call engineer runs: slice the stored spans, then let bubble-up explain."""
    spans = iw.query.open(store)
    print("\nwhere do the errors come from?  iw.query.open().slice(by=['region', 'cohort'])")
    print(spans.slice(by=["region", "cohort"], since="1h"))
    print("\nwhich tag values explain them?  iw.query.open().bubble_up(outcome='error')")
    print(spans.bubble_up(outcome="error", since="1h", top=5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store", type=Path, default=Path(".inferwatch") / "demo")
    args = parser.parse_args()

    shutil.rmtree(args.store, ignore_errors=True)  # each demo run starts from its own data
    reader = InMemoryMetricReader()
    settings = iw.configure(
        service_name="fraud-api",
        service_version="2026.11",
        environment="demo",
        metric_tags=["region"],  # low cardinality: allowed on metrics
        metric_readers=[reader],
        store=args.store,  # the embedded default when no OTLP endpoint is set
    )
    where = settings.endpoint or f"the local store {args.store}/"
    print(f"inferwatch configured: service=fraud-api, traces and logs go to {where}")
    rng = np.random.default_rng(args.seed)
    model = FraudModel(rng)
    started = time.perf_counter()
    served = simulate(model, args.requests, rng)
    elapsed = time.perf_counter() - started
    print(f"served {args.requests} requests in {elapsed:.2f}s")
    print_metrics(reader)
    print(f"internal errors swallowed by inferwatch: {sum(iw.internal_errors().values())}")
    iw.shutdown()  # flushes and closes the store segments
    if settings.endpoint is None:
        investigate(args.store)
    check_drift(model, served)


if __name__ == "__main__":
    main()
