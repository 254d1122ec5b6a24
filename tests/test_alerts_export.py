"""Alert policies → Prometheus rules and a Grafana dashboard, from the same definitions.

* The files committed in collector_config/ are what rendering collector_config/alerts.yaml
  gives today, byte for byte.
* Every PromQL expression (rules and dashboard) parses with a real PromQL parser
  (``promql-parser``, the Rust parser of GreptimeDB's promql-parser crate), and names only
  series the collector's Prometheus exporter produces from what inferwatch emits: the names are
  derived from the SDK's own data (name, unit, instrument) through the exporter's rules, which
  are checked against the examples of the upstream documentation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from opentelemetry.sdk.metrics.export import Gauge, Histogram, InMemoryMetricReader, Sum

promql_parser = pytest.importorskip("promql_parser")

import inferwatch as iw  # noqa: E402
from inferwatch import errors as _internal  # noqa: E402
from inferwatch.alerts import (  # noqa: E402
    AlertPolicy,
    AlertReader,
    load_rules,
    render_grafana_dashboard,
    render_prometheus_rules,
)
from inferwatch.alerts.__main__ import DASHBOARD_FILE, RULES_FILE, main  # noqa: E402
from inferwatch.alerts.catalog import (  # noqa: E402
    KNOWN_METRICS,
    prometheus_label,
    prometheus_metric_name,
)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "collector_config"
POLICIES = CONFIG_DIR / "alerts.yaml"
LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Label names that are not OTel attributes: set by Prometheus, the exporter or the histogram.
SPECIAL_LABELS = {"job", "le", "alertname", "alertstate", "severity"}


def test_committed_outputs_are_up_to_date(tmp_path: Path) -> None:
    assert main(["render", str(POLICIES), "--out", str(tmp_path)]) == 0
    for relative in (RULES_FILE, DASHBOARD_FILE):
        committed = (CONFIG_DIR / relative).read_bytes()
        assert (tmp_path / relative).read_bytes() == committed, (
            f"collector_config/{relative} is stale: run python -m inferwatch.alerts render "
            "collector_config/alerts.yaml --out collector_config"
        )


# -- the exporter's naming rules -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [  # the examples of opentelemetry-collector-contrib pkg/translator/prometheus/README.md
        ("system.filesystem.usage", "By", "gauge", "system_filesystem_usage_bytes"),
        ("system.network.dropped", "{packets}", "gauge", "system_network_dropped"),
        ("system.network.dropped", "packets", "gauge", "system_network_dropped_packets"),
        ("system.memory.utilization", "1", "gauge", "system_memory_utilization_ratio"),
        ("storage.filesystem.utilization", "%", "gauge",
         "storage_filesystem_utilization_percent"),
        ("astro.light.speed", "m/s", "gauge", "astro_light_speed_meters_per_second"),
        ("system.processes.created", "", "counter", "system_processes_created_total"),
        ("(lambda).function.executions(#)", "", "gauge", "lambda_function_executions"),
        # and otlptranslator's own examples (metric_namer.go)
        ("http.server.duration", "s", "histogram", "http_server_duration_seconds"),
        ("requests.count", "1", "counter", "requests_count_total"),
        ("memory.usage", "By", "gauge", "memory_usage_bytes"),
    ],
)  # fmt: skip
def test_metric_names_follow_the_collector_exporter(
    name: str, unit: str, kind: Any, expected: str
) -> None:
    assert prometheus_metric_name(name, unit, kind) == expected


@pytest.mark.parametrize(
    ("key", "label"),
    [("name", "name"), ("host.name", "host_name"), ("host_name", "host_name"),
     ("name (of the host)", "name__of_the_host_"), ("2 cents", "key_2_cents"),
     ("__name", "__name"), ("_name", "key_name")],
)  # fmt: skip
def test_label_names_follow_the_collector_exporter(key: str, label: str) -> None:
    assert prometheus_label(key) == label


def emitted_metrics(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """(instrument kind, unit) of every metric a real inferwatch run exports, by name."""
    rng = np.random.default_rng(1)
    features = ["amount", "age"]
    baseline = iw.Profile.build(rng.normal(size=(5000, 2)), columns=features)
    schema = iw.Schema(features=[iw.Feature(name="amount", max=3.0), iw.Feature(name="age")])
    reader = InMemoryMetricReader()
    rules = load_rules(POLICIES)
    alert_reader = AlertReader(rules, autostart=False)
    iw.configure(service_name="names", store=False, metric_readers=[reader, alert_reader])
    try:

        @iw.monitor(model="fraud", features=features, baseline=baseline, window="1h",
                    schema=schema)  # fmt: skip
        def predict(x: np.ndarray) -> np.ndarray:
            if np.isnan(x).all():
                raise ValueError("all missing")
            return x.sum(axis=1)

        @iw.monitor(model="churn")
        def classify(x: list[str]) -> list[str]:
            return ["stay" for _ in x]

        predict(rng.normal(size=(50, 2)) + np.array([5.0, 0.0]))
        predict(np.array([[np.nan, 1.0]]))
        with pytest.raises(ValueError):
            predict(np.full((1, 2), np.nan))
        classify(["a", "bb"])
        with iw.inference(model="fraud") as rec, rec.stage("postprocess"):
            pass
        predict.drift.close_window()
        _internal.log_internal_error("test", RuntimeError("counted"))
        alert_reader.collect()
        data = reader.get_metrics_data()
    finally:
        iw.shutdown()
        predict.drift.stop()
    found: dict[str, tuple[str, str]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                kind = {Histogram: "histogram", Gauge: "gauge"}.get(type(metric.data), "gauge")
                if isinstance(metric.data, Sum) and metric.data.is_monotonic:
                    kind = "counter"
                found[metric.name] = (kind, metric.unit or "")
    return found


def test_catalog_matches_what_inferwatch_emits(tmp_path: Path) -> None:
    emitted = emitted_metrics(tmp_path)
    checked = {name: v for name, v in emitted.items() if name in KNOWN_METRICS}
    for name, (kind, unit) in checked.items():
        info = KNOWN_METRICS[name]
        assert (info.kind, info.unit) == (kind, unit), name
    # Everything the default policies and the dashboard read was emitted here, except the
    # delayed-label scores (they need labels to arrive; see tests of iw.feedback).
    referenced = {p.metric for p in load_rules(POLICIES).policies} | {
        "ml.inference.duration", "ml.input.nan_count", "ml.prediction.value",
        "ml.prediction.count", "ml.input.violations", "ml.drift.score", "ml.drift.detected",
        "inferwatch.alert.notifications", "inferwatch.alert.active",
    }  # fmt: skip
    feedback = {n for n in referenced if n.startswith("ml.label.")}
    assert referenced - feedback <= set(checked)


# -- rules ---------------------------------------------------------------------------------------
def selectors(expr: str) -> list[Any]:
    found: list[Any] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def exporter_series() -> set[str]:
    """Every series name the exporter gives inferwatch's metrics (histograms: their parts)."""
    names = set()
    for info in KNOWN_METRICS.values():
        if info.kind == "histogram":
            names |= {info.prometheus_series(p) for p in ("bucket", "sum", "count")}
        else:
            names.add(info.prometheus_name)
    return names


