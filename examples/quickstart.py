"""Quick start: a small fraud model under `@iw.monitor`, simulated traffic, a planted problem.

Run with `make demo` (or `python examples/quickstart.py`). Traffic comes from three regions and
two cohorts over a few seconds (an hour of traffic, compressed); 40% of the way in, one region
(ap-south) starts sending NaN-laden feature rows, which the model rejects with a warning in its
log; every region's `amount` has quietly shifted since training (drift, no error at all), and for
the `new` cohort the true outcome now follows another rule (concept drift: no error, no input
shift — only the delayed labels, sent back with `iw.feedback`, reveal it). The script prints what
inferwatch emitted, the incident report (when the errors started, where, what the logs say, a
few failing requests, whether the inputs changed), where the errors and the wrong predictions
concentrate, and what drifted.

With no OTLP endpoint, spans and logs go to the embedded local store (OTLP JSON lines under
.inferwatch/demo/), which the script then slices with chDB, the in-process ClickHouse engine.
Set OTEL_EXPORTER_OTLP_ENDPOINT to ship the telemetry to a collector instead.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from contextlib import suppress
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import inferwatch as iw

FEATURES = ["amount", "age", "merchant_risk", "hour", "n_tx_24h", "distance", "device", "tenure"]
REGIONS = {"eu": 0.0, "us": 0.0, "ap-south": 0.3}  # region -> share of rows with NaNs
AMOUNT = FEATURES.index("amount")
INCIDENT_AT = 0.4  # the share of the traffic served before ap-south's rows start losing values
# The service's own log lines: exported as OTel log records (with trace and request ids, tags),
# not printed (the NullHandler keeps Python's last-resort handler off the console).
log = logging.getLogger("fraud-api")
log.setLevel(logging.INFO)
log.addHandler(logging.NullHandler())


class FraudModel:
    """Logistic regression fitted with a few hundred steps of gradient descent."""

    def __init__(self, rng: np.random.Generator) -> None:
        X = rng.normal(size=(5000, len(FEATURES)))
        # The baseline for drift: what the model was trained on, as a mergeable sketch profile.
        self.baseline = iw.Profile.build(X, columns=FEATURES)
        self.true_w = true_w = rng.normal(size=len(FEATURES))
        y = (X @ true_w + rng.normal(scale=0.5, size=len(X)) > 0.0).astype(float)
        self.w = np.zeros(len(FEATURES))
        for _ in range(300):
            p = 1 / (1 + np.exp(-(X @ self.w)))
            self.w -= 0.5 * X.T @ (p - y) / len(X)

    @iw.monitor(model="fraud", version="3.1", features=FEATURES, class_names=["legit", "fraud"])
    def predict(self, X: np.ndarray) -> np.ndarray:
        missing = int(np.isnan(X).sum())
        if missing:
            log.warning("feature vector incomplete: %d values missing, request rejected", missing)
            raise ValueError("input contains NaN")
        log.info("scored %d rows", len(X))
        return (X @ self.w > 0).astype(np.int64)  # class indices, named by class_names

    def truth(self, X: np.ndarray, cohort: str, rng: np.random.Generator) -> list[str]:
        """What the chargebacks say weeks later; the `new` cohort's fraud pattern has changed."""
        w = -self.true_w if cohort == "new" else self.true_w
        fraud = X @ w + rng.normal(scale=0.5, size=len(X)) > 0.0
        return ["fraud" if f else "legit" for f in fraud]


Served = list[tuple[str, str, np.ndarray]]


