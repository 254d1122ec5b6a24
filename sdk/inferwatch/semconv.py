"""Every attribute, metric and span name inferwatch emits, spelled once.

OpenTelemetry has no semantic conventions for classic ML inference yet (semantic-conventions
issue #3420), so these are ours. `docs/semantic-conventions.md` documents each one. Each metric's
instrument, unit, description, attributes and buckets are in one table, `INSTRUMENTS`, which the
instruments are created from (`inferwatch.export.instruments`) and the alert catalogue reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

# -- Span names ---------------------------------------------------------------------------------
SPAN_INFERENCE: Final = "inference {model}"
"""Span name template for one inference call; `{model}` is the model name."""
SPAN_STAGE: Final = "stage {stage}"
"""Span name template for a stage inside an inference (`rec.stage("postprocess")`)."""

# -- Span attributes -----------------------------------------------------------------------------
ML_MODEL_NAME: Final = "ml.model.name"
ML_MODEL_VERSION: Final = "ml.model.version"
ML_REQUEST_ID: Final = "ml.request.id"
ML_STAGE_NAME: Final = "ml.stage.name"

ML_INPUT_BATCH_SIZE: Final = "ml.input.batch_size"
ML_INPUT_NAN_COUNT: Final = "ml.input.nan_count"
ML_INPUT_NAN_ROWS: Final = "ml.input.nan_rows"
ML_INPUT_LENGTH: Final = "ml.input.length"
"""Length of the input (one item), or the mean length over a batch."""
ML_INPUT_LENGTH_MAX: Final = "ml.input.length.max"
ML_INPUT_TYPE: Final = "ml.input.type"
ML_INPUT_UNSUPPORTED: Final = "ml.input.unsupported"
ML_INPUT_NAN_FULL_ROWS: Final = "ml.input.nan_full_rows"
"""Rows whose every value is NaN or missing (set only when there are some)."""
ML_INPUT_VIOLATIONS: Final = "ml.input.violations"
"""Schema violations in the input (span attribute: the total; metric: by feature and rule)."""
ML_INPUT_LONG: Final = "ml.input.long"
"""True when the longest input exceeds the declared or learned long-input threshold."""

ML_PREDICTION_COUNT: Final = "ml.prediction.count"
ML_PREDICTION_MEAN: Final = "ml.prediction.mean"
ML_PREDICTION_MIN: Final = "ml.prediction.min"
ML_PREDICTION_MAX: Final = "ml.prediction.max"
ML_PREDICTION_NAN_COUNT: Final = "ml.prediction.nan_count"
ML_PREDICTION_CLASS: Final = "ml.prediction.class"
"""The predicted class of a single prediction, or the most frequent class over a batch."""
ML_PREDICTION_CLASSES: Final = "ml.prediction.classes"
"""A batch of up to `MAX_ROWS_ON_SPAN` classifications: each row's class ("" for none)."""
ML_PREDICTION_VALUES: Final = "ml.prediction.values"
"""A batch of up to `MAX_ROWS_ON_SPAN` regression values, all finite: each row's value."""
MAX_ROWS_ON_SPAN: Final = 256
"""A batch's predictions go on its span, row by row, up to this many (a label joiner judges
each row against a batch of labels); beyond, only the summary does."""
TEXT_PREDICTION_CLASS: Final = "__text__"
"""`ml.prediction.class` of a string prediction too long to be a class label (generated text)."""
ML_PREDICTION_TYPE: Final = "ml.prediction.type"
ML_PREDICTION_UNSUPPORTED: Final = "ml.prediction.unsupported"
ML_PREDICTION_OUT_OF_RANGE: Final = "ml.prediction.out_of_range"
"""How many predicted values fell outside the declared `prediction_range`."""

ML_STREAM_ITEMS: Final = "ml.stream.items"
"""Items a generator (streaming) inference yielded."""
ML_STREAM_TIME_TO_FIRST_ITEM: Final = "ml.stream.time_to_first_item"
"""Seconds from the call to the first yielded item (time to first token for LLM streams)."""
ML_STREAM_COMPLETED: Final = "ml.stream.completed"
"""False when the consumer stopped the generator early (or it raised)."""

