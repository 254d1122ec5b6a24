"""Every attribute, metric and span name inferwatch emits, spelled once.

OpenTelemetry has no semantic conventions for classic ML inference yet (semantic-conventions
issue #3420), so these are ours. `docs/semantic-conventions.md` documents each one.
"""

from __future__ import annotations

from typing import Final

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
"""Attribute: the test, "ks" (numeric) or "chi2" (categorical)."""
ML_WINDOW: Final = "ml.window"
"""Attribute: the tumbling window's label (e.g. "5m") or "cumulative"."""
ML_DRIFT_P_VALUE: Final = "ml.drift.p_value"
ML_DRIFT_SCORE: Final = "ml.drift.score"
EVENT_DRIFT_DETECTED: Final = "ml.drift.detected"
WINDOW_CUMULATIVE: Final = "cumulative"

# -- Delayed labels (`iw.feedback`) ---------------------------------------------------------------
# (section: feedback)

# -- Ranked outputs (`rec.record_ranking`) -------------------------------------------------------
# (section: ranking)

# -- Alerts --------------------------------------------------------------------------------------
# (section: alerts)

# -- Privacy -------------------------------------------------------------------------------------
# (section: privacy)

# -- Resource ------------------------------------------------------------------------------------
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
DEPLOYMENT_ENVIRONMENT: Final = "deployment.environment.name"

INSTRUMENTATION_NAME: Final = "inferwatch"