def check_expression(expr: str, attributes: set[str]) -> None:
    known = exporter_series()
    labels = {prometheus_label(a) for a in attributes} | SPECIAL_LABELS
    found = selectors(expr)
    assert found, expr
    for selector in found:
        assert selector.name in known or selector.name == "ALERTS", selector.name
        for matcher in selector.matchers.matchers:
            assert matcher.name in labels, (matcher.name, expr)
    for grouping in re.findall(r"by \(([^)]*)\)", expr):
        for label in grouping.split(", "):
            assert LABEL.match(label) and label in labels, (label, expr)


def policy_attributes() -> set[str]:
    from inferwatch import semconv

    names = {v for k, v in vars(semconv).items() if k.startswith(("ML_", "ATTR_")) and
             isinstance(v, str)}  # fmt: skip
    return names | {semconv.ERROR_TYPE, "ml.prediction.class", "ml.validation.rule"}


def test_rule_file_is_valid_prometheus_rules() -> None:
    rules = load_rules(POLICIES)
    document = yaml.safe_load((CONFIG_DIR / RULES_FILE).read_text())
    [group] = document["groups"]
    assert group["name"] == "inferwatch" and group["interval"] == "30s"
    assert [r["alert"] for r in group["rules"]] == [p.name for p in rules.policies]
    for rule, policy in zip(group["rules"], rules.policies, strict=True):
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
        if policy.for_:
            assert promql_parser.parse_duration(rule["for"]).total_seconds() == policy.for_
        else:
            assert "for" not in rule
        assert rule["labels"]["severity"] == policy.severity
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
        assert "{{ $value | humanize }}" in rule["annotations"]["summary"]
        expr = rule["expr"]
        assert expr.endswith(f" {policy.op} {policy.threshold!r}")
        check_expression(expr, policy_attributes())