ERROR_TYPE: Final = "error.type"
"""OTel general convention: fully qualified exception class name."""

# -- Metric-only attributes ----------------------------------------------------------------------
ML_FEATURE: Final = "ml.feature"
ML_VALIDATION_RULE: Final = "ml.validation.rule"
"""missing, dtype, min, max, allowed, pattern or relation."""
ML_PREDICTION_SIGN: Final = "ml.prediction.sign"
"""On `ml.prediction.value` points of negative predictions only: "negative"."""

# -- Log events (the OTel log record's event name) -----------------------------------------------
OTEL_EVENT_NAME: Final = "otel.event.name"
"""The `logging` extra (and attribute of older SDKs' records) that names a record's event."""
EVENT_INPUT_LONG: Final = "ml.input.long"
EVENT_INPUT_ALL_NAN_ROWS: Final = "ml.input.all_nan_rows"
EVENT_PREDICTION_OUT_OF_RANGE: Final = "ml.prediction.out_of_range"

# -- Metrics -------------------------------------------------------------------------------------
METRIC_INFERENCE_DURATION: Final = "ml.inference.duration"
METRIC_STAGE_DURATION: Final = "ml.stage.duration"
METRIC_INPUT_NAN_COUNT: Final = "ml.input.nan_count"
METRIC_INPUT_LENGTH: Final = "ml.input.length"
METRIC_INPUT_VIOLATIONS: Final = "ml.input.violations"
METRIC_PREDICTION_VALUE: Final = "ml.prediction.value"
METRIC_PREDICTION_COUNT: Final = "ml.prediction.count"
METRIC_INTERNAL_ERRORS: Final = "inferwatch.internal.errors"
ATTR_INTERNAL_WHERE: Final = "inferwatch.where"

# Seconds; the OTel HTTP server duration boundaries stretched to cover batch scoring.
DURATION_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
)  # fmt: skip
LENGTH_BUCKETS: Final = (
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
)  # fmt: skip

# Predictions are often scores in [0, 1]; finer there, coarse out to large regression values.
# OTel histograms take non-negative values only: negative predictions are recorded as their
# magnitude with ML_PREDICTION_SIGN="negative".
PREDICTION_BUCKETS: Final = (
    0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95,
    1.0, 2.0, 5.0, 10.0, 100.0, 1000.0, 10000.0,
)  # fmt: skip

# -- Drift (live windows of `monitor(baseline=...)`) ----------------------------------------------
METRIC_DRIFT_SCORE: Final = "ml.drift.score"
"""Gauge: effect size of a feature (normalised Wasserstein for numeric, JS for categorical)."""
METRIC_DRIFT_P_VALUE: Final = "ml.drift.p_value"
"""Gauge: p-value of the feature's drift test (unadjusted; detection uses the BH-adjusted one)."""
METRIC_DRIFT_DETECTED: Final = "ml.drift.detected"
"""Gauge: 1 when the feature drifted in that window, else 0."""
ML_DRIFT_TEST: Final = "ml.drift.test"
"""Attribute: the test, "ks" (numeric), "chi2" (categorical), "mmd" (vectors, and the numeric
features together), "null_share" or "cardinality"."""
ML_WINDOW: Final = "ml.window"
"""Attribute: the tumbling window's label (e.g. "5m"), a roll-up's ("1h", "1d") or "cumulative"."""
ML_DRIFT_P_VALUE: Final = "ml.drift.p_value"
ML_DRIFT_SCORE: Final = "ml.drift.score"
EVENT_DRIFT_DETECTED: Final = "ml.drift.detected"
WINDOW_CUMULATIVE: Final = "cumulative"
DRIFT_PREDICTION: Final = "ml.prediction"
"""Reserved profile column (and `ml.feature` value) of the model's predictions."""
DRIFT_LABEL: Final = "ml.label"
"""Reserved profile column (and `ml.feature` value) of the ground-truth labels (label shift)."""
DRIFT_MULTIVARIATE: Final = "ml.multivariate"
"""Reserved `ml.feature` value of the numeric features tested together."""

