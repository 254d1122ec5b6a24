"""The label joiner: delayed labels judged where every process's telemetry meets.

>>> joiner = LabelJoiner(".inferwatch", endpoint="http://collector:4318", metric_tags=["region"])
>>> joiner.run()          # one pass: count every label not counted before, export, commit

A serving process judges only the labels of the predictions it made itself
(`delayed_labels.index`); with several workers (gunicorn, uvicorn ``--workers``, replicas) most
labels reach a process that never saw their prediction, and go out as ``ml.feedback`` records
with ``ml.label.status = unknown``. The joiner reads those records and the inference spans from
the store (or from the ClickHouse exporter's ``otel_logs`` and ``otel_traces``), joins them by
request id and model (`sql.label_join_queries`), and exports the label counters
(`scores.counter_points`, ``ml.label.count``, ``ml.label.unjoined``) under the same names and
attributes as the serving process, attributed to the serving window of each prediction.

Counted once: a label a serving process judged and counted in metrics it exports (its record
says ``ml.label.counted``) is skipped — one judged where the metrics stay in the process (the
store alone) is counted here — and each pass commits the keys it decided (request id, model)
and its cumulative totals to its ledger (`delayed_labels.ledger`: the store's ``labels/``
directory, or two tables beside the exporter's), after the export succeeded and not before. The
totals are exported as cumulative sums under one ``service.instance.id`` kept in that state, so
a second ``--once`` exports the same totals again (no new count), a restart continues them, and
a backend can sum them with the serving processes' counters.

Decided per (request id, model): judged (a single prediction with a class or a value); or not
judged, counted in ``ml.label.unjoined{ml.label.join="joiner"}`` by status: ``unknown`` (no
prediction within ``grace`` of the label), ``expired`` (its serving window is no longer kept),
``duplicate`` (further labels for a prediction decided in the same pass), ``invalid`` (not a
label for it: not a number for a regression, not one per row of a batch), ``batch`` (a batch of
more rows than its span holds, `semconv.MAX_ROWS_ON_SPAN`). A batch is judged row by row against
its span's ``ml.prediction.classes`` or ``ml.prediction.values``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferwatch import semconv
from inferwatch.attributes import AttributeValue
from inferwatch.delayed_labels.index import window_start
from inferwatch.delayed_labels.ledger import (
    JoinError,
    Key,
    Ledger,
    State,
    StoreLedger,
    TableLedger,
    Tally,
    tally_key,
)
from inferwatch.delayed_labels.scores import WindowScores, counter_points
from inferwatch.durations import positive_seconds
from inferwatch.export.state import OTHER_CLASS, ClassNames
from inferwatch.query import sql
from inferwatch.query.engines import ChdbEngine, ClickHouseEngine
from inferwatch.version import __version__
from inferwatch.windows.rollups import window_label

_log = logging.getLogger("inferwatch.labels")


@dataclass
class PassResult:
    """What one pass decided and exported (nothing is committed when ``exported`` is False)."""

    judged: int = 0
    """Predictions judged by a label in this pass (each row of a batch)."""
    unjoined: dict[str, int] = field(default_factory=dict)
    pending: int = 0
    """Labels without a prediction yet, younger than the grace: looked at again next pass."""
    exported: bool = False
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        unjoined = ", ".join(f"{s} {n}" for s, n in sorted(self.unjoined.items())) or "none"
        return (
            f"judged {self.judged} predictions; not judged: {unjoined}; pending {self.pending}; "
            f"{'exported and committed' if self.exported else 'nothing committed'} "
            f"({self.seconds:.2f} s)"
        )


class LabelJoiner:
    """Joins a store's delayed labels to its inference spans and exports the label counters.

    ``source``: a store directory (or any directory of OTLP JSON files the store layout reads).
    ``endpoint``/``protocol``/``headers``: where the counters go (OTLP; default the
    ``OTEL_EXPORTER_OTLP_*`` variables, else ``http://localhost:4318``); ``exporter``: any OTel
    metric exporter instead. ``metric_tags``: the serving processes' ``configure(metric_tags=)``.
    ``window``/``windows``: their ``configure_feedback(window=, windows=)``; ``lookback``: how far
    back labels are read; ``grace``: how long a label waits for its prediction to be stored;
    ``max_classes``: per model, the classes named on ``ml.label.class`` (``configure``'s), the
    others counted as ``__other__``.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | Any,
        *,
        endpoint: str | None = None,
        protocol: str | None = None,
        headers: dict[str, str] | None = None,
        exporter: Any = None,
        metric_tags: Sequence[str] = (),
        window: str | float = "1h",
        windows: int = 24,
        lookback: str | float = "1d",
        grace: str | float = "10m",
        service_name: str = "inferwatch-labels",
        max_classes: int = 100,
    ) -> None:
        self.engine, self.ledger = _open(source)
        self.metric_tags = tuple(str(t) for t in metric_tags)
        if any(not t for t in self.metric_tags):
            raise ValueError("metric tag names must be non-empty")
        self.window_s = positive_seconds(window, "window")
        self.window_label = window_label(self.window_s)
        if isinstance(windows, bool) or not isinstance(windows, int) or windows < 1:
            raise ValueError(f"windows must be an int of at least 1, got {windows!r}")
        self.windows = windows
        self.lookback_s = positive_seconds(lookback, "lookback")
        self.grace_s = positive_seconds(grace, "grace")
        if self.grace_s >= self.lookback_s:
            raise ValueError("grace must be shorter than the lookback")
        self.service_name = service_name
        if isinstance(max_classes, bool) or not isinstance(max_classes, int) or max_classes < 1:
            raise ValueError(f"max_classes must be an int of at least 1, got {max_classes!r}")
        self.max_classes = max_classes
        self._classes: ClassNames  # per pass: the committed totals' class names, then new ones
        self._exporter = exporter if exporter is not None else _otlp(endpoint, protocol, headers)
        self._first = True
        self._skipped = 0

    # -- one pass ------------------------------------------------------------------------------

    def run(self, now: float | None = None) -> PassResult:
        """One pass: decide the labels not counted before, export the totals, then commit.

        Raises `JoinError` when another joiner is in a pass on the same store (the passes of
        two joiners never overlap, so neither counts what the other is counting).
        """
        started = time.perf_counter()
        with self.ledger.exclusive():
            result = self._run(time.time() if now is None else now)
        result.seconds = time.perf_counter() - started
        return result

    def _run(self, now: float) -> PassResult:
        state = self.ledger.load()
        result = PassResult()
        totals = {key: tally.copy() for key, tally in state.totals.items()}
        self._classes = _class_names(self.max_classes, totals.values())
        unjoined = dict(state.unjoined)
        decided: list[Key] = []
        spans, logs = self.engine.relation(), self.engine.logs_relation()
        if logs is None:
            raise JoinError(f"{self.engine!r} has no logs table: no delayed label to read")
        for row in self._rows(spans, logs, state, now, result):
            self._decide(row, now, totals, unjoined, decided, result)
        self._prune(totals, now)
        if self._first and not state.passes:
            result.notes += self._older_than_lookback(logs, now)
        self._first = False
        result.exported = self._export(state, totals, unjoined, now)
        if result.exported:
            state.passes += 1
            state.totals, state.unjoined = totals, unjoined
            self.ledger.commit(state, decided, int((now - self.lookback_s) * 1e9))
        return result

    def _rows(
        self, spans: str, logs: str, state: State, now: float, result: PassResult
    ) -> list[tuple[Any, ...]]:
        """(request id, model, found, (label, labelled ns), labels, prediction or None)."""
        params: dict[str, Any] = {
            "since_ns": int((now - self.lookback_s) * 1e9),
            # A label read judges a prediction served before it: kept windows, or expired.
            "spans_since_ns": int((now - self.lookback_s - self.windows * self.window_s) * 1e9),
        }
        params.update({f"tk{i}": tag for i, tag in enumerate(self.metric_tags)})
        stats = [getattr(self.engine, name, None) for name in ("stats", "logs_stats")]
        skipped = sum(s.skipped_lines for s in stats if s is not None)
        if skipped > self._skipped:
            result.notes.append(f"{skipped - self._skipped} torn or malformed store lines skipped")
            self._skipped = skipped
        counted = self.ledger.counted(state)
        judged, unmatched = sql.label_join_queries(spans, logs, counted, len(self.metric_tags))
        rows = [
            (r, m, True, first, n, served)
            for r, m, first, n, served in self.engine.query(judged, params)
        ]
        rows += [
            (r, m, False, first, n, None) for r, m, first, n in self.engine.query(unmatched, params)
        ]
        rows.sort(key=lambda row: int(row[3][1]))  # by label time: classes named in that order
        return rows

    def _decide(
        self,
        row: tuple[Any, ...],
        now: float,
        totals: dict[str, Tally],
        unjoined: dict[str, int],
        decided: list[tuple[str, str, int]],
        result: PassResult,
    ) -> None:
        request_id, model, found, (label, labelled_ns), labels, served = row
        labelled_at = int(labelled_ns) / 1e9
        if not found:
            if now - labelled_at < self.grace_s:
                result.pending += 1
                return
            status = semconv.LABEL_UNKNOWN
        else:
            status = self._judge(model, label, served, totals, now)
        decided.append((request_id, model, int(labelled_ns)))
        if status != semconv.LABEL_JOINED:
            _count(unjoined, result.unjoined, status, 1)
        else:
            result.judged += max(int(served[8]), 1)  # the rows of a batch
        if labels > 1:
            _count(unjoined, result.unjoined, semconv.LABEL_DUPLICATE, int(labels) - 1)

    def _judge(
        self,
        model: str,
        label: str,
        served: tuple[Any, ...],
        totals: dict[str, Tally],
        now: float,
    ) -> str:
        has_version, version, has_tags, tags, has_class, predicted, has_mean, mean, count, ns = (
            served[:10]
        )
        service, namespace, classes, values = served[10:14]
        n = max(int(count), 1)
        labels = _labels(label, n)
        if labels is None:
            return semconv.LABEL_INVALID  # not a label, or not one per row
        if n == 1:
            guesses = [predicted] if has_class else [mean] if has_mean else None
        else:
            guesses = _rows(classes or values, n)
            if guesses is None:  # more rows than the span holds (or a span from before rows)
                return semconv.LABEL_BATCH
        if guesses is None:
            return semconv.LABEL_INVALID  # the span has no prediction to judge
        window = math.floor(int(ns) / 1e9 / self.window_s)
        if window <= self._oldest_window(now):
            return semconv.LABEL_EXPIRED
        attributes: dict[str, AttributeValue] = {semconv.ML_MODEL_NAME: model}
        if has_version:
            attributes[semconv.ML_MODEL_VERSION] = version
        for name, present, value in zip(self.metric_tags, has_tags, tags, strict=True):
            if present:
                attributes[name] = value
        attributes[semconv.ML_WINDOW] = self.window_label
        attributes[semconv.ML_WINDOW_START] = window_start(window, self.window_s)
        classified = bool(has_class) if n == 1 else bool(classes)
        errors: list[float] = []
        if not classified:
            try:
                errors = [float(g) - float(t) for g, t in zip(guesses, labels, strict=True)]
            except (TypeError, ValueError):
                return semconv.LABEL_INVALID  # a label that is not a number
        resource = (service, namespace)
        key = tally_key(resource, attributes)
        tally = totals.get(key)
        if tally is None:
            tally = totals[key] = Tally(resource, WindowScores(attributes))
        scores = tally.scores
        scores.labelled += n
        if classified:  # compared as given, counted under capped class names; "" is no class
            cap = self._classes.name
            scored = [(str(t), str(g)) for t, g in zip(labels, guesses, strict=True) if g != ""]
            pairs = [(cap(model, t), cap(model, g)) for t, g in scored]
            scores.add_classes(pairs, sum(t == g for t, g in scored))
        else:
            for error in errors:
                if math.isfinite(error):
                    scores.errors += 1
                    scores.abs_error += abs(error)
                    scores.squared_error += error * error
        return semconv.LABEL_JOINED

    def _oldest_window(self, now: float) -> int:
        """Serving windows at or before this one are no longer kept (as in the index)."""
        return math.floor(now / self.window_s) - self.windows

    def _prune(self, totals: dict[str, Tally], now: float) -> None:
        oldest = window_start(self._oldest_window(now), self.window_s)  # (the texts sort by time)
        starts = {k: str(t.scores.attributes[semconv.ML_WINDOW_START]) for k, t in totals.items()}
        for key in [k for k, start in starts.items() if start <= oldest]:
            del totals[key]

    def _older_than_lookback(self, logs: str, now: float) -> list[str]:
        """The first pass reads back ``lookback`` only: say how many labels lie before it."""
        text = (
            f"SELECT count() FROM {logs} "
            f"WHERE EventName = '{semconv.EVENT_FEEDBACK}' "
            "AND Timestamp < fromUnixTimestamp64Nano({since_ns:Int64})"
        )
        ((older,),) = self.engine.query(text, {"since_ns": int((now - self.lookback_s) * 1e9)})
        if not older:
            return []
        return [f"{older} labels older than the lookback were not read (a longer --lookback does)"]

    # -- export --------------------------------------------------------------------------------

    def _export(
        self, state: State, totals: dict[str, Tally], unjoined: dict[str, int], now: float
    ) -> bool:
        from opentelemetry.sdk.metrics.export import MetricExportResult

        data = _metrics_data(state, totals, unjoined, now, self.service_name)
        try:
            exported: bool = self._exporter.export(data) == MetricExportResult.SUCCESS
        except Exception as exc:  # the exporter's own failure: reported, retried next pass
            _log.warning("inferwatch: label counters not exported: %s", exc)
            return False
        if not exported:
            _log.warning("inferwatch: label counters not exported: nothing committed")
        return exported

    def shutdown(self) -> None:
        self._exporter.shutdown()


def _class_names(limit: int, totals: Iterable[Tally]) -> ClassNames:
    """The capped class names of the totals' models, as committed: those already counted stay."""
    names = ClassNames(limit)
    for tally in totals:
        model = str(tally.scores.attributes[semconv.ML_MODEL_NAME])
        known = names.known.setdefault(model, set())
        for pair in tally.scores.confusion:
            known.update(c for c in pair if c != OTHER_CLASS)
    return names


def _labels(text: str, n: int) -> list[Any] | None:
    """A record's label(s) as stored (a value, or a JSON array for a batch): ``n`` of them."""
    if text.startswith("["):
        try:
            labels = json.loads(text)
        except ValueError:
            labels = [text]
        if not isinstance(labels, list):
            labels = [text]
    else:
        labels = [text]
    if len(labels) != n or "" in labels:
        return None
    return labels


def _rows(text: str, n: int) -> list[Any] | None:
    """A batch span's ``ml.prediction.classes`` / ``.values`` (a JSON array), if it has ``n``."""
    try:
        rows = json.loads(text) if text else None
    except ValueError:
        return None
    return rows if isinstance(rows, list) and len(rows) == n else None


def _open(source: str | os.PathLike[str] | Any) -> tuple[Any, Ledger]:
    """The engine reading ``source`` and the ledger kept with it."""
    if not isinstance(source, str | os.PathLike):  # a table engine (tests: the exporter's DDL)
        return source, TableLedger(source, source.database)
    text = os.fspath(source)
    if text.startswith(("clickhouse://", "clickhouses://")):
        engine = ClickHouseEngine(text)
        return engine, TableLedger(engine, engine.database)
    store = ChdbEngine(Path(text))  # FileNotFoundError: no store there
    return store, StoreLedger(store.directory)


def _count(total: dict[str, int], this_pass: dict[str, int], status: str, n: int) -> None:
    total[status] = total.get(status, 0) + n
    this_pass[status] = this_pass.get(status, 0) + n


def _otlp(endpoint: str | None, protocol: str | None, headers: dict[str, str] | None) -> Any:
    from inferwatch.export.otlp import otlp_exporter
    from inferwatch.export.settings import Settings

    env = os.environ
    settings = Settings(
        endpoint=endpoint or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4318",
        protocol=protocol or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf",  # type: ignore[arg-type]
        headers=headers or {},
    )
    return otlp_exporter(settings, "metrics")


def _metrics_data(
    state: State,
    totals: dict[str, Tally],
    unjoined: dict[str, int],
    now: float,
    service_name: str,
) -> Any:
    """Cumulative sums of the totals, as of ``now``, since the joiner's first pass."""
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Metric,
        MetricsData,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
        Sum,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    # Per serving service (the backend's job), metric name: its points.
    points: dict[tuple[str, str], dict[str, list[NumberDataPoint]]] = {}
    start, at = state.started_ns, int(now * 1e9)

    def add(
        resource: tuple[str, str], name: str, value: float, attributes: dict[str, AttributeValue]
    ) -> None:
        point = NumberDataPoint(attributes, start, at, value, exemplars=[])
        points.setdefault(resource, {}).setdefault(name, []).append(point)

    for tally in totals.values():
        scores = tally.scores
        add(tally.resource, semconv.METRIC_LABEL_COUNT, scores.labelled, scores.attributes)
        for name, value, attributes in counter_points(scores):
            add(tally.resource, name, value, attributes)
    for status, n in sorted(unjoined.items()):
        attributes = {semconv.ML_LABEL_STATUS: status, semconv.ML_LABEL_JOIN: "joiner"}
        add((service_name, ""), semconv.METRIC_LABEL_UNJOINED, n, attributes)
    scope = InstrumentationScope(semconv.INSTRUMENTATION_NAME, __version__)
    resource_metrics = []
    for (service, namespace), by_name in points.items():
        metrics = [
            Metric(
                name,
                semconv.INSTRUMENTS[name].description,
                semconv.INSTRUMENTS[name].unit,
                Sum(data_points, AggregationTemporality.CUMULATIVE, is_monotonic=True),
            )
            for name, data_points in by_name.items()
        ]
        identity: dict[str, AttributeValue] = {
            semconv.SERVICE_NAME: service or service_name,
            semconv.SERVICE_INSTANCE_ID: state.instance_id,
        }
        if namespace:
            identity[semconv.SERVICE_NAMESPACE] = namespace
        resource = Resource.create(identity)
        resource_metrics.append(ResourceMetrics(resource, [ScopeMetrics(scope, metrics, "")], ""))
    return MetricsData(resource_metrics)


def join_labels(source: str | os.PathLike[str] | None = None, **options: Any) -> PassResult:
    """One pass of `LabelJoiner` over ``source`` (default ``$INFERWATCH_STORE``, else the local
    store); raises `JoinError` when the export failed (nothing was committed).

    >>> iw.join_labels(".inferwatch", endpoint="http://collector:4318", metric_tags=["region"])
    """
    from inferwatch.query import DEFAULT_STORE

    if source is None:
        source = os.environ.get("INFERWATCH_STORE", DEFAULT_STORE)
    joiner = LabelJoiner(source, **options)
    try:
        result = joiner.run()
    finally:
        joiner.shutdown()
    if not result.exported:
        raise JoinError(f"label counters not exported, nothing committed: {result.summary()}")
    return result
