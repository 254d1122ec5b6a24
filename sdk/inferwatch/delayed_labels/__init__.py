"""Delayed labels (ground truth) by request id: `feedback`, and what it is built from.

>>> iw.feedback("r-1", "fraud")

- `inferwatch.delayed_labels.api` — `feedback`, `configure_feedback`, and the prediction hook;
- `inferwatch.delayed_labels.index` — the bounded index of recent predictions, per-window counts;
- `inferwatch.delayed_labels.values` — labels checked and named as the predictions are;
- `inferwatch.delayed_labels.scores` — accuracy, precision, recall, F1, MAE, RMSE from counts;
- `inferwatch.delayed_labels.instruments` — the OTel instruments; `.record` — the log record.

The user guide is docs/delayed-labels.md.
"""

from inferwatch.delayed_labels.api import (
    ERROR,
    MAX_LABELS_ON_RECORD,
    configure_feedback,
    feedback,
    remember_prediction,
)
from inferwatch.delayed_labels.index import PredictionIndex, current_index
from inferwatch.delayed_labels.scores import (
    ClassificationScores,
    WindowScores,
    classification_scores,
    regression_scores,
)

__all__ = [
    "ERROR",
    "MAX_LABELS_ON_RECORD",
    "ClassificationScores",
    "PredictionIndex",
    "WindowScores",
    "classification_scores",
    "configure_feedback",
    "current_index",
    "feedback",
    "regression_scores",
    "remember_prediction",
]
