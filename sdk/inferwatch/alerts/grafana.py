"""A Grafana dashboard for inferwatch's metrics in Prometheus, plus one panel per alert policy.

Built with Grafana's own typed builders (grafana-foundation-sdk), so the JSON follows the
dashboard schema. Panels: inference rate, latency p50/p99, error rate, missing input values
per inference (the NaN share), prediction distribution and classes, schema violations, drift
scores, the delayed-label scores (accuracy, MAE/RMSE from the counters that sum across
processes), firing alerts, and each policy's own
statistic with its threshold drawn as a line. Metric and label names are those of the target
(`inferwatch.alerts.targets`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from inferwatch import semconv
from inferwatch.alerts.catalog import KNOWN_METRICS
from inferwatch.alerts.policy import AlertPolicy, AlertRules
from inferwatch.alerts.promql import JOB, chosen, expression, label, selector, string
from inferwatch.alerts.targets import Target, label_name

UID = "inferwatch"
TITLE = "inferwatch: ML inference"
RATE = "[$__rate_interval]"


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


class _Names:
    """The target's spelling of series, labels, selectors and legends in the standard panels."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.model = label(semconv.ML_MODEL_NAME, target)
        self.scope = ['job=~"$job"', f'{self.model}=~"$model"']
        self.by = f"by (job, {self.model})"

    def series(self, metric: str, part: str = "") -> str:
        return KNOWN_METRICS[metric].prometheus_series(part, self.target)

    def select(self, metric: str, part: str = "", *more: str) -> str:
        """The metric's series within the dashboard's ``$job`` and ``$model``."""
        return selector(self.series(metric, part), [*self.scope, *more])

    def label(self, key: str) -> str:
        return label(key, self.target)

    def legend(self, *keys: str) -> str:
        return " ".join("{{" + (k if k == JOB else label_name(k, self.target)) + "}}" for k in keys)


