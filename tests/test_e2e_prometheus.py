"""The default policies in a real Prometheus and Alertmanager, against the in-process evaluator.

A service configured as the README shows (the OTel Python Prometheus exporter passed in
``iw.configure(metric_readers=[...])``) runs healthy, then with every fault the default policies
watch planted at once (tests/_alert_scenario.py). Debian's ``prometheus`` scrapes it and
evaluates ``collector_config/alerts.yaml`` rendered with short windows; ``prometheus-alertmanager``
routes what fires by severity to webhooks on 127.0.0.1. Asserted: every rule loads with health
ok, every rule's expression returns series, every rule fires in Prometheus and in the process
(and not before its fault), each firing reaches the webhook of its severity, and every query of
the dashboard returns data. ``benchmarks/bench_alert_firing.py`` runs the same scenario and
prints the figures (time to firing, agreement of the two evaluators).

About 50 s. Needs ``prometheus``, ``prometheus-alertmanager`` and ``promtool``: skipped
without them on a developer machine, a failure where ``INFERWATCH_E2E_REQUIRED`` is set (CI).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from inferwatch.alerts import load_rules, render_grafana_dashboard, render_prometheus_rules
from inferwatch.alerts.promql import expression
from inferwatch.alerts.targets import TARGETS, Target
from tests import _alert_scenario as scenario
from tests._alert_scenario import first_after
from tests._prometheus import binary

pytest.importorskip("opentelemetry.exporter.prometheus")
ESCAPED = ("otel-python", "UnderscoreEscapingWithSuffixes", "UnderscoreEscapingWithoutSuffixes")


@pytest.mark.parametrize("target", [t for t in TARGETS if t in ESCAPED])
def test_promtool_checks_every_rendered_rule_file(tmp_path: Path, target: Target) -> None:
    """Prometheus 2.42's promtool reads legacy names only; the UTF-8 targets need Prometheus 3."""
    promtool = binary("promtool")
    default = load_rules(scenario.POLICIES)
    for name, rules in (("default", default), ("short", scenario.short_rules(default))):
        path = tmp_path / f"{name}.yml"
        path.write_text(render_prometheus_rules(rules, target=target))
        done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"SUCCESS: {len(rules.policies)} rules found" in done.stdout


def test_the_alertmanager_example_is_valid() -> None:
    amtool = binary("amtool")
    done = subprocess.run([amtool, "check-config", str(scenario.ALERTMANAGER)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Found:" in done.stdout


@pytest.mark.timeout(300)
def test_planted_faults_fire_in_prometheus_alertmanager_and_the_process(tmp_path: Path) -> None:
    for name in ("prometheus", "prometheus-alertmanager"):
        binary(name)
    run = scenario.run(tmp_path)
    try:
        prometheus = run.prometheus
        groups = prometheus.api("rules")["groups"]
        loaded = {r["name"]: r for g in groups for r in g["rules"]}
        assert set(loaded) == {p.name for p in run.rules.policies}
        assert all(r["health"] == "ok" for r in loaded.values()), loaded

        for policy in run.rules.policies:
            series = prometheus.query(expression(policy), at=run.ended)
            assert series, f"{policy.name}: its expression returns no series"
            in_prometheus = run.firings_in_prometheus(policy.name)
            in_process = run.firings_in_process(policy.name)
            assert first_after(in_prometheus, run.fault_at), f"{policy.name}: not in Prometheus"
            assert first_after(in_process, run.fault_at), f"{policy.name}: not in the process"
            if policy.name != "FeatureDrift":  # a drift test can reject a healthy window
                early = [t - run.fault_at for t in in_prometheus + in_process if t < run.fault_at]
                assert not early, (policy.name, early)
            arrived = run.webhooks_of(policy.name)
            assert arrived, f"{policy.name} never reached a webhook"
            assert {path for _, path in arrived} == {f"/inferwatch-{policy.severity}"}, arrived

        dashboard = render_grafana_dashboard(run.rules)
        for panel in dashboard["panels"]:
            for query in panel.get("targets", []):
                expr = (
                    query["expr"]
                    .replace("$__rate_interval", "10s")
                    .replace('"$job"', '".+"')
                    .replace('"$model"', '".+"')
                )
                assert prometheus.query(expr, at=run.ended), (panel["title"], expr)
        for variable in dashboard["templating"]["list"][1:]:
            inner = variable["query"].removeprefix("label_values(").rsplit(",", 1)[0]
            assert prometheus.query(inner.replace('"$job"', '".+"'), at=run.ended), inner
    finally:
        run.prometheus.stop()
