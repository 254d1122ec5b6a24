"""Alert policies → Prometheus rules and a Grafana dashboard, from the same definitions.

* The files committed in collector_config/ are what rendering collector_config/alerts.yaml
  gives today, byte for byte.
* Every PromQL expression (rules and dashboard), for every target, parses with a real PromQL
  parser (``promql-parser``, the Rust parser of GreptimeDB's promql-parser crate), and names
  only series and labels that target produces from what inferwatch emits: the names are derived
  from the SDK's own data (name, unit, instrument) through each path's rules. Those of the OTel
  Python exporter are checked against the exporter itself (installed here); those of the
  translation strategies against the examples of otlptranslator's tests and the collector's
  documentation (the collector and Prometheus >= 2.47 are not installed here).
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
from inferwatch import semconv  # noqa: E402
from inferwatch.alerts import (  # noqa: E402
    AlertPolicy,
    AlertReader,
    AlertRules,
    PolicyError,
    load_rules,
    render_grafana_dashboard,
    render_prometheus_rules,
)
from inferwatch.alerts.__main__ import DASHBOARD_FILE, RULES_FILE, main  # noqa: E402
from inferwatch.alerts.catalog import KNOWN_METRICS  # noqa: E402
from inferwatch.alerts.targets import TARGETS, Target, label_name, metric_name  # noqa: E402

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


# -- the naming rules of each path ---------------------------------------------------------------
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
        # and otlptranslator's (metric_namer.go, metric_namer_test.go)
        ("http.server.duration", "s", "histogram", "http_server_duration_seconds"),
        ("requests.count", "1", "counter", "requests_count_total"),
        ("memory.usage", "By", "gauge", "memory_usage_bytes"),
        ("requests", "1/s", "gauge", "requests_per_second"),
        ("cpu_usage_ratio", "1", "gauge", "cpu_usage_ratio"),
        ("requests_total", "", "counter", "requests_total"),
        ("custom_metric", "By/{custom}", "gauge", "custom_metric_bytes"),
        ("metric__with__multiple__underscores", "unit__multiple__underscores", "gauge",
         "metric_with_multiple_underscores_unit_multiple_underscores"),
        ("custom_metric", "unit@with#special/chars", "gauge",
         "custom_metric_unit_with_special_per_chars"),
    ],
)  # fmt: skip
def test_names_with_underscore_escaping_and_suffixes(
    name: str, unit: str, kind: Any, expected: str
) -> None:
    assert metric_name(name, unit, kind, "UnderscoreEscapingWithSuffixes") == expected


@pytest.mark.parametrize(
    ("target", "name", "unit", "kind", "expected"),
    [  # otlptranslator's metric_namer_test.go, one strategy at a time
        ("UnderscoreEscapingWithoutSuffixes", "metric@with#special$chars", "", "gauge",
         "metric_with_special_chars"),
        ("UnderscoreEscapingWithoutSuffixes", "123metric", "", "gauge", "_123metric"),
        ("UnderscoreEscapingWithoutSuffixes", "metric@@##$$name", "", "gauge", "metric_name"),
        ("UnderscoreEscapingWithoutSuffixes", "___", "", "gauge", "___"),
        ("UnderscoreEscapingWithoutSuffixes", "requests", "s", "counter", "requests"),
        ("NoUTF8EscapingWithSuffixes", "requêsts", "", "counter", "requêsts_total"),
        ("NoUTF8EscapingWithSuffixes", "cpu_usagé", "1", "gauge", "cpu_usagé_ratio"),
        ("NoUTF8EscapingWithSuffixes", "respønse_time", "ms", "gauge",
         "respønse_time_milliseconds"),
        ("NoUTF8EscapingWithSuffixes", "requêsts", "1/s", "gauge", "requêsts_per_second"),
        ("NoUTF8EscapingWithSuffixes", "@#$%", "", "counter", "@#$%_total"),
        ("NoUTF8EscapingWithSuffixes", "ml.drift.detected", "1", "gauge",
         "ml.drift.detected_ratio"),
        ("NoTranslation", "métric_with_ñ_chars", "", "gauge", "métric_with_ñ_chars"),
        ("NoTranslation", "ml.label.judged", "{prediction}", "counter", "ml.label.judged"),
    ],
)  # fmt: skip
def test_names_of_the_other_translation_strategies(
    target: Target, name: str, unit: str, kind: Any, expected: str
) -> None:
    assert metric_name(name, unit, kind, target) == expected


@pytest.mark.parametrize(
    ("key", "escaped", "utf8"),
    [  # otlptranslator's label_namer.go / Prometheus' defaults (underscore sanitization on,
       # multiple underscores kept)
        ("name", "name", "name"), ("host.name", "host_name", "host.name"),
        ("host_name", "host_name", "host_name"),
        ("name (of the host)", "name__of_the_host_", "name (of the host)"),
        ("2 cents", "key_2_cents", "2 cents"), ("__name", "__name", "__name"),
        ("_name", "key_name", "_name"),
    ],
)  # fmt: skip
def test_label_names_of_the_translation_strategies(key: str, escaped: str, utf8: str) -> None:
    for target in ("UnderscoreEscapingWithSuffixes", "UnderscoreEscapingWithoutSuffixes"):
        assert label_name(key, target) == escaped
    for target in ("NoUTF8EscapingWithSuffixes", "NoTranslation"):
        assert label_name(key, target) == utf8


def test_otel_python_names_are_the_exporters_own() -> None:
    """Every metric a policy may name, and awkward names and keys, through the real exporter."""
    exporter = pytest.importorskip("opentelemetry.exporter.prometheus")
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    odd = [("lives.9.count", "{x}", "counter"), ("per.unit", "By/s", "gauge"),
           ("cpu.utilization", "1", "gauge"), ("done.total", "s", "counter"),
           ("lat.seconds", "s", "histogram"), ("odd..name-x", "ms", "histogram")]  # fmt: skip
    metrics = [(m.name, m.unit, m.kind) for m in KNOWN_METRICS.values()] + odd
    keys = ["ml.model.name", "2 cents", "a__b", "_x", "name (of the host)"]
    registry = CollectorRegistry()
    reader = exporter.PrometheusMetricReader(registry=registry)
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("names")
    attributes = {key: "v" for key in keys}
    for name, unit, kind in metrics:
        if kind == "histogram":
            meter.create_histogram(name, unit=unit).record(1.0, attributes)
        elif kind == "counter":
            meter.create_counter(name, unit=unit).add(1, attributes)
        else:
            meter.create_gauge(name, unit=unit).set(1.0, attributes)
    exposed: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            exposed[sample.name] = set(sample.labels)
    provider.shutdown()
    for name, unit, kind in metrics:
        base = metric_name(name, unit, kind, "otel-python")
        parts = ("bucket", "sum", "count") if kind == "histogram" else ("",)
        for part in parts:
            series = f"{base}_{part}" if part else base
            assert series in exposed, (name, unit, kind, series, sorted(exposed))
            assert {label_name(k, "otel-python") for k in keys} <= exposed[series]


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
    # delayed-label scores and the ranking windows (tests/test_semconv.py runs every feature).
    referenced = {p.metric for p in load_rules(POLICIES).policies} | {
        "ml.inference.duration", "ml.input.nan_count", "ml.prediction.value",
        "ml.prediction.count", "ml.input.violations", "ml.drift.score", "ml.drift.detected",
        "inferwatch.alert.notifications", "inferwatch.alert.active",
    }  # fmt: skip
    feedback = {n for n in referenced if n.startswith(("ml.label.", "ml.ranking."))}
    # The SDK's pipeline metrics need an OTLP endpoint: tests/test_pipeline_health.py.
    assert referenced - feedback - set(semconv.PIPELINE_METRICS) <= set(checked)


# -- rules ---------------------------------------------------------------------------------------
def parsed(expr: str) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """(series name, matcher labels) of each selector, and every grouping label of ``expr``."""
    selectors: list[tuple[str, list[str]]] = []
    groupings: list[str] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = node.matchers.matchers
            name = node.name or next(m.value for m in matchers if m.name == "__name__")
            selectors.append((name, [m.name for m in matchers if m.name != "__name__"]))
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            groupings.extend(node.modifier.labels)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return selectors, groupings


def target_series(target: Target) -> set[str]:
    """Every series name ``target`` gives inferwatch's metrics (histograms: their parts)."""
    names = set()
    for info in KNOWN_METRICS.values():
        if info.kind == "histogram":
            names |= {info.prometheus_series(p, target) for p in ("bucket", "sum", "count")}
        else:
            names.add(info.prometheus_name(target))
    return names


