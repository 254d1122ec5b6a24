"""A monitored service with planted faults, watched in the process and by a real Prometheus.

The service is the README's path: ``iw.configure(metric_readers=[PrometheusMetricReader()])``
with prometheus_client's HTTP server, scraped every second by Debian's ``prometheus``, which
loads ``collector_config/alerts.yaml`` rendered with short windows (10 s; a ``for`` of 3 s where
the policy has one; evaluated every second) and sends what fires to ``prometheus-alertmanager``,
configured from ``collector_config/alertmanager/alertmanager.yml`` with its webhooks pointing at
a receiver on 127.0.0.1. The same short policies run in the process in an `AlertReader`, which
the scenario collects every second.

Traffic runs healthy for a warm-up (`WARM_UP_S`) and ``healthy_s``, then with every fault at
once for ``faulty_s``:

* errors in one region (``fraud`` raises for region ``eu``)         InferenceErrorRateHigh
* slow calls (``slow`` takes 1.2 s)                                 InferenceLatencyP99High
* NaN inputs (three per ``scorer`` call)                            InputMissingValuesHigh
* schema violations (``age`` below its minimum)                     InputSchemaViolations
* a drifted feature (``amount`` + 4)                                FeatureDrift
* wrong delayed labels (``fraud``'s labels contradict it)           ModelAccuracyLow
* empty labels (invalid: counted as internal errors)                InferwatchInternalErrors
* a collapsing recommendation coverage (``recs`` shows 5 items)     RecommendationCoverageLow,
                                                                    ExposureConcentrationHigh
* a collector that hangs (exports time out, the queue overflows)    TelemetryExportFailures,
                                                                    TelemetrySpansDropped
"""

from __future__ import annotations

import itertools
import tempfile
import threading
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import inferwatch as iw
from inferwatch.alerts import AlertReader, AlertRules, load_rules, render_prometheus_rules
from inferwatch.alerts.promql import expression
from inferwatch.alerts.targets import label_name
from tests._otlp import LOCALHOST, FaultyReceiver, free_port
from tests._prometheus import Alertmanager, Prometheus, WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "collector_config" / "alerts.yaml"
ALERTMANAGER = ROOT / "collector_config" / "alertmanager" / "alertmanager.yml"
JOB = "fraud-api"
WINDOW_S = 10.0
FOR_S = 3.0
STEP_S = 1.0
WARM_UP_S = WINDOW_S + 5 * STEP_S
"""Traffic before observing: the first, partial drift and ranking windows (2 s) are out of
every window, and anything they made fire has resolved, when observing starts."""
SLOW_S = 1.2
CATALOGUE = [f"item-{i}" for i in range(200)]


def short_rules(rules: AlertRules) -> AlertRules:
    """The policies with 10 s windows, a ``for`` of 3 s where they wait, evaluated every second."""
    policies = tuple(
        p.model_copy(update={"window": WINDOW_S, "for_": FOR_S if p.for_ else 0.0})
        for p in rules.policies
    )
    return rules.model_copy(update={"policies": policies, "evaluation_interval": STEP_S})


def alertmanager_config(webhooks: str) -> dict[str, Any]:
    """The shipped example, its webhooks sent to ``webhooks`` and its waits made short.

    Without its inhibition: every fault is planted at once here, and a model's critical alert
    would hold back its warnings, which the test expects to arrive.
    """
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER.read_text())
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    config.pop("inhibit_rules", None)
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhooks}/{receiver['name']}"
    return config


@dataclass
class Step:
    """One in-process evaluation: its wall time, each policy's values and the firing groups."""

    at: float
    values: dict[str, list[tuple[dict[str, str], float | None]]]
    firing: dict[str, list[dict[str, str]]]