# -- Delayed labels (`iw.feedback`) ---------------------------------------------------------------
# (section: feedback)
EVENT_FEEDBACK: Final = "ml.feedback"
"""Log event: a delayed label for a request, linked to the inference span when it is known."""
ML_LABEL_VALUE: Final = "ml.label.value"
"""The label: a class name (string), a value (double), or an array of them for a batch."""
ML_LABEL_STATUS: Final = "ml.label.status"
"""How a label met its prediction: one of the LABEL_* values below."""
LABEL_JOINED: Final = "joined"
LABEL_UNKNOWN: Final = "unknown"
LABEL_EXPIRED: Final = "expired"
LABEL_DUPLICATE: Final = "duplicate"
LABEL_INVALID: Final = "invalid"
ML_LABEL_COUNTED: Final = "ml.label.counted"
"""On a joined record: the serving process counted the label in metrics it exports, so the label
joiner (`delayed_labels.joiner`) skips it; without it (metrics kept in the process) it counts it."""
ML_LABEL_JOIN: Final = "ml.label.join"
"""Attribute of the label joiner's ``ml.label.unjoined`` points: "joiner" (a serving process's
carry none), so labels nobody could judge are told apart from labels one process could not."""
LABEL_BATCH: Final = "batch"
"""Status the label joiner gives a batch prediction's labels: its rows are not on the span."""
ML_LABEL_DELAY: Final = "ml.label.delay"
"""Seconds from the prediction to the label (log attribute, and the histogram's name)."""
ML_LABEL_COUNT: Final = "ml.label.count"
"""Predictions a label covers (log attribute of batches, and the per-window counter's name)."""
ML_LABEL_WRONG: Final = "ml.label.wrong"
"""Log attribute of classification batches: how many of the predictions were wrong."""
ML_LABEL_ABS_ERROR: Final = "ml.label.abs_error"
"""Log attribute of regression batches: mean absolute error of the predictions."""
ML_LABEL_CLASS: Final = "ml.label.class"
"""Metric attribute of per-class scores: the class."""
ML_PREDICTION_CORRECT: Final = "ml.prediction.correct"
"""Whether the prediction (every prediction of a batch) matched its label."""
ML_PREDICTION_ERROR: Final = "ml.prediction.error"
"""Regression, one prediction: predicted value minus label."""
ML_LABEL_OUTCOME: Final = "ml.label.outcome"
"""Metric attribute of the counters that sum across processes: how a label judged predictions.
`ml.label.judged`: "correct" or "wrong" (classification), "scored" (regression, a finite error);
`ml.label.class.outcomes`: "tp", "fp" or "fn" for its `ml.label.class`."""
OUTCOME_CORRECT: Final = "correct"
OUTCOME_WRONG: Final = "wrong"
OUTCOME_SCORED: Final = "scored"
ML_WINDOW_START: Final = "ml.window.start"
"""Metric attribute: start of the serving window (UTC, ISO 8601), e.g. 2025-01-01T13:00:00Z."""
METRIC_LABEL_ACCURACY: Final = "ml.label.accuracy"
METRIC_LABEL_PRECISION: Final = "ml.label.precision"
METRIC_LABEL_RECALL: Final = "ml.label.recall"
METRIC_LABEL_F1: Final = "ml.label.f1"
METRIC_LABEL_PRECISION_MACRO: Final = "ml.label.precision.macro"
METRIC_LABEL_RECALL_MACRO: Final = "ml.label.recall.macro"
METRIC_LABEL_F1_MACRO: Final = "ml.label.f1.macro"
METRIC_LABEL_MAE: Final = "ml.label.mae"
METRIC_LABEL_RMSE: Final = "ml.label.rmse"
METRIC_LABEL_DELAY: Final = "ml.label.delay"
METRIC_LABEL_COUNT: Final = "ml.label.count"
METRIC_LABEL_JUDGED: Final = "ml.label.judged"
"""Counter: predictions judged by a label, by `ml.label.outcome` (accuracy = correct / judged)."""
METRIC_LABEL_CLASS_OUTCOMES: Final = "ml.label.class.outcomes"
"""Counter: per class, true positives, false positives and false negatives (precision, recall)."""
METRIC_LABEL_ERROR_ABS: Final = "ml.label.error.abs"
"""Counter: sum of absolute errors of judged regression predictions (MAE = sum / scored)."""
METRIC_LABEL_ERROR_SQUARED: Final = "ml.label.error.squared"
"""Counter: sum of squared errors of judged regression predictions (RMSE = sqrt(sum / scored))."""
METRIC_LABEL_UNLABELLED: Final = "ml.label.unlabelled"
"""Gauge: share of a window's predictions without a label yet."""
METRIC_LABEL_UNJOINED: Final = "ml.label.unjoined"
"""Counter: labels not joined in-process, by `ml.label.status`."""
METRIC_LABEL_EVICTED: Final = "ml.label.evicted"
"""Counter: unlabelled predictions dropped from a full index before their time to live."""
# Seconds: a label can arrive within the request, or weeks later (chargebacks).
DELAY_BUCKETS: Final = (
    1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0, 3 * 86400.0,
    7 * 86400.0, 30 * 86400.0,
)  # fmt: skip

