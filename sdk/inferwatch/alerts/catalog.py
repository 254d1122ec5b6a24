"""What the metrics a policy may name are (instrument kind, unit), and what Prometheus calls them.

A policy names an OTel metric (``ml.inference.duration``); the in-process evaluator reads it
from the SDK under that name, while the generated Prometheus rules and Grafana panels must use
the name the metrics' path into Prometheus gives it (``ml_inference_duration_seconds``, with
``_bucket``/``_sum``/``_count`` series; `inferwatch.alerts.targets`). Both come from the one
entry here, made from the metric's entry in `inferwatch.semconv.INSTRUMENTS` (the table its
instrument is created from) or, for the OTel SDK's own pipeline metrics,
`inferwatch.semconv.PIPELINE_METRICS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferwatch import semconv
from inferwatch.alerts.targets import DEFAULT_TARGET, Kind, Target, metric_name

__all__ = ["KNOWN_METRICS", "Kind", "MetricInfo"]


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """counter: a monotonic sum (Counter or ObservableCounter); gauge: a gauge or non-monotonic
    sum; histogram: explicit buckets."""

    name: str
    kind: Kind
    unit: str

    def prometheus_name(self, target: Target = DEFAULT_TARGET) -> str:
        """The base name ``target`` gives this metric (counters: with ``_total`` if it adds one)."""
        return metric_name(self.name, self.unit, self.kind, target)

    def prometheus_series(self, part: str = "", target: Target = DEFAULT_TARGET) -> str:
        """The base name, or a histogram's ``bucket``, ``sum`` or ``count`` series."""
        name = self.prometheus_name(target)
        return f"{name}_{part}" if part else name


KNOWN_METRICS: dict[str, MetricInfo] = {
    **{name: MetricInfo(name, spec.kind, spec.unit) for name, spec in semconv.INSTRUMENTS.items()},
    **{name: MetricInfo(name, k, u) for name, (k, u) in semconv.PIPELINE_METRICS.items()},
}
"""Every metric inferwatch emits (`semconv.INSTRUMENTS`) and the SDK's pipeline metrics
(`semconv.PIPELINE_METRICS`): what a policy may name without declaring its instrument."""