@dataclass
class Run:
    """What one run observed. Times are epoch seconds; ``started`` is the end of the warm-up."""

    rules: AlertRules
    prometheus: Prometheus
    webhooks: WebhookReceiver
    started: float = 0.0
    fault_at: float = 0.0
    ended: float = 0.0
    steps: list[Step] = field(default_factory=list)
    feedback: dict[str, int] = field(default_factory=dict)

    def firings_in_process(self, alert: str) -> list[float]:
        """When a group of ``alert`` started firing in the process (one time per start)."""
        starts, before = [], []
        for step in self.steps:
            now = step.firing.get(alert, [])
            starts += [step.at for group in now if group not in before]
            before = now
        return starts

    def firings_in_prometheus(self, alert: str) -> list[float]:
        """When a group of ``alert`` started firing in Prometheus: the rule evaluation's time."""
        expr = f'timestamp(ALERTS{{alertname="{alert}", alertstate="firing"}})'
        starts = []
        for series in self.prometheus.query_range(expr, self.started, self.ended, 0.5):
            previous = None
            for _, value in series["values"]:
                at = float(value)
                if previous is None or at - previous > 2 * STEP_S:  # not evaluated firing between
                    starts.append(at)
                previous = at
        return sorted(starts)

    def webhooks_of(self, alert: str) -> list[tuple[float, str]]:
        """(arrival time, path) of each Alertmanager notification with ``alert`` firing."""
        return [
            (arrived, path)
            for arrived, path, body in self.webhooks.posts()
            for item in body.get("alerts", [])
            if item["labels"].get("alertname") == alert and item["status"] == "firing"
        ]

    def paired_steps(self, alert: str) -> tuple[int, int, list[tuple[float, float | None]]]:
        """(agreeing, all) (step, group) pairs of whether the condition holds in the process
        and in Prometheus at the same time; and the (in-process, Prometheus) values of the
        groups that fire, at the steps whose window holds only faulty traffic."""
        policy = next(p for p in self.rules.policies if p.name == alert)
        holds = _HOLDS[policy.op]
        expr = expression(policy)
        labels = [label_name(k) for k in policy.group_by]
        agree = total = 0
        values: list[tuple[float, float | None]] = []
        for step in self.steps:
            mine = {
                tuple(group.get(k, "") for k in policy.group_by): value
                for group, value in step.values.get(alert, [])
            }
            theirs = {
                tuple(s["metric"].get(k, "") for k in labels): float(s["value"][1])
                for s in self.prometheus.query(expr, at=step.at)
            }
            for group in mine.keys() | theirs.keys():
                a, b = mine.get(group), theirs.get(group)
                here = a is not None and holds(a, policy.threshold)
                there = b is not None and holds(b, policy.threshold)
                total += 1
                agree += here == there
                settled = step.at >= self.fault_at + WINDOW_S + 2 * STEP_S
                if settled and a is not None and (here or there):
                    values.append((a, b))
        return agree, total, values


def first_after(times: list[float], at: float) -> float | None:
    """The first of ``times`` at or after ``at``."""
    return next((t for t in sorted(times) if t >= at), None)


_HOLDS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


