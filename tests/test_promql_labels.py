"""Rendered expressions, evaluated by Prometheus' own engine (``promtool test rules``).

Four serving workers and the label joiner each report ``ml.label.judged`` for the same model and
serving window, each with its own share of right predictions. The rendered ModelAccuracyLow
expression and the dashboard's accuracy-by-window query must give the accuracy of all of them
together (the sum of the right ones over the sum of the judged ones), which no combination of
the per-process ratio gauges can give: their mean here is 0.5875, the true accuracy 46/70.

Needs ``promtool`` (Debian's ``prometheus`` package; .ci/run installs it): skipped without it on
a developer machine, a failure where ``INFERWATCH_E2E_REQUIRED`` is set (CI).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from inferwatch.alerts import load_rules
from inferwatch.alerts.grafana import render_grafana_dashboard
from inferwatch.alerts.promql import expression
from tests._prometheus import binary

ROOT = Path(__file__).resolve().parents[1]
WINDOW = "2026-12-01T10:00:00Z"
# Per minute: (right, wrong) judged by each worker and the joiner.
PER_MINUTE = {"w1": (9, 1), "w2": (5, 5), "w3": (2, 8), "w4": (0, 0), "joiner": (30, 10)}
TRUE_ACCURACY = 46 / 70


def _series() -> list[dict[str, str]]:
    series = []
    for instance, (right, wrong) in PER_MINUTE.items():
        for outcome, per_minute in (("correct", right), ("wrong", wrong)):
            labels = (
                f'job="scoring", instance="{instance}", ml_model_name="churn", '
                f'ml_window="1h", ml_window_start="{WINDOW}", ml_label_outcome="{outcome}"'
            )
            series.append(
                {"series": f"ml_label_judged_total{{{labels}}}", "values": f"0+{per_minute}x60"}
            )
    return series


def test_the_rendered_accuracy_is_the_accuracy_of_every_process(tmp_path: Path) -> None:
    promtool = binary("promtool")
    rules = load_rules(ROOT / "collector_config" / "alerts.yaml")
    (policy,) = [p for p in rules.policies if p.name == "ModelAccuracyLow"]
    group = '{job="scoring", ml_model_name="churn"}'
    window_group = f'{{job="scoring", ml_model_name="churn", ml_window_start="{WINDOW}"}}'
    tests = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _series(),
                "promql_expr_test": [
                    {
                        "expr": expression(policy),
                        "eval_time": "60m",
                        "exp_samples": [{"labels": group, "value": TRUE_ACCURACY}],
                    },
                    {
                        "expr": _dashboard_query("Accuracy by serving window"),
                        "eval_time": "60m",
                        "exp_samples": [{"labels": window_group, "value": TRUE_ACCURACY}],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "accuracy_test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _dashboard_query(title: str) -> str:
    dashboard = render_grafana_dashboard(load_rules(ROOT / "collector_config" / "alerts.yaml"))
    (panel,) = [p for p in dashboard["panels"] if p.get("title") == title]
    expr: str = panel["targets"][0]["expr"]
    return expr.replace('job=~"$job", ml_model_name=~"$model"', 'job=~".+", ml_model_name=~".+"')


def test_features_drifting_counts_features_not_tests_windows_or_processes(tmp_path: Path) -> None:
    """Two workers report ``ml.drift.detected`` per feature, test and window: "amount" is
    rejected by two tests in both workers, "country" by one test in one worker's 1h window, "age"
    only in the cumulative window, "tenure" nowhere. Two features drift in a live window."""
    promtool = binary("promtool")
    detected = {  # (instance, feature, test, window) -> 0/1
        ("w1", "amount", "ks", "1h"): 1, ("w1", "amount", "psi", "1h"): 1,
        ("w2", "amount", "ks", "1h"): 1, ("w2", "amount", "ks", "24h"): 1,
        ("w1", "country", "chi2", "1h"): 1, ("w2", "country", "chi2", "1h"): 0,
        ("w1", "age", "ks", "cumulative"): 1, ("w1", "age", "ks", "1h"): 0,
        ("w1", "tenure", "ks", "1h"): 0, ("w2", "tenure", "ks", "cumulative"): 0,
    }  # fmt: skip
    series = [
        {
            "series": (
                f'ml_drift_detected{{job="scoring", instance="{instance}", ml_model_name="churn", '
                f'ml_feature="{feature}", ml_drift_test="{test}", ml_window="{window}"}}'
            ),
            "values": f"{value}x10",
        }
        for (instance, feature, test, window), value in detected.items()
    ]
    tests = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": _dashboard_query("Features drifting"),
                        "eval_time": "5m",
                        "exp_samples": [
                            {"labels": '{job="scoring", ml_model_name="churn"}', "value": 2}
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "drifting_test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
