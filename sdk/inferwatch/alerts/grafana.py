"""A Grafana dashboard for inferwatch's metrics in Prometheus, plus one panel per alert policy.

Built with Grafana's own typed builders (grafana-foundation-sdk), so the JSON follows the
dashboard schema. Panels: inference rate, latency p50/p99, error rate, missing input values
per inference (the NaN share), prediction distribution and classes, schema violations, drift
scores, the delayed-label scores (accuracy, MAE/RMSE from the counters that sum across
processes), firing alerts, and each policy's own
statistic with its threshold drawn as a line. Metric names are the collector exporter's
(`inferwatch.alerts.catalog`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from inferwatch import semconv
from inferwatch.alerts.catalog import KNOWN_METRICS, prometheus_label
from inferwatch.alerts.policy import AlertPolicy, AlertRules
from inferwatch.alerts.promql import expression

UID = "inferwatch"
TITLE = "inferwatch: ML inference"
RATE = "[$__rate_interval]"
_SCOPE = 'job=~"$job", ml_model_name=~"$model"'
_BY = "by (job, ml_model_name)"
_LEGEND = "{{job}} {{ml_model_name}}"


@dataclass
class PanelSpec:
    title: str
    unit: str
    targets: list[tuple[str, str]]
    """(PromQL, legend) pairs."""
    kind: Literal["timeseries", "stacked", "heatmap"] = "timeseries"
    threshold: tuple[str, float] | None = None
    """(op, value) of an alert policy, drawn as a line."""
    description: str = ""
    links: list[str] = field(default_factory=list)


def _name(metric: str, part: str = "") -> str:
    return KNOWN_METRICS[metric].prometheus_series(part)


def _standard_rows() -> list[tuple[str, list[PanelSpec]]]:
    duration = semconv.METRIC_INFERENCE_DURATION
    count = f"{_name(duration, 'count')}{{{_SCOPE}}}"
    errors = f'{_name(duration, "count")}{{{_SCOPE}, error_type!=""}}'
    calls = f"sum {_BY} (increase({count}{RATE}))"
    buckets = f"{_name(duration, 'bucket')}{{{_SCOPE}}}{RATE}"

    def latency(q: str) -> tuple[str, str]:
        expr = f"histogram_quantile({q}, sum by (job, ml_model_name, le) (rate({buckets})))"
        return expr, f"p{round(float(q) * 100)} {_LEGEND}"

    nan = f"sum {_BY} (increase({_name(semconv.METRIC_INPUT_NAN_COUNT)}{{{_SCOPE}}}{RATE}))"
    predictions = f"{_name(semconv.METRIC_PREDICTION_VALUE, 'bucket')}{{{_SCOPE}}}{RATE}"
    classes = f"{_name(semconv.METRIC_PREDICTION_COUNT)}{{{_SCOPE}}}{RATE}"
    violations = f"{_name(semconv.METRIC_INPUT_VIOLATIONS)}{{{_SCOPE}}}{RATE}"
    window = "{{ml_model_name}} {{ml_window_start}}"
    # Scores of all processes (and the label joiner) from the counters that sum across them.
    by_window = "by (job, ml_model_name, ml_window_start)"
    judged = _name(semconv.METRIC_LABEL_JUDGED)
    correct = f'sum {by_window} ({judged}{{{_SCOPE}, ml_label_outcome="correct"}})'
    classified = f'sum {by_window} ({judged}{{{_SCOPE}, ml_label_outcome=~"correct|wrong"}})'
    scored = f'sum {by_window} ({judged}{{{_SCOPE}, ml_label_outcome="scored"}})'
    absolute = f"sum {by_window} ({_name(semconv.METRIC_LABEL_ERROR_ABS)}{{{_SCOPE}}})"
    squared = f"sum {by_window} ({_name(semconv.METRIC_LABEL_ERROR_SQUARED)}{{{_SCOPE}}})"
    return [
        ("Inference", [
            PanelSpec("Inferences per second", "reqps",
                      [(f"sum {_BY} (rate({count}{RATE}))", _LEGEND)]),
            PanelSpec("Latency p50 / p99", "s", [latency("0.5"), latency("0.99")]),
            PanelSpec("Error rate", "percentunit",
                      [(f"(sum {_BY} (increase({errors}{RATE})) or {calls} * 0) / {calls}",
                        _LEGEND)]),
            PanelSpec("Missing input values per inference (NaN share)", "none",
                      [(f"({nan} or {calls} * 0) / {calls}", _LEGEND)],
                      description="NaN or missing input values per inference call"),
        ]),
        ("Predictions and inputs", [
            PanelSpec("Prediction distribution (magnitudes)", "none",
                      [(f"sum by (le) (increase({predictions}))", "{{le}}")], kind="heatmap"),
            PanelSpec("Predictions by class", "reqps",
                      [(f"sum by (ml_prediction_class) (rate({classes}))",
                        "{{ml_prediction_class}}")], kind="stacked"),
            PanelSpec("Schema violations per second", "reqps",
                      [(f"sum by (ml_feature, ml_validation_rule) (rate({violations}))",
                        "{{ml_feature}} {{ml_validation_rule}}")]),
        ]),
        ("Drift", [
            PanelSpec("Drift score by feature", "none",
                      [(f"max by (ml_feature, ml_window) "
                        f"({_name(semconv.METRIC_DRIFT_SCORE)}{{{_SCOPE}}})",
                        "{{ml_feature}} ({{ml_window}})")]),
            PanelSpec("Features drifting", "none",
                      [(f"sum {_BY} ({_name(semconv.METRIC_DRIFT_DETECTED)}{{{_SCOPE}}})",
                        _LEGEND)]),
        ]),
        ("Model quality (delayed labels)", [
            PanelSpec("Accuracy by serving window", "percentunit",
                      [(f"{correct} / {classified}", window)],
                      description="Judged predictions that were right, summed over every "
                      "process and the label joiner (ml.label.judged)"),
            PanelSpec("MAE / RMSE by serving window", "none",
                      [(f"{absolute} / {scored}", f"MAE {window}"),
                       (f"sqrt({squared} / {scored})", f"RMSE {window}")],
                      description="From the error sums of every process and the label joiner"),
        ]),
    ]  # fmt: skip


def _alert_rows(policies: Sequence[AlertPolicy]) -> list[tuple[str, list[PanelSpec]]]:
    firing = PanelSpec(
        "Firing alerts", "none",
        [('sum by (alertname, severity) (ALERTS{alertstate="firing", job=~"$job"})',
          "{{alertname}} ({{severity}})")],
    )  # fmt: skip
    per_policy = [
        PanelSpec(
            f"Alert {p.name}: {p.statistic_text()} of {p.metric}",
            _unit(p),
            [(expression(p, selector_extra='job=~"$job"'), _legend(p))],
            threshold=(p.op, p.threshold),
            description=p.description,
            links=[p.runbook_url] if p.runbook_url else [],
        )
        for p in policies
    ]
    return [("Alerts", [firing, *per_policy])]


def _unit(policy: AlertPolicy) -> str:
    if policy.statistic in ("quantile", "mean") and policy.info.unit == "s":
        return "s"
    if policy.statistic == "ratio" and policy.numerator is not None:
        return "percentunit"
    return "none"


def _legend(policy: AlertPolicy) -> str:
    return " ".join(["{{job}}", *("{{" + prometheus_label(k) + "}}" for k in policy.group_by)])


def render_grafana_dashboard(policies: AlertRules | Sequence[AlertPolicy]) -> dict[str, Any]:
    """The dashboard JSON (a dict; ``json.dumps`` it, or import it into Grafana)."""
    from inferwatch.alerts._grafana_build import build_dashboard

    chosen = policies.policies if isinstance(policies, AlertRules) else tuple(policies)
    return build_dashboard(UID, TITLE, [*_standard_rows(), *_alert_rows(chosen)])


def dashboard_json(policies: AlertRules | Sequence[AlertPolicy]) -> str:
    """The dashboard as stable, diffable JSON text (sorted keys, two-space indent)."""
    return json.dumps(render_grafana_dashboard(policies), indent=2, sort_keys=True) + "\n"