# -- Ranked outputs (`rec.record_ranking`) -------------------------------------------------------
# (section: ranking)
ML_RANKING_SIZE: Final = "ml.ranking.size"
"""Span attribute: items in the ranked list served."""
ML_RANKING_LONG_TAIL_ITEMS: Final = "ml.ranking.long_tail_items"
"""Span attribute: items of the list outside the popularity baseline's head."""
ML_RANKING_CLICKS: Final = "ml.ranking.clicks"
"""Span attribute: clicked items of the list, when clicks were given when serving."""
ML_RANKING_POSITION: Final = "ml.ranking.position"
"""Attribute of `ml.ranking.ctr`: the 1-based position in the list."""
ML_RANKING_COVERAGE: Final = "ml.ranking.coverage"
ML_RANKING_MIN_COVERAGE: Final = "ml.ranking.min_coverage"
METRIC_RANKING_LISTS: Final = "ml.ranking.lists"
"""Gauge: ranked lists recorded in the window."""
METRIC_RANKING_EXPOSURES: Final = "ml.ranking.exposures"
"""Gauge: items shown in the window (sum of list lengths)."""
METRIC_RANKING_DISTINCT_ITEMS: Final = "ml.ranking.distinct_items"
"""Gauge: aggregate diversity, distinct items shown in the window."""
METRIC_RANKING_COVERAGE: Final = "ml.ranking.coverage"
"""Gauge: distinct items shown / catalogue size (declared catalogues only)."""
METRIC_RANKING_GINI: Final = "ml.ranking.gini"
"""Gauge: Gini coefficient of exposure across the catalogue's items."""
METRIC_RANKING_LONG_TAIL_SHARE: Final = "ml.ranking.long_tail_share"
"""Gauge: share of exposures outside the popularity baseline's head."""
METRIC_RANKING_CTR: Final = "ml.ranking.ctr"
"""Gauge: click-through rate by `ml.ranking.position`, in windows with click feedback."""
EVENT_RANKING_LOW_COVERAGE: Final = "ml.ranking.low_coverage"
"""Log event: a window's coverage fell below the declared `min_coverage`."""

# -- The local store -----------------------------------------------------------------------------
# (section: store)
EVENT_SPANS_DROPPED: Final = "inferwatch.spans.dropped"
"""Log event written to the store by a process whose spans did not all reach it."""
EVENT_LOGS_DROPPED: Final = "inferwatch.logs.dropped"
"""The same for log records: the count is of log records."""
ATTR_DROPPED_COUNT: Final = "inferwatch.dropped.count"
"""How many spans the report covers (dropped between its first and last time)."""
ATTR_DROPPED_FIRST: Final = "inferwatch.dropped.first_time_unix_nano"
"""When the first of them was dropped; the record's timestamp is when the last one was."""
ATTR_DROPPED_REASON: Final = "inferwatch.dropped.reason"
"""Why: ``queue_full`` (the writer fell behind), ``write_failed`` (the disk refused them)."""