def simulate(model: FraudModel, requests: int, seconds: float, rng: np.random.Generator) -> Served:
    """Serve the traffic, spread over ``seconds``; return (request id, cohort, rows) per request."""
    regions = list(REGIONS)
    served = []
    started = time.monotonic()
    for i in range(requests):
        pause = started + i * seconds / requests - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        region = regions[rng.integers(len(regions))]
        cohort = "new" if rng.random() < 0.3 else "returning"
        X = rng.normal(size=(int(rng.integers(1, 5)), len(FEATURES)))
        X[:, AMOUNT] += 0.3  # the silent failure: amounts arrive in another currency
        if i >= INCIDENT_AT * requests and rng.random() < REGIONS[region]:
            X[:, rng.integers(len(FEATURES))] = np.nan  # the loud one: a feature goes missing
        request_id = f"req-{i:05d}"
        served.append((request_id, cohort, X))
        # A ValueError is the service's 422; the span records it as an error.
        with iw.context(request_id=request_id, region=region, cohort=cohort), suppress(ValueError):
            model.predict(X)
    return served


def send_labels(model: FraudModel, served: Served, rng: np.random.Generator) -> None:
    """The delayed ground truth, by request id (any process could send it). Requests refused
    with an error made no prediction: their labels come back "unknown", counted, not raised."""
    statuses: dict[str, int] = {}
    for request_id, cohort, X in served:
        status = iw.feedback(request_id, model.truth(X, cohort, rng))
        statuses[status] = statuses.get(status, 0) + 1
    print(f"labels sent back with iw.feedback(request_id, labels): {statuses}")


def print_metrics(reader: InMemoryMetricReader) -> None:
    print("\nmetrics emitted (name: data points):")
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name.startswith("ml."):
                    print(f"  {metric.name}: {len(list(metric.data.data_points))}")


def check_drift(model: FraudModel, served: Served) -> None:
    """Production inputs against the training baseline: errors are loud, drift is not."""
    # The rows the model scored: those with a missing feature were refused, loudly (and a
    # baseline without nulls would flag their null share as drift of its own).
    scored = [X for _, _, X in served if not np.isnan(X).any()]
    current = iw.Profile.build(np.vstack(scored), columns=FEATURES)
    print("\nhas the input drifted from training?  iw.drift.compare(baseline, current)")
    print(iw.drift.compare(model.baseline, current))


def investigate(store: Path, since: datetime, until: datetime) -> None:
    """What the on-call engineer runs: the incident report, then the slices behind it."""
    spans = iw.query.open(store)
    since_text, until_text = (t.isoformat(timespec="milliseconds") for t in (since, until))
    window = f"--since {since_text} --until {until_text}"
    print(f"\nthe incident, question by question:  inferwatch incident --store {store} {window}")
    report = spans.incident(since=since, until=until)
    print(report)
    try:
        from inferwatch.query.incident_html import write_html

        write_html(store.parent / "incident.html", report)
        print(f"(the same report as a page: {store.parent / 'incident.html'})")
    except ImportError:  # matplotlib, an optional dependency
        pass
    print("\nwhere do the errors come from?  iw.query.open().slice(by=['region', 'cohort'])")
    print(spans.slice(by=["region", "cohort"], since="1h"))
    print("\nwhich tag values explain them?  iw.query.open().bubble_up(outcome='error')")
    print(spans.bubble_up(outcome="error", since="1h", top=5))
    print("\nand the wrong predictions, once labels came back?  bubble_up(outcome='wrong')")
    print(spans.bubble_up(outcome="wrong", since="1h", top=5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=3.0, help="traffic spread over this")
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
    began = datetime.now(timezone.utc)
    started = time.perf_counter()
    served = simulate(model, args.requests, args.seconds, rng)
    elapsed = time.perf_counter() - started
    print(f"served {args.requests} requests in {elapsed:.2f}s")
    send_labels(model, served, rng)
    print_metrics(reader)
    print(f"internal errors swallowed by inferwatch: {sum(iw.internal_errors().values())}")
    iw.shutdown()  # flushes and closes the store segments
    if settings.endpoint is None:
        investigate(args.store, began, datetime.now(timezone.utc))
    check_drift(model, served)


if __name__ == "__main__":
    main()