def check_expression(expr: str, attributes: set[str], target: Target = "otel-python") -> None:
    known = target_series(target)
    labels = {label_name(a, target) for a in attributes} | SPECIAL_LABELS
    selectors, groupings = parsed(expr)
    assert selectors, expr
    for name, matched in selectors:
        assert name in known or name == "ALERTS", name
        assert set(matched) <= labels, (matched, expr)
    assert set(groupings) <= labels, (groupings, expr)
    if target in ("otel-python", "UnderscoreEscapingWithSuffixes"):
        assert all(LABEL.match(label) for label in groupings), expr


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


@pytest.mark.parametrize("target", TARGETS)
def test_every_statistic_renders_to_promql_that_parses(target: Target) -> None:
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
    document = yaml.safe_load(render_prometheus_rules(policies, target=target))
    for rule in document["groups"][0]["rules"]:
        check_expression(rule["expr"], policy_attributes() | {"region"}, target)
    exprs = [r["expr"] for r in document["groups"][0]["rules"]]
    model, window, error = (
        label_name(k, target) for k in ("ml.model.name", "ml.window", "error.type")
    )
    if "." in model:  # UTF-8 names are quoted
        model, window, error = (f'"{name}"' for name in (model, window, error))
    assert model + '=~"a\\\\.b|c"' in exprs[0]  # a regex, with its dot escaped
    assert f'{window}!="cumulative"' in exprs[0] and f'{error}=""' in exprs[0]


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


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_renders_a_dashboard_on_its_own_names(target: Target) -> None:
    dashboard = render_grafana_dashboard(load_rules(POLICIES), target=target)
    queries = [q["expr"] for p in dashboard["panels"] for q in p.get("targets", [])]
    for expr in queries:
        check_expression(expr.replace("$__rate_interval", "5m"), policy_attributes(), target)
    for variable in dashboard["templating"]["list"][1:]:  # label_values(<selector>, <label>)
        inner = variable["query"].removeprefix("label_values(").rsplit(",", 1)[0]
        check_expression(inner, policy_attributes(), target)


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