# -- Alerts --------------------------------------------------------------------------------------
# (section: alerts)
EVENT_ALERT_FIRING: Final = "inferwatch.alert.firing"
"""Log event of the `log` channel: an alert policy started firing (or re-notifies)."""
EVENT_ALERT_RESOLVED: Final = "inferwatch.alert.resolved"
"""Log event of the `log` channel: a firing alert's condition no longer holds."""
ATTR_ALERT_NAME: Final = "inferwatch.alert.name"
ATTR_ALERT_SEVERITY: Final = "inferwatch.alert.severity"
ATTR_ALERT_STATE: Final = "inferwatch.alert.state"
"""firing or resolved."""
ATTR_ALERT_VALUE: Final = "inferwatch.alert.value"
ATTR_ALERT_THRESHOLD: Final = "inferwatch.alert.threshold"
ATTR_ALERT_RUNBOOK_URL: Final = "inferwatch.alert.runbook_url"
ATTR_ALERT_CHANNEL: Final = "inferwatch.alert.channel"
ATTR_ALERT_OUTCOME: Final = "inferwatch.alert.outcome"
"""What became of a notification on a channel: one of the OUTCOME_* values."""
OUTCOME_SENT: Final = "sent"
OUTCOME_FAILED: Final = "failed"
OUTCOME_DROPPED: Final = "dropped"
OUTCOME_RATE_LIMITED: Final = "rate_limited"
ATTR_SUPPRESSED: Final = "inferwatch.suppressed"
"""Notifications (or events) held back by rate limiting since the last one that went out."""
ATTR_ALERT_GROUP_PREFIX: Final = "inferwatch.alert.group."
"""Prefix of a group attribute whose name is taken by the log record itself (`name`, ...)."""
METRIC_ALERT_NOTIFICATIONS: Final = "inferwatch.alert.notifications"
"""Counter: notifications by alert, channel and outcome."""
METRIC_ALERT_ACTIVE: Final = "inferwatch.alert.active"
"""Gauge: groups of an alert policy that are firing now."""

# -- Privacy -------------------------------------------------------------------------------------
# (section: privacy)
REDACTED: Final = "[REDACTED:{kind}]"
"""Value format: what a scrubbed tag or log attribute (or part of a string) is exported as."""
EXCEPTION_TYPE: Final = "exception.type"
"""OTel attribute on exception events and log records: the exception's qualified class name."""
EXCEPTION_MESSAGE: Final = "exception.message"
"""OTel attribute: the exception's message, scrubbed like any string value."""
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"
"""OTel attribute: the formatted traceback, scrubbed like any string value."""
EXCEPTION_ESCAPED: Final = "exception.escaped"
"""OTel attribute on exception events: "True" when the exception left the span's scope."""

# -- Resource ------------------------------------------------------------------------------------
SERVICE_NAME: Final = "service.name"
SERVICE_NAMESPACE: Final = "service.namespace"
SERVICE_VERSION: Final = "service.version"
SERVICE_INSTANCE_ID: Final = "service.instance.id"
DEPLOYMENT_ENVIRONMENT: Final = "deployment.environment.name"

INSTRUMENTATION_NAME: Final = "inferwatch"


