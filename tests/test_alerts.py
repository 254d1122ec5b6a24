"""Alert policies evaluated in the process, on real OTel metrics recorded through inferwatch.

Each test configures inferwatch with an `AlertReader` on a fake clock (no thread), records
inferences or metrics through the SDK, and drives the reader's collection step by step.
Channels are real: log events through the OTel logs bridge, webhooks over HTTP to a server on
127.0.0.1 in the test, callables on their worker thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import structlog
from opentelemetry import metrics
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import inferwatch as iw
from inferwatch import errors as _internal
from inferwatch.alerts import (
    AlertPolicy,
    AlertReader,
    AlertRules,
    Notification,
    PolicyError,
    WebhookChannel,
    load_rules,
    rules_from,
)
from inferwatch.alerts.statistics import histogram_quantile
from tests.conftest import Captured

MODEL = "ml.model.name"


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Alerting:
    reader: AlertReader
    clock: Clock
    captured: Captured

    def step(self, seconds: float = 0.0) -> None:
        """Let ``seconds`` pass, then collect and evaluate once."""
        self.clock.now += seconds
        self.reader.collect()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [
            dict(r.log_record.attributes or {})
            for r in self.captured.logs()
            if r.log_record.event_name == name
        ]

    def sent(self, alert: str, channel: str = "log") -> int:
        return self.reader.outcomes().get((alert, channel, "sent"), 0)


@pytest.fixture
def alerting() -> Iterator[Callable[[AlertRules], Alerting]]:
    """Configure inferwatch (strict mode) with an alert reader on a fake clock."""

    def start(rules: AlertRules) -> Alerting:
        clock = Clock()
        reader = AlertReader(rules, clock=clock, autostart=False)
        captured = Captured()
        iw.configure(
            service_name="alerts-test",
            span_processors=[SimpleSpanProcessor(captured.exporter)],
            metric_readers=[captured.reader, reader],
            log_processors=[SimpleLogRecordProcessor(captured.log_exporter)],
            store=False,
            strict=True,
        )
        _internal.reset_internal_errors()
        return Alerting(reader, clock, captured)

    yield start
    iw.shutdown()
    _internal.set_strict(False)
    structlog.reset_defaults()


def calls(model: str, ok: int = 0, failed: int = 0) -> None:
    for _ in range(ok):
        with iw.inference(model=model) as rec:
            rec.record_input([1.0, 2.0])
    for _ in range(failed):
        with contextlib.suppress(ValueError), iw.inference(model=model):
            raise ValueError("bad input")


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def error_policy(**changes: Any) -> AlertPolicy:
    fields: dict[str, Any] = {
        "name": "Errors", "metric": "ml.inference.duration", "statistic": "ratio",
        "numerator": {"error.type": "*"}, "group_by": [MODEL], "op": ">", "threshold": 0.2,
        "window": "2m", "for": "1m",
    }  # fmt: skip
    return AlertPolicy.model_validate({**fields, **changes})


# -- state machine on real metrics -------------------------------------------------------------
def test_error_ratio_goes_pending_then_fires_once_then_resolves(alerting: Any) -> None:
    a = alerting(AlertRules(policies=[error_policy()], evaluation_interval=30))
    calls("fraud", ok=6, failed=4)  # 40% errors
    calls("churn", ok=10)
    a.step()
    assert a.reader.firing() == {} and a.events("inferwatch.alert.firing") == []  # pending
    a.step(30)
    assert a.reader.firing() == {}
    a.step(30)  # held for the policy's 1 minute: fires, for fraud only
    assert a.reader.firing() == {"Errors": [{MODEL: "fraud"}]}
    [event] = a.events("inferwatch.alert.firing")
    assert event[MODEL] == "fraud" and event["inferwatch.alert.value"] == pytest.approx(0.4)
    assert event["inferwatch.alert.severity"] == "warning"
    for _ in range(4):  # still firing, no new errors yet: deduplicated, no more notifications
        a.step(10)
    assert a.sent("Errors") == 1
    calls("fraud", ok=30)
    a.step(120)  # the failures left the 2-minute window
    assert a.reader.firing() == {}
    [resolved] = a.events("inferwatch.alert.resolved")
    assert resolved[MODEL] == "fraud" and resolved["inferwatch.alert.value"] == 0.0
    assert a.sent("Errors") == 2


def test_condition_that_stops_holding_while_pending_never_notifies(alerting: Any) -> None:
    a = alerting(AlertRules(policies=[error_policy(window="1m")], evaluation_interval=30))
    calls("fraud", ok=1, failed=1)
    a.step()
    calls("fraud", ok=20)
    a.step(61)
    a.step(60)
    assert a.reader.outcomes() == {} and a.reader.firing() == {}


def test_renotify_while_firing(alerting: Any) -> None:
    policy = error_policy(**{"for": "0s", "renotify": "5m", "window": "1h"})
    a = alerting(AlertRules(policies=[policy], evaluation_interval=30))
    calls("fraud", failed=3)
    a.step()
    assert a.sent("Errors") == 1
    for _ in range(9):  # 4.5 minutes
        a.step(30)
    assert a.sent("Errors") == 1
    a.step(30)
    assert a.sent("Errors") == 2
    assert [e["inferwatch.alert.name"] for e in a.events("inferwatch.alert.firing")] == [
        "Errors",
        "Errors",
    ]


def test_rate_limit_holds_back_flapping_and_reports_what_it_suppressed(alerting: Any) -> None:
    policy = error_policy(**{"for": "0s", "window": "30s"})
    rules = AlertRules(
        policies=[policy], evaluation_interval=30, rate_limit={"max": 2, "per": "1h"}
    )
    a = alerting(rules)
    for _ in range(3):  # fire, resolve, fire, resolve, ...: six state changes
        calls("fraud", failed=2)
        a.step(31)
        calls("fraud", ok=20)
        a.step(31)
    outcomes = a.reader.outcomes()
    assert outcomes[("Errors", "log", "sent")] == 2
    assert outcomes[("Errors", "log", "rate_limited")] == 4
    calls("fraud", failed=2)
    a.step(3600)  # the hour has passed: the next one goes out and says what was held back
    [*_, last] = a.events("inferwatch.alert.firing")
    assert last["inferwatch.suppressed"] == 4
    rate_limited = {
        attributes["inferwatch.alert.outcome"]: point.value
        for attributes, point in a.captured.points("inferwatch.alert.notifications")
    }
    assert rate_limited == {"sent": 3, "rate_limited": 4}


def test_keep_firing_for_damps_a_flapping_condition(alerting: Any) -> None:
    policy = error_policy(**{"for": "0s", "window": "30s", "keep_firing_for": "2m"})
    a = alerting(AlertRules(policies=[policy], evaluation_interval=30))
    calls("fraud", failed=2)
    a.step(31)
    calls("fraud", ok=10)
    a.step(31)  # condition false, but within keep_firing_for
    assert a.reader.firing() == {"Errors": [{MODEL: "fraud"}]}
    a.step(120)
    assert a.reader.firing() == {}
    assert len(a.events("inferwatch.alert.firing")) == 1
    assert len(a.events("inferwatch.alert.resolved")) == 1


def test_quantile_of_a_histogram_interpolates_as_prometheus_does(alerting: Any) -> None:
    policy = AlertPolicy.model_validate({
        "name": "SlowRequests", "metric": "app.request.duration", "instrument": "histogram",
        "unit": "s", "statistic": "p99", "op": ">", "threshold": 1.5, "window": "5m",
    })  # fmt: skip
    a = alerting(AlertRules(policies=[policy]))
    latency = metrics.get_meter("app").create_histogram(
        "app.request.duration", unit="s", explicit_bucket_boundaries_advisory=[0.1, 0.5, 1, 2]
    )
    for _ in range(90):
        latency.record(0.05)
    for _ in range(10):
        latency.record(1.5)
    a.step()
    # rank 0.99 * 100 = 99 falls in (1, 2], which holds ranks 91..100: 1 + (2 - 1) * 9/10.
    [event] = a.events("inferwatch.alert.firing")
    assert event["inferwatch.alert.value"] == pytest.approx(1.9)


def test_histogram_quantile_edge_cases() -> None:
    bounds = (0.1, 0.5)
    assert histogram_quantile(0.5, bounds, [0, 0, 0]) is None
    assert histogram_quantile(0.5, bounds, [0, 0, 4]) == 0.5  # overflow: highest finite bound
    assert histogram_quantile(0.5, bounds, [4, 0, 0]) == pytest.approx(0.05)  # first from 0


def test_accuracy_below_threshold_on_a_named_gauge(alerting: Any) -> None:
    """ "Accuracy below X" is a threshold on a gauge: worst series of each group counts."""
    policy = AlertPolicy.model_validate({
        "name": "AccuracyLow", "metric": "app.accuracy", "instrument": "gauge", "unit": "1",
        "statistic": "last", "group_by": [MODEL], "op": "<", "threshold": 0.8, "window": "1h",
    })  # fmt: skip
    a = alerting(AlertRules(policies=[policy]))
    accuracy = metrics.get_meter("app").create_gauge("app.accuracy", unit="1")
    accuracy.set(0.91, {MODEL: "fraud", "ml.window.start": "13:00"})
    accuracy.set(0.74, {MODEL: "fraud", "ml.window.start": "14:00"})
    accuracy.set(0.95, {MODEL: "churn", "ml.window.start": "14:00"})
    a.step()
    assert a.reader.firing() == {"AccuracyLow": [{MODEL: "fraud"}]}
    [event] = a.events("inferwatch.alert.firing")
    assert event["inferwatch.alert.value"] == pytest.approx(0.74)
    accuracy.set(0.85, {MODEL: "fraud", "ml.window.start": "14:00"})
    a.step(30)
    assert a.reader.firing() == {}


def test_the_default_accuracy_policy_reads_the_judged_counter(alerting: Any) -> None:
    """ModelAccuracyLow (collector_config/alerts.yaml): right / judged of the last hour's labels,
    from `ml.label.judged`, the counter that sums across processes; regression labels (outcome
    "scored") are not in its denominator."""
    from inferwatch.delayed_labels import configure_feedback

    rules = load_rules(Path(__file__).resolve().parents[1] / "collector_config" / "alerts.yaml")
    (policy,) = [p for p in rules.policies if p.name == "ModelAccuracyLow"]
    a = alerting(AlertRules(policies=[policy]))
    configure_feedback()

    @iw.monitor(model="fraud", prediction_kind="classification")
    def classify(x: str) -> str:
        return x

    @iw.monitor(model="price")
    def regress(x: float) -> float:
        return x

    a.step()
    for i in range(10):
        with iw.context(request_id=f"c-{i}"):
            classify("ok")
        with iw.context(request_id=f"p-{i}"):
            regress(1.0)
        assert iw.feedback(f"c-{i}", "ok" if i < 7 else "fraud") == "joined"  # 70% right
        assert iw.feedback(f"p-{i}", 5.0) == "joined"
    a.step(30)
    assert a.reader.firing() == {"ModelAccuracyLow": [{MODEL: "fraud"}]}
    [event] = a.events("inferwatch.alert.firing")
    assert event["inferwatch.alert.value"] == pytest.approx(0.7)
    configure_feedback()


def test_missing_values_per_inference_divides_by_another_metric(alerting: Any) -> None:
    policy = AlertPolicy.model_validate({
        "name": "Missing", "metric": "ml.input.nan_count", "statistic": "ratio",
        "denominator": "ml.inference.duration", "group_by": [MODEL], "op": ">", "threshold": 1,
    })  # fmt: skip
    a = alerting(AlertRules(policies=[policy]))
    for _ in range(4):
        with iw.inference(model="fraud") as rec:
            rec.record_input([float("nan"), float("nan"), 1.0])
    calls("churn", ok=4)
    a.step()
    assert a.reader.firing() == {"Missing": [{MODEL: "fraud"}]}
    [event] = a.events("inferwatch.alert.firing")
    assert event["inferwatch.alert.value"] == pytest.approx(2.0)


def test_where_filter_and_active_gauge(alerting: Any) -> None:
    policy = error_policy(**{"for": "0s", "where": {MODEL: ["fraud", "spam"]}})
    a = alerting(AlertRules(policies=[policy]))
    calls("fraud", failed=1)
    calls("spam", failed=1)
    calls("churn", failed=1)
    a.step()
    assert sorted(g[MODEL] for g in a.reader.firing()["Errors"]) == ["fraud", "spam"]
    a.step(1)  # the gauge reports what the previous evaluation left firing
    active = {p["inferwatch.alert.name"]: v.value for p, v in a.captured.points(
        "inferwatch.alert.active")}  # fmt: skip
    assert active == {"Errors": 2}


# -- channels ------------------------------------------------------------------------------------
class Webhook:
    """An HTTP server on 127.0.0.1 answering with scripted statuses (or hanging)."""

    def __init__(self, statuses: list[int | None]) -> None:
        self.statuses = statuses
        self.bodies: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str | None]] = []  # (path, Authorization header)
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.requests.append((self.path, self.headers["Authorization"]))
                status = hook.statuses.pop(0) if hook.statuses else 200
                if status is None:  # hang until the test ends
                    hook.release.wait(30)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Callable[[list[int | None]], Webhook]]:
    servers: list[Webhook] = []

    def start(statuses: list[int | None]) -> Webhook:
        servers.append(Webhook(statuses))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def webhook_rules(url: str, **channel: Any) -> AlertRules:
    spec = {"type": "webhook", "url": url, "timeout": "1s", "retries": 2, "backoff": "10ms",
            **channel}  # fmt: skip
    return AlertRules(
        policies=[error_policy(**{"for": "0s", "channels": ["hook", "log"]})],
        channels={"hook": spec},
    )


def test_webhook_500_then_200_is_retried(alerting: Any, webhook: Any) -> None:
    hook = webhook([500, 200])
    a = alerting(webhook_rules(hook.url))
    calls("fraud", failed=2)
    a.step()
    wait_for(lambda: a.sent("Errors", "hook") == 1, "the webhook delivery")
    assert len(hook.bodies) == 2  # the 500, then the retry
    body = hook.bodies[-1]
    assert body["alert"] == "Errors" and body["state"] == "firing"
    assert body["group"] == {MODEL: "fraud"} and body["resource"]["service.name"] == "alerts-test"
    assert _internal.internal_errors() == {}


def test_webhook_that_hangs_never_blocks_the_evaluator(alerting: Any, webhook: Any) -> None:
    hook = webhook([None])
    a = alerting(webhook_rules(hook.url, timeout="60s", retries=0))
    calls("fraud", failed=2)
    a.step()
    wait_for(lambda: len(hook.bodies) == 1, "the request to arrive")
    # The server holds the request; evaluation returned and goes on notifying regardless.
    calls("churn", failed=2)
    a.step(30)
    assert sorted(g[MODEL] for g in a.reader.firing()["Errors"]) == ["churn", "fraud"]
    assert a.sent("Errors", "log") == 2
    assert not any(channel == "hook" for _, channel, _ in a.reader.outcomes())
    hook.release.set()  # the server gives up without answering: a failed delivery
    wait_for(lambda: ("Errors", "hook", "failed") in a.reader.outcomes(), "the failure")


def test_webhook_timeout_is_retried_counted_and_logged(
    alerting: Any, webhook: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hook = webhook([None, None])
    a = alerting(webhook_rules(hook.url, timeout="200ms", retries=1))
    calls("fraud", failed=2)
    with caplog.at_level(logging.WARNING, logger="inferwatch.internal"):
        a.step()
        wait_for(lambda: ("Errors", "hook", "failed") in a.reader.outcomes(), "the timeout")
    assert len(hook.bodies) == 2  # first attempt and one retry, both timed out
    assert _internal.internal_errors() == {"alerts.webhook": 1}
    [record] = [r for r in caplog.records if r.name == "inferwatch.internal"]
    assert "alerts.webhook" in record.getMessage() and "ReadTimeout" in record.getMessage()
    assert a.reader.outcomes() == {("Errors", "log", "sent"): 1, ("Errors", "hook", "failed"): 1}


def test_webhook_client_error_is_not_retried(alerting: Any, webhook: Any) -> None:
    hook = webhook([404])
    a = alerting(webhook_rules(hook.url))
    calls("fraud", failed=2)
    a.step()
    wait_for(lambda: ("Errors", "hook", "failed") in a.reader.outcomes(), "the failure")
    assert len(hook.bodies) == 1


def test_webhook_secrets_come_from_the_environment_and_stay_out_of_logs(
    alerting: Any, webhook: Any, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    hook = webhook([404])
    base = hook.url.removesuffix("/hook")
    secret_path, token = "services/T0/B1/s3cr3t-path", "tok-s3cr3t"
    monkeypatch.setenv("IW_HOOK_PATH", secret_path)
    monkeypatch.setenv("IW_HOOK_TOKEN", token)
    rules = webhook_rules(base + "/${env:IW_HOOK_PATH}", retries=0,
                          headers={"Authorization": "Bearer ${env:IW_HOOK_TOKEN}"})  # fmt: skip
    channel = rules.channels["hook"]
    assert isinstance(channel, WebhookChannel) and channel.url == f"{base}/{secret_path}"
    assert channel.display_url == base + "/..."
    assert secret_path not in repr(rules) and token not in repr(rules)
    a = alerting(rules)
    calls("fraud", failed=2)
    with caplog.at_level(logging.DEBUG):
        a.step()
        wait_for(lambda: ("Errors", "hook", "failed") in a.reader.outcomes(), "the failure")
    assert hook.requests == [("/" + secret_path, "Bearer " + token)]
    assert f"webhook {base}/... answered 404" in caplog.text
    assert secret_path not in caplog.text and token not in caplog.text


def test_an_unset_environment_variable_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("channels: {hook: {type: webhook, url: 'https://h/${env:IW_NOT_SET_1}'}}\n"
                    "policies: []")  # fmt: skip
    expected = r"channels\.hook\.webhook\.url: .*IW_NOT_SET_1 is not set"
    with pytest.raises(PolicyError, match=expected):
        load_rules(path)


def test_full_webhook_queue_drops_and_counts(alerting: Any, webhook: Any) -> None:
    hook = webhook([None])
    rules = webhook_rules(hook.url, timeout="5s", retries=0, queue_size=1)
    a = alerting(rules)
    for model in ("a", "b", "c"):
        calls(model, failed=1)
    a.step()  # three groups fire at once: one in flight, one queued, one dropped
    wait_for(lambda: len(hook.bodies) == 1, "the first request")
    outcomes = a.reader.outcomes()
    assert outcomes.get(("Errors", "hook", "dropped"), 0) >= 1
    assert _internal.internal_errors()["alerts.webhook"] >= 1
    assert a.sent("Errors", "log") == 3


def test_callable_channel_gets_the_notification_and_its_exceptions_are_counted(
    alerting: Any,
) -> None:
    received: queue.Queue[Notification] = queue.Queue()

    def broken(notification: Notification) -> None:
        raise RuntimeError("pager is down")

    rules = AlertRules(
        policies=[error_policy(**{"for": "0s", "channels": ["broken", "pager", "log"]})],
        channels={"broken": broken, "pager": received.put},
    )
    a = alerting(rules)
    calls("fraud", failed=1)
    a.step()
    notification = received.get(timeout=20)
    assert (notification.alert, notification.state, notification.group) == (
        "Errors", "firing", {MODEL: "fraud"},
    )  # fmt: skip
    wait_for(lambda: ("Errors", "broken", "failed") in a.reader.outcomes(), "the failure")
    assert _internal.internal_errors() == {"alerts.callable": 1}
    assert a.sent("Errors", "log") == 1


# -- configuration -------------------------------------------------------------------------------
@pytest.fixture
def event_records() -> Iterator[list[logging.LogRecord]]:
    """Records of the ``inferwatch.events`` logger, as the application's logging sees them."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("inferwatch.events")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_configure_with_a_policy_file_evaluates_on_its_own_thread(
    tmp_path: Path, event_records: list[logging.LogRecord]
) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "evaluation_interval: 100ms\n"
        "policies:\n"
        "  - {name: Errors, metric: ml.inference.duration, statistic: ratio, window: 1s,\n"
        "     numerator: {error.type: '*'}, op: '>', threshold: 0.5}\n"
    )
    settings = iw.configure(service_name="alerts-thread", store=False, alerts=path)
    try:
        assert settings.alerts is not None and settings.alerts.policies[0].name == "Errors"
        assert iw.configure(service_name="alerts-thread", store=False, alerts=path) == settings
        threads = [t for t in threading.enumerate() if t.name == "inferwatch-alerts"]
        assert len(threads) == 1, "configuring the same policies again is a no-op"
        calls("fraud", failed=3)
        wait_for(
            lambda: any("alert Errors firing" in r.getMessage() for r in event_records),
            "the alert",
        )
    finally:
        iw.shutdown(timeout_ms=2000)
        structlog.reset_defaults()
    assert not threads[0].is_alive(), "shutdown stops the evaluation thread"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_worker_evaluates_its_own_traffic(tmp_path: Path) -> None:
    """A pre-fork server configures once; each worker process gets its own evaluation thread."""
    fired = tmp_path / "fired"

    def record(n: Notification) -> None:  # whole or not at all: the worker exits once it exists
        partial = tmp_path / "fired.partial"
        partial.write_text(f"{n.alert} {n.group[MODEL]}")
        partial.replace(fired)

    rules = AlertRules(
        policies=[error_policy(**{"for": "0s", "window": "1s", "channels": ["file"]})],
        channels={"file": record},
        evaluation_interval=0.1,
    )
    iw.configure(service_name="alerts-fork", store=False, alerts=rules)
    try:
        pid = os.fork()
        if pid == 0:  # the worker: its failures, its alert
            code = 1
            try:
                calls("fraud", failed=3)
                deadline = time.monotonic() + 20
                while not fired.exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
                code = 0 if fired.exists() else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert fired.read_text() == "Errors fraud"
    finally:
        iw.shutdown(timeout_ms=2000)
        structlog.reset_defaults()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("policies: [\n  {name: X", "not valid YAML at line"),
        ("- 3", "policies[0]: Input should be a valid dictionary"),
        ("policies:\n  - {name: Fast, metric: ml.inference.duration, statistic: p99, op: '>',"
         " threshold: 1, thresold: 2}", "policies[0] (Fast).thresold: Extra inputs"),
        ("policies:\n  - {name: G, metric: ml.drift.score, statistic: rate, op: '>',"
         " threshold: 1}", "statistic 'rate' does not apply to 'ml.drift.score' (a gauge)"),
        ("policies:\n  - {name: U, metric: my.metric, statistic: last, op: '>', threshold: 1}",
         "declare instrument"),
        ("policies:\n  - {name: W, metric: ml.input.nan_count, statistic: rate, op: '>',"
         " threshold: 1, window: soon}", "policies[0] (W).window: 'soon' is not a duration"),
        ("policies:\n  - {name: C, metric: ml.input.nan_count, statistic: rate, op: '>',"
         " threshold: 1, channels: [pager]}", "unknown channel(s) pager"),
        ("policies:\n  - {name: R, metric: ml.inference.duration, statistic: ratio, op: '>',"
         " threshold: 1}", "needs exactly one of numerator, denominator"),
        ("evaluation_interval: 5m\npolicies:\n  - {name: S, metric: ml.input.nan_count,"
         " statistic: rate, op: '>', threshold: 1, window: 1m}", "shorter than"),
        ("channels: {hook: {type: webhook, url: 'ftp://x'}}\npolicies: []",
         "channels.hook.webhook.url: 'ftp://x' is not an http(s) URL"),
        ("policies:\n  - {name: Q, metric: ml.input.nan_count, statistic: rate, op: '>',"
         " threshold: 1, group_by: [ml.request.id]}", "request ids never go on metrics"),
    ],
)  # fmt: skip
def test_policy_file_errors_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match="^" + str(path).replace(".", r"\.")) as raised:
        load_rules(path)
    assert message in str(raised.value)


def test_configure_rejects_bad_policies_up_front(tmp_path: Path) -> None:
    with pytest.raises(iw.ConfigurationError, match=r"invalid alert policies: .*No such file"):
        iw.configure(store=False, alerts=tmp_path / "missing.yaml")
    with pytest.raises(iw.ConfigurationError, match="unique: Errors"):
        iw.configure(store=False, alerts=[error_policy(), error_policy()])
    with pytest.raises(PolicyError, match="got int"):
        rules_from(3)  # type: ignore[arg-type]


def test_policy_model_validation_in_code() -> None:
    policy = error_policy()
    assert policy.for_ == 60 and policy.window == 120
    p999 = AlertPolicy(name="Tail", metric="ml.inference.duration", statistic="p999", op=">",
                       threshold=2.0)  # type: ignore[arg-type]  # fmt: skip
    assert p999.quantile == 0.999 and p999.statistic_text() == "p99.9"
    version = error_policy(where={"ml.model.version": 3.1})  # as YAML reads `3.1`
    assert version.where == {"ml.model.version": "3.1"}
    with pytest.raises(ValueError, match="combine applies to gauges"):
        error_policy(combine="max")
    with pytest.raises(ValueError, match="finite"):
        error_policy(threshold=float("inf"))
