"""Batch scoring: a pandas DataFrame scored in chunks, one inference span per chunk.

Run from the repository root::

    python examples/batch_scoring.py                      # 100k rows in 10k chunks
    python examples/batch_scoring.py --rows 20000 --chunk-size 5000

Each chunk runs under ``iw.inference(...)`` with two timed stages, ``featurize`` (impute, log
and standardise) and ``score``. The raw chunk is recorded as the input, so inferwatch counts the
missing values per feature before imputation hides them. Spans are captured in memory for the
summary; set OTEL_EXPORTER_OTLP_ENDPOINT to also ship them over OTLP.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import ClassVar

import numpy as np
import pandas as pd
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import inferwatch as iw

FEATURES = ["amount", "age", "merchant_risk", "n_tx_24h", "tenure_days"]
MISSING_SHARE = {"age": 0.02, "tenure_days": 0.005}  # upstream gaps in the warehouse table
MODEL, VERSION = "fraud-batch", "2.0"


def make_transactions(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """A synthetic transactions table with a few missing values."""
    frame = pd.DataFrame(
        {
            "transaction_id": np.arange(rows, dtype=np.int64),
            "amount": rng.lognormal(mean=4.0, sigma=1.0, size=rows),
            "age": rng.integers(18, 90, size=rows).astype(np.float64),
            "merchant_risk": rng.random(rows),
            "n_tx_24h": rng.poisson(3, size=rows).astype(np.float64),
            "tenure_days": rng.integers(0, 3650, size=rows).astype(np.float64),
        }
    )
    for column, share in MISSING_SHARE.items():
        frame.loc[rng.random(rows) < share, column] = np.nan
    return frame


class BatchModel:
    """A fixed logistic model. Fill values and scaling are what training would have stored:
    every chunk is transformed the same way, whatever its own statistics."""

    weights = np.array([0.9, -0.4, 1.6, 0.7, -0.8])
    bias = -3.0
    fill: ClassVar[dict[str, float]] = {"age": 40.0, "tenure_days": 365.0}
    # After log1p of amount and tenure_days: centre and scale of each feature.
    center = np.array([4.0, 54.0, 0.5, 3.0, 7.1])
    scale = np.array([1.0, 20.5, 0.29, 1.73, 1.1])

    def featurize(self, chunk: pd.DataFrame) -> np.ndarray:
        X = chunk[FEATURES].fillna(self.fill).to_numpy(dtype=np.float64)
        X[:, 0] = np.log1p(X[:, 0])  # amount
        X[:, 4] = np.log1p(X[:, 4])  # tenure_days
        Z: np.ndarray = (X - self.center) / self.scale
        return Z

    def score(self, X: np.ndarray) -> np.ndarray:
        p: np.ndarray = 1.0 / (1.0 + np.exp(-(X @ self.weights + self.bias)))
        return p


def score_table(frame: pd.DataFrame, chunk_size: int, job_id: str) -> pd.Series:
    model = BatchModel()
    scores = []
    for number, start in enumerate(range(0, len(frame), chunk_size)):
        chunk = frame.iloc[start : start + chunk_size]
        # One request id per chunk; the job id as a tag ties the chunks together.
        with (
            iw.context(request_id=f"{job_id}-{number:04d}", job=job_id),
            iw.inference(model=MODEL, version=VERSION, features=FEATURES) as rec,
        ):
            rec.record_input(chunk[FEATURES])  # NaNs counted per feature, before imputation
            with rec.stage("featurize"):
                X = model.featurize(chunk)
            with rec.stage("score"):
                y = model.score(X)
            rec.record_prediction(y)
        scores.append(pd.Series(y, index=chunk.index))
    return pd.concat(scores) if scores else pd.Series(dtype=np.float64)


def missing_by_feature(reader: InMemoryMetricReader) -> dict[str, int]:
    """The ``ml.input.nan_count`` counter, by feature."""
    counts: dict[str, int] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "ml.input.nan_count":
                    for point in metric.data.data_points:
                        feature = str((point.attributes or {}).get("ml.feature"))
                        counts[feature] = counts.get(feature, 0) + int(point.value)  # type: ignore[union-attr]
    return dict(sorted(counts.items()))


def _number(span: ReadableSpan, key: str) -> int:
    value = (span.attributes or {}).get(key)
    return int(value) if isinstance(value, int | float) else 0


def summarize(spans: list[ReadableSpan], scores: pd.Series, rows: int, elapsed: float) -> None:
    chunks = [s for s in spans if s.name == f"inference {MODEL}"]
    stages = [s for s in spans if s.name.startswith("stage ")]
    print(
        f"scored {rows} rows in {len(chunks)} chunks in {elapsed:.2f}s "
        f"({rows / elapsed if elapsed else 0:,.0f} rows/s)"
    )
    flagged = int((scores >= 0.5).sum())
    mean = f"{scores.mean():.3f}" if len(scores) else "-"
    print(f"flagged as fraud: {flagged} ({flagged / max(rows, 1):.1%}), mean score {mean}")
    print(f"spans: {len(chunks)} inference + {len(stages)} stage")
    nan_total = sum(_number(s, "ml.input.nan_count") for s in chunks)
    nan_rows = sum(_number(s, "ml.input.nan_rows") for s in chunks)
    print(f"missing values seen by inferwatch: {nan_total} in {nan_rows} rows")
    for stage in ("featurize", "score"):
        times = [
            ((s.end_time or 0) - (s.start_time or 0)) / 1e6
            for s in stages
            if (s.attributes or {}).get("ml.stage.name") == stage
        ]
        if times:
            total, longest = sum(times), max(times)
            print(f"stage {stage}: {len(times)} spans, {total:.1f} ms total, max {longest:.1f} ms")
    sizes = sorted({_number(s, "ml.input.batch_size") for s in chunks})
    print(f"chunk sizes: {', '.join(map(str, sizes))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if args.rows < 0 or args.chunk_size <= 0:
        parser.error("--rows must be >= 0 and --chunk-size > 0")

    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    settings = iw.configure(
        service_name="fraud-batch-scoring",
        span_processors=[SimpleSpanProcessor(spans)],
        metric_readers=[reader],
    )
    print(f"inferwatch configured: OTLP endpoint={settings.endpoint or 'none'}")
    frame = make_transactions(args.rows, np.random.default_rng(args.seed))
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    scores = score_table(frame, args.chunk_size, job_id)
    elapsed = time.perf_counter() - started
    summarize(list(spans.get_finished_spans()), scores, len(frame), elapsed)
    counted = missing_by_feature(reader)
    actual = {k: int(v) for k, v in frame[FEATURES].isna().sum().items() if v}
    print(
        "missing by feature (ml.input.nan_count): "
        + (", ".join(f"{k}={v}" for k, v in counted.items()) or "none")
        + f"; table has {', '.join(f'{k}={v}' for k, v in actual.items()) or 'none'}"
    )
    print(f"internal errors swallowed by inferwatch: {sum(iw.internal_errors().values())}")
    iw.shutdown()


if __name__ == "__main__":
    main()