def test_the_target_comes_from_the_policy_file_or_the_command_line(tmp_path: Path) -> None:
    policies = tmp_path / "alerts.yaml"
    policies.write_text(
        POLICIES.read_text().replace("# target: otel-python", "target: NoUTF8EscapingWithSuffixes")
    )
    assert main(["render", str(policies), "--out", str(tmp_path / "file")]) == 0
    rules = (tmp_path / "file" / RULES_FILE).read_text()
    assert 'max_over_time({"ml.drift.detected_ratio", "ml.window"!="cumulative"}[15m])' in rules
    assert '{{ index $labels "ml.model.name" }}' in rules
    assert main(["render", str(policies), "--out", str(tmp_path / "cli"), "--target",
                 "otel-python"]) == 0  # fmt: skip
    rules = (tmp_path / "cli" / RULES_FILE).read_text()
    assert 'max_over_time(ml_drift_detected{ml_window!="cumulative"}[15m])' in rules
    policies.write_text(POLICIES.read_text().replace("# target: otel-python", "target: mimir"))
    with pytest.raises(PolicyError, match="target: Input should be 'otel-python'"):
        load_rules(policies)


def test_configure_warns_when_the_target_is_not_where_the_metrics_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = pytest.importorskip("opentelemetry.exporter.prometheus")
    from prometheus_client import CollectorRegistry

    policies = load_rules(POLICIES).policies[:1]
    cases = [  # (target given, a PrometheusMetricReader in this process, warned)
        (None, True, False), ("otel-python", True, False), (None, False, False),
        ("UnderscoreEscapingWithSuffixes", True, True), ("otel-python", False, True),
        ("UnderscoreEscapingWithSuffixes", False, False),
    ]  # fmt: skip
    for target, scraped, warned in cases:
        caplog.clear()
        rules = AlertRules(policies=policies, **({"target": target} if target else {}))
        readers = [exporter.PrometheusMetricReader(registry=CollectorRegistry())] if scraped else []
        iw.configure(service_name="target", store=False, metric_readers=readers, alerts=rules)
        iw.shutdown()
        messages = [r.getMessage() for r in caplog.records if r.name == "inferwatch"]
        assert any("alert policies have target" in m for m in messages) == warned, (
            target, scraped, messages)  # fmt: skip