# -- Instruments ---------------------------------------------------------------------------------
# (section: instruments)
InstrumentType = Literal["Histogram", "Counter", "ObservableCounter", "ObservableGauge"]
"""The OTel instrument a metric is created as (observable ones report from a callback)."""
MetricKind = Literal["histogram", "counter", "gauge"]
"""What a metric exports: a histogram, a monotonic sum (counter), or a gauge."""
_KINDS: Final[Mapping[InstrumentType, MetricKind]] = {
    "Histogram": "histogram",
    "Counter": "counter",
    "ObservableCounter": "counter",
    "ObservableGauge": "gauge",
}
DECLARED_TAGS: Final = "{metric_tags}"
"""In `InstrumentSpec.attributes`: stands for the `configure(metric_tags=...)` that have a value."""


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """One metric inferwatch emits: what its instrument is created with, and what it carries.

    >>> INSTRUMENTS["ml.inference.duration"].unit, INSTRUMENTS["ml.ranking.ctr"].kind
    ('s', 'gauge')
    """

    name: str
    instrument: InstrumentType
    unit: str
    description: str
    attributes: tuple[str, ...]
    """The attribute keys its points may carry (and the SDK's `otel.metric.overflow`)."""
    buckets: tuple[float, ...] | None = None
    """Histograms: the advised explicit bucket boundaries (a view may override them)."""

    @property
    def kind(self) -> MetricKind:
        """histogram, counter (Counter or ObservableCounter) or gauge."""
        return _KINDS[self.instrument]


_MODEL: Final = (ML_MODEL_NAME, ML_MODEL_VERSION, DECLARED_TAGS)
"""The base attributes of a monitored model's metrics (`ModelSpec.metric_attributes`)."""
_LABEL_WINDOW: Final = (*_MODEL, ML_WINDOW, ML_WINDOW_START)
"""The attributes of a delayed-label score: the model's, and its serving window's."""
_DRIFT: Final = (ML_MODEL_NAME, ML_FEATURE, ML_DRIFT_TEST, ML_WINDOW)
_RANKING: Final = (ML_MODEL_NAME, ML_WINDOW)


def _by_name(*specs: InstrumentSpec) -> Mapping[str, InstrumentSpec]:
    table = {spec.name: spec for spec in specs}
    if len(table) != len(specs):  # a second entry would silently replace the first
        raise ValueError("a metric is in INSTRUMENTS twice")
    return table