def test_every_statistic_renders_to_promql_that_parses() -> None:
    base = {"name": "P", "op": ">", "threshold": 1.0, "window": "10m", "group_by": ["region"],
            "where": {"ml.model.name": ["a.b", "c"], "ml.window": "!cumulative",
                      "error.type": ""}}  # fmt: skip
    cases = [
        {"metric": "ml.inference.duration", "statistic": s}
        for s in ("increase", "rate", "mean", "p50", "p999")
    ] + [
        {"metric": "ml.inference.duration", "statistic": "ratio",
         "numerator": {"error.type": "*"}},
        {"metric": "ml.input.nan_count", "statistic": "ratio",
         "denominator": "ml.inference.duration"},
        {"metric": "ml.prediction.count", "statistic": "ratio",
         "numerator": {"ml.prediction.class": "fraud"}},
    ] + [
        {"metric": "ml.drift.score", "statistic": s, "combine": c}
        for s in ("last", "max", "min", "avg") for c in (None, "sum", "avg")
    ]  # fmt: skip
    policies = [AlertPolicy.model_validate({**base, **case}) for case in cases]
    document = yaml.safe_load(render_prometheus_rules(policies))
    for rule in document["groups"][0]["rules"]:
        check_expression(rule["expr"], policy_attributes() | {"region"})
    exprs = [r["expr"] for r in document["groups"][0]["rules"]]
    assert 'ml_model_name=~"a\\\\.b|c"' in exprs[0]  # a regex, with its dot escaped
    assert 'ml_window!="cumulative"' in exprs[0] and 'error_type=""' in exprs[0]


# -- dashboard -----------------------------------------------------------------------------------
def test_dashboard_panels() -> None:
    rules = load_rules(POLICIES)
    dashboard = json.loads((CONFIG_DIR / DASHBOARD_FILE).read_text())
    assert dashboard == render_grafana_dashboard(rules)
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    titles = [p["title"] for p in panels]
    for wanted in ("Latency p50 / p99", "Error rate", "NaN share", "Prediction distribution",
                   "Drift score", "Accuracy"):  # fmt: skip
        assert any(wanted in t for t in titles), wanted
    for policy in rules.policies:
        [panel] = [p for p in panels if p["title"].startswith(f"Alert {policy.name}:")]
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert policy.threshold in [s["value"] for s in steps]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for p in dashboard["panels"]:
        g = p["gridPos"]
        xs, ys = range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])
        area = {(x, y) for x in xs for y in ys}
        assert not area & cells, f"{p['title']} overlaps another panel"
        cells |= area
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert names == {"datasource", "job", "model"}
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "5m")
            check_expression(expr, policy_attributes())


# -- command line --------------------------------------------------------------------------------
def test_cli_check_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(POLICIES)]) == 0
    out = capsys.readouterr().out
    assert "InferenceErrorRateHigh: ratio of ml.inference.duration over 5m > 0.05" in out
    assert f"{len(load_rules(POLICIES).policies)} policies OK" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("policies:\n  - {name: X, metric: ml.inference.duration}\n")
    assert main(["render", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "policies[0] (X).statistic: Field required" in err
    assert not (tmp_path / "out").exists()