def _standard_rows(target: Target) -> list[tuple[str, list[PanelSpec]]]:
    n = _Names(target)
    duration = semconv.METRIC_INFERENCE_DURATION
    by, legend = n.by, n.legend(JOB, semconv.ML_MODEL_NAME)
    errors = n.select(duration, "count", f'{n.label(semconv.ERROR_TYPE)}!=""')
    calls = f"sum {by} (increase({n.select(duration, 'count')}{RATE}))"
    buckets = f"{n.select(duration, 'bucket')}{RATE}"

    def latency(q: str) -> tuple[str, str]:
        expr = f"histogram_quantile({q}, sum by (job, {n.model}, le) (rate({buckets})))"
        return expr, f"p{round(float(q) * 100)} {legend}"

    nan = f"sum {by} (increase({n.select(semconv.METRIC_INPUT_NAN_COUNT)}{RATE}))"
    predictions = f"{n.select(semconv.METRIC_PREDICTION_VALUE, 'bucket')}{RATE}"
    classes = f"{n.select(semconv.METRIC_PREDICTION_COUNT)}{RATE}"
    violations = f"{n.select(semconv.METRIC_INPUT_VIOLATIONS)}{RATE}"
    feature, rule, drift_window = (
        n.label(k) for k in (semconv.ML_FEATURE, semconv.ML_VALIDATION_RULE, semconv.ML_WINDOW)
    )
    live = f"{drift_window}!={string('cumulative')}"  # as the FeatureDrift policy's
    window = n.legend(semconv.ML_MODEL_NAME, semconv.ML_WINDOW_START)
    # Scores of all processes (and the label joiner) from the counters that sum across them.
    by_window = f"by (job, {n.model}, {n.label(semconv.ML_WINDOW_START)})"
    outcome = n.label(semconv.ML_LABEL_OUTCOME)
    judged = semconv.METRIC_LABEL_JUDGED
    correct = f"sum {by_window} ({n.select(judged, '', outcome + '=' + string('correct'))})"
    right_or_wrong = outcome + "=~" + string("correct|wrong")
    classified = f"sum {by_window} ({n.select(judged, '', right_or_wrong)})"
    scored = f"sum {by_window} ({n.select(judged, '', outcome + '=' + string('scored'))})"
    absolute = f"sum {by_window} ({n.select(semconv.METRIC_LABEL_ERROR_ABS)})"
    squared = f"sum {by_window} ({n.select(semconv.METRIC_LABEL_ERROR_SQUARED)})"
    prediction_class = n.label(semconv.ML_PREDICTION_CLASS)
    return [
        ("Inference", [
            PanelSpec("Inferences per second", "reqps",
                      [(f"sum {by} (rate({n.select(duration, 'count')}{RATE}))", legend)]),
            PanelSpec("Latency p50 / p99", "s", [latency("0.5"), latency("0.99")]),
            PanelSpec("Error rate", "percentunit",
                      [(f"(sum {by} (increase({errors}{RATE})) or {calls} * 0) / {calls}",
                        legend)]),
            PanelSpec("Missing input values per inference (NaN share)", "none",
                      [(f"({nan} or {calls} * 0) / {calls}", legend)],
                      description="NaN or missing input values per inference call"),
        ]),
        ("Predictions and inputs", [
            PanelSpec("Prediction distribution (magnitudes)", "none",
                      [(f"sum by (le) (increase({predictions}))", "{{le}}")], kind="heatmap"),
            PanelSpec("Predictions by class", "reqps",
                      [(f"sum by ({prediction_class}) (rate({classes}))",
                        n.legend(semconv.ML_PREDICTION_CLASS))], kind="stacked"),
            PanelSpec("Schema violations per second", "reqps",
                      [(f"sum by ({feature}, {rule}) (rate({violations}))",
                        n.legend(semconv.ML_FEATURE, semconv.ML_VALIDATION_RULE))]),
        ]),
        ("Drift", [
            PanelSpec("Drift score by feature", "none",
                      [(f"max by ({feature}, {drift_window}) "
                        f"({n.select(semconv.METRIC_DRIFT_SCORE)})",
                        n.legend(semconv.ML_FEATURE, semconv.ML_WINDOW))]),
            PanelSpec("Features drifting", "none",
                      [(f"sum {by} (max by (job, {n.model}, {feature}) "
                        f"({n.select(semconv.METRIC_DRIFT_DETECTED, '', live)}))", legend)],
                      description="Features whose drift test rejected the baseline in a live "
                      "window: one per feature, whatever the tests, windows and processes"),
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


def _alert_rows(
    policies: Sequence[AlertPolicy], target: Target
) -> list[tuple[str, list[PanelSpec]]]:
    firing = PanelSpec(
        "Firing alerts", "none",
        [('sum by (alertname, severity) (ALERTS{alertstate="firing", job=~"$job"})',
          "{{alertname}} ({{severity}})")],
    )  # fmt: skip
    per_policy = [
        PanelSpec(
            f"Alert {p.name}: {p.statistic_text()} of {p.metric}",
            _unit(p),
            [(expression(p, ['job=~"$job"'], target), _Names(target).legend(JOB, *p.group_by))],
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


def render_grafana_dashboard(
    policies: AlertRules | Sequence[AlertPolicy], *, target: Target | None = None
) -> dict[str, Any]:
    """The dashboard JSON (a dict; ``json.dumps`` it, or import it into Grafana).

    ``target``: the path the metrics take into Prometheus (default: the rules' ``target``, else
    ``otel-python``).
    """
    from inferwatch.alerts._grafana_build import build_dashboard

    chosen_policies, chosen_target = chosen(policies, target)
    names = _Names(chosen_target)
    calls = names.series(semconv.METRIC_INFERENCE_DURATION, "count")
    in_job = selector(calls, ['job=~"$job"'])
    variables = (f"label_values({selector(calls)}, job)", f"label_values({in_job}, {names.model})")
    rows = [*_standard_rows(chosen_target), *_alert_rows(chosen_policies, chosen_target)]
    return build_dashboard(UID, TITLE, variables, rows)


def dashboard_json(
    policies: AlertRules | Sequence[AlertPolicy], *, target: Target | None = None
) -> str:
    """The dashboard as stable, diffable JSON text (sorted keys, two-space indent)."""
    dashboard = render_grafana_dashboard(policies, target=target)
    return json.dumps(dashboard, indent=2, sort_keys=True) + "\n"