# Laid out as a table (hence fmt: skip), two lines an entry:
#     name, instrument, unit,
#     description, attributes[, bucket boundaries],
INSTRUMENTS: Final = _by_name(
    # core: `export.state`
    InstrumentSpec(
        METRIC_INFERENCE_DURATION, "Histogram", "s",
        "Duration of inference calls", (*_MODEL, ERROR_TYPE), DURATION_BUCKETS,
    ),
    InstrumentSpec(
        METRIC_STAGE_DURATION, "Histogram", "s",
        "Duration of inference stages", (*_MODEL, ML_STAGE_NAME, ERROR_TYPE), DURATION_BUCKETS,
    ),
    InstrumentSpec(
        METRIC_INPUT_NAN_COUNT, "ObservableCounter", "{value}",
        "NaN or missing inputs", (*_MODEL, ML_FEATURE),
    ),
    InstrumentSpec(
        METRIC_INPUT_LENGTH, "Histogram", "{element}",
        "Length of each input", _MODEL, LENGTH_BUCKETS,
    ),
    InstrumentSpec(
        METRIC_INPUT_VIOLATIONS, "ObservableCounter", "{violation}",
        "Schema violations in inputs", (*_MODEL, ML_FEATURE, ML_VALIDATION_RULE),
    ),
    InstrumentSpec(
        METRIC_PREDICTION_VALUE, "Histogram", "1",
        "Predicted values (sampled)", (*_MODEL, ML_PREDICTION_SIGN), PREDICTION_BUCKETS,
    ),
    InstrumentSpec(
        METRIC_PREDICTION_COUNT, "ObservableCounter", "{prediction}",
        "Predictions by class", (*_MODEL, ML_PREDICTION_CLASS),
    ),
    InstrumentSpec(
        METRIC_INTERNAL_ERRORS, "Counter", "{error}",
        "Errors inside inferwatch", (ATTR_INTERNAL_WHERE,),
    ),
    # drift: `drift.registry`
    InstrumentSpec(
        METRIC_DRIFT_SCORE, "ObservableGauge", "1",
        "Drift effect size of a feature", _DRIFT,
    ),
    InstrumentSpec(
        METRIC_DRIFT_P_VALUE, "ObservableGauge", "1",
        "Drift test p-value of a feature", _DRIFT,
    ),
    InstrumentSpec(
        METRIC_DRIFT_DETECTED, "ObservableGauge", "1",
        "1 when a feature drifted", _DRIFT,
    ),
    # delayed labels: `feedback.instruments`
    InstrumentSpec(
        METRIC_LABEL_ACCURACY, "ObservableGauge", "1",
        "Share of labelled predictions that were right", _LABEL_WINDOW,
    ),
    InstrumentSpec(
        METRIC_LABEL_PRECISION, "ObservableGauge", "1",
        "Precision per class, from delayed labels", (*_LABEL_WINDOW, ML_LABEL_CLASS),
    ),
    InstrumentSpec(
        METRIC_LABEL_RECALL, "ObservableGauge", "1",
        "Recall per class, from delayed labels", (*_LABEL_WINDOW, ML_LABEL_CLASS),
    ),
    InstrumentSpec(
        METRIC_LABEL_F1, "ObservableGauge", "1",
        "F1 score per class, from delayed labels", (*_LABEL_WINDOW, ML_LABEL_CLASS),
    ),
    InstrumentSpec(
        METRIC_LABEL_PRECISION_MACRO, "ObservableGauge", "1",
        "Unweighted mean precision over classes, from delayed labels", _LABEL_WINDOW,
    ),
    InstrumentSpec(
        METRIC_LABEL_RECALL_MACRO, "ObservableGauge", "1",
        "Unweighted mean recall over classes, from delayed labels", _LABEL_WINDOW,
    ),
    InstrumentSpec(
        METRIC_LABEL_F1_MACRO, "ObservableGauge", "1",
        "Unweighted mean F1 score over classes, from delayed labels", _LABEL_WINDOW,
    ),
    InstrumentSpec(
        METRIC_LABEL_MAE, "ObservableGauge", "1",
        "Mean absolute error, from delayed labels", _LABEL_WINDOW,
    ),
    InstrumentSpec(
        METRIC_LABEL_RMSE, "ObservableGauge", "1",
        "Root mean squared error, from delayed labels", _LABEL_WINDOW,
    ),
    InstrumentSpec(
        METRIC_LABEL_UNLABELLED, "ObservableGauge", "1",
        "Share of predictions without a label yet", _LABEL_WINDOW,
    ),
    InstrumentSpec(
        METRIC_LABEL_COUNT, "ObservableCounter", "{prediction}",
        "Predictions labelled, by serving window", _LABEL_WINDOW,
    ),
    InstrumentSpec(
        METRIC_LABEL_JUDGED, "ObservableCounter", "{prediction}",
        "Predictions judged by delayed labels, by outcome", (*_LABEL_WINDOW, ML_LABEL_OUTCOME),
    ),
    InstrumentSpec(
        METRIC_LABEL_CLASS_OUTCOMES, "ObservableCounter", "{prediction}",
        "True positives, false positives and false negatives per class, from delayed labels",
        (*_LABEL_WINDOW, ML_LABEL_CLASS, ML_LABEL_OUTCOME),
    ),
    InstrumentSpec(
        METRIC_LABEL_ERROR_ABS, "ObservableCounter", "{error}",
        "Sum of absolute errors of predictions judged by delayed labels", _LABEL_WINDOW,
    ),
    InstrumentSpec(
        METRIC_LABEL_ERROR_SQUARED, "ObservableCounter", "{error}",
        "Sum of squared errors of predictions judged by delayed labels", _LABEL_WINDOW,
    ),
    InstrumentSpec(
        METRIC_LABEL_DELAY, "Histogram", "s",
        "Time from prediction to label", _MODEL, DELAY_BUCKETS,
    ),
    InstrumentSpec(
        METRIC_LABEL_UNJOINED, "ObservableCounter", "{label}",
        "Labels not joined to a prediction here, by status", (ML_LABEL_STATUS, ML_LABEL_JOIN),
    ),
    InstrumentSpec(
        METRIC_LABEL_EVICTED, "ObservableCounter", "{prediction}",
        "Unlabelled predictions evicted from a full index", _MODEL,
    ),
    # ranked outputs: `ranking.registry`
    InstrumentSpec(
        METRIC_RANKING_LISTS, "ObservableGauge", "{list}",
        "Ranked lists served in the window", _RANKING,
    ),
    InstrumentSpec(
        METRIC_RANKING_EXPOSURES, "ObservableGauge", "{item}",
        "Items shown in the window", _RANKING,
    ),
    InstrumentSpec(
        METRIC_RANKING_DISTINCT_ITEMS, "ObservableGauge", "{item}",
        "Distinct items shown in the window", _RANKING,
    ),
    InstrumentSpec(
        METRIC_RANKING_COVERAGE, "ObservableGauge", "1",
        "Share of the catalogue shown in the window", _RANKING,
    ),
    InstrumentSpec(
        METRIC_RANKING_GINI, "ObservableGauge", "1",
        "Gini coefficient of exposure across items", _RANKING,
    ),
    InstrumentSpec(
        METRIC_RANKING_LONG_TAIL_SHARE, "ObservableGauge", "1",
        "Share of exposures in the long tail", _RANKING,
    ),
    InstrumentSpec(
        METRIC_RANKING_CTR, "ObservableGauge", "1",
        "Click-through rate by position", (*_RANKING, ML_RANKING_POSITION),
    ),
    # alerts: `alerts.reader`
    InstrumentSpec(
        METRIC_ALERT_NOTIFICATIONS, "Counter", "{notification}",
        "Alert notifications by alert, channel and outcome",
        (ATTR_ALERT_NAME, ATTR_ALERT_CHANNEL, ATTR_ALERT_OUTCOME),
    ),
    InstrumentSpec(
        METRIC_ALERT_ACTIVE, "ObservableGauge", "{alert}",
        "Groups of an alert policy that are firing", (ATTR_ALERT_NAME,),
    ),
)  # fmt: skip
"""Every metric inferwatch emits, by name: `inferwatch.export.instruments` creates them from it."""