class _Service:
    """The monitored models and the traffic that calls them, healthy until ``faulty`` is set."""

    def __init__(self) -> None:
        rng = np.random.default_rng(15)
        self.rng = rng
        self.faulty = threading.Event()
        self.stopping = threading.Event()
        self.labels: deque[tuple[float, str, str, Any]] = deque()
        self.feedback: dict[str, int] = {}
        baseline = iw.Profile.build(rng.normal(size=(5000, 2)), columns=["amount", "age"])
        schema = iw.Schema(features=[iw.Feature(name="amount"), iw.Feature(name="age", min=-6)])
        iw.ranking.configure("recs", catalogue_size=len(CATALOGUE), window="2s")

        @iw.monitor(model="fraud", version="3", features=["amount", "age"], baseline=baseline,
                    window="2s", schema=schema)  # fmt: skip
        def fraud(x: np.ndarray, region: str) -> str:
            if self.faulty.is_set() and region == "eu":
                raise TimeoutError("feature store timed out in eu")
            return "fraud" if x[0, 0] > 1.5 else "ok"

        @iw.monitor(model="scorer", version="1")
        def scorer(x: np.ndarray) -> float:
            return float(np.nansum(x))

        @iw.monitor(model="recs", version="7", prediction_kind="ranking")
        def recommend(user: str) -> list[str]:
            if self.faulty.is_set():
                return CATALOGUE[:5]
            return list(rng.choice(CATALOGUE, size=10, replace=False))

        @iw.monitor(model="slow", version="1")
        def slow(x: float) -> float:
            time.sleep(SLOW_S if self.faulty.is_set() else 0.05)
            return x

        self.fraud, self.scorer, self.recommend, self.slow = fraud, scorer, recommend, slow
        self._threads = [
            threading.Thread(target=self._traffic, name="traffic", daemon=True),
            threading.Thread(target=self._slow_traffic, name="slow-traffic", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(10)
        self.fraud.drift.stop()
        iw.ranking.reset()  # no declaration or window of "recs" left for the tests after
        iw.configure_feedback()

    def _traffic(self) -> None:
        rng = self.rng
        for i in itertools.count():
            if self.stopping.is_set():
                return
            faulty = self.faulty.is_set()
            region = ("eu", "us")[i % 2]
            x = rng.normal(size=(1, 2))
            if faulty:
                x[0, 0] += 4.0  # drift
                x[0, 1] = -8.0 if i % 3 == 0 else x[0, 1]  # below the schema's minimum
            rid = f"r{i}"
            with iw.context(request_id=rid, region=region):
                try:
                    predicted = self.fraud(x, region)
                    truth = predicted if not faulty else {"fraud": "ok", "ok": "fraud"}[predicted]
                    self.labels.append((time.monotonic() + 1.0, rid, "fraud", truth))
                except TimeoutError:
                    pass
            features = rng.normal(size=(1, 4))
            if faulty:
                features[0, :3] = np.nan
            with iw.context(request_id=f"s{i}"):
                value = self.scorer(features)
                self.labels.append((time.monotonic() + 1.0, f"s{i}", "scorer", value + 0.5))
            with iw.context(request_id=f"k{i}"):
                self.recommend(f"user-{i % 50}")
            if faulty and i % 10 == 0:  # a label pipeline sending empty labels
                self.labels.append((time.monotonic(), f"s{i}", "scorer", None))
            self._send_due_labels()
            time.sleep(0.03)

    def _send_due_labels(self) -> None:
        now = time.monotonic()
        while self.labels and self.labels[0][0] <= now:
            _, rid, model, label = self.labels.popleft()
            outcome = iw.feedback(rid, label, model=model)
            self.feedback[outcome] = self.feedback.get(outcome, 0) + 1

    def _slow_traffic(self) -> None:
        while not self.stopping.is_set():
            self.slow(1.0)


def _observe(
    observed: Run,
    service: _Service,
    collector: FaultyReceiver,
    reader: AlertReader,
    healthy_s: float,
    faulty_s: float,
) -> None:
    """Collect in the process every second; plant the faults after the warm-up and healthy_s."""
    begun = time.monotonic()
    observe_at = begun + WARM_UP_S
    fault_at = observe_at + healthy_s
    next_step = begun + STEP_S
    while next_step <= fault_at + faulty_s:
        time.sleep(max(0.0, next_step - time.monotonic()))
        if not service.faulty.is_set() and time.monotonic() >= fault_at:
            collector.hold()  # a collector that accepts and never answers
            service.faulty.set()
            observed.fault_at = time.time()
        reader.collect()
        if time.monotonic() >= observe_at:
            observed.started = observed.started or time.time()
            observed.steps.append(Step(time.time(), reader.values(), reader.firing()))
        next_step += STEP_S
    time.sleep(2 * STEP_S)  # Prometheus' last scrape and evaluation, Alertmanager's wait
    observed.ended = time.time()


def run(directory: Path | None = None, healthy_s: float = 6.0, faulty_s: float = 20.0) -> Run:
    """Start everything, run the traffic, stop everything; the `Run` with what was observed.

    Prometheus keeps running until `Run.prometheus.stop()` so that the caller can query it;
    everything else is stopped here.
    """
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    directory = directory or Path(tempfile.mkdtemp(prefix="inferwatch-alerts-e2e-"))
    rules = short_rules(load_rules(POLICIES))
    rule_file = directory / "rules.yml"
    rule_file.write_text(render_prometheus_rules(rules))
    prometheus = Prometheus(directory)  # left running for the caller's queries
    webhooks = WebhookReceiver()
    observed = Run(rules, prometheus, webhooks)
    reader = AlertReader(rules, autostart=False)
    try:
        with ExitStack() as stop:  # everything else stops here, last started first
            webhooks.start()
            stop.callback(webhooks.stop)
            alertmanager = Alertmanager(directory)
            stop.callback(alertmanager.stop)
            alertmanager.start(alertmanager_config(webhooks.url))
            collector = FaultyReceiver(signals=("traces", "logs")).start()
            stop.callback(collector.stop)
            registry = CollectorRegistry()
            port = free_port()
            server, _ = start_http_server(port, addr=LOCALHOST, registry=registry)
            stop.callback(server.server_close)
            stop.callback(server.shutdown)
            iw.configure(
                service_name=JOB,
                endpoint=collector.http_endpoint,
                metric_readers=[PrometheusMetricReader(registry=registry), reader],
                metric_tags=["region"],
                metric_export_interval_ms=600_000,
                max_queue_size=256,
                max_export_batch_size=64,
                schedule_delay_ms=200,
                export_timeout_ms=2000,
            )
            stop.callback(iw.shutdown, timeout_ms=2000)
            stop.callback(collector.release)  # before the shutdown: its last exports go through
            iw.configure_feedback()  # a fresh index: nothing an earlier test left remembered
            prometheus.start(JOB, [f"{LOCALHOST}:{port}"], [rule_file], "1s", alertmanager.address)
            prometheus.wait_for(f'up{{job="{JOB}"}} == 1')  # the clocks start at its first scrape
            service = _Service()
            stop.callback(lambda: observed.feedback.update(service.feedback))
            stop.callback(service.stop)
            service.start()
            _observe(observed, service, collector, reader, healthy_s, faulty_s)
    except BaseException:
        prometheus.stop()
        raise
    return observed