# -- The OTel SDK's own metrics about inferwatch's pipelines ---------------------------------------
# (section: pipeline)
# With `configure(internal_metrics=True)` (the default) the batch processors and OTLP exporters
# inferwatch builds report these (OTel semantic conventions, `otel.sdk.*`); alert policies may
# name them like inferwatch's own metrics.
SDK_SPANS_PROCESSED: Final = "otel.sdk.processor.span.processed"
"""Counter: spans a batch processor is done with; `error.type` (``queue_full``) on dropped ones."""
SDK_LOGS_PROCESSED: Final = "otel.sdk.processor.log.processed"
"""Counter: log records a batch processor is done with; `error.type` on dropped ones."""
SDK_SPANS_EXPORTED: Final = "otel.sdk.exporter.span.exported"
"""Counter: spans an OTLP exporter exported; `error.type` on the ones it failed to."""
SDK_LOGS_EXPORTED: Final = "otel.sdk.exporter.log.exported"
"""Counter: log records an OTLP exporter exported; `error.type` on failures."""
SDK_POINTS_EXPORTED: Final = "otel.sdk.exporter.metric_data_point.exported"
"""Counter: metric points an OTLP exporter exported; `error.type` on failures."""
PIPELINE_METRICS: Final[Mapping[str, tuple[MetricKind, str]]] = {
    SDK_SPANS_PROCESSED: ("counter", "{span}"),
    SDK_LOGS_PROCESSED: ("counter", "{log_record}"),
    SDK_SPANS_EXPORTED: ("counter", "{span}"),
    SDK_LOGS_EXPORTED: ("counter", "{log_record}"),
    SDK_POINTS_EXPORTED: ("counter", "{data_point}"),
}
"""Kind and unit of each, as the SDK creates them."""
