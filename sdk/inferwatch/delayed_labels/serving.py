"""Delayed labels on the serving path: every model's predictions are remembered for their label.

`iw.feedback(request_id, label)` later finds the prediction in the index
(`inferwatch.delayed_labels.index`) and judges it; `iw.configure_feedback` sizes the index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inferwatch.delayed_labels.api import remember_prediction
from inferwatch.instrument.observers import Observer

if TYPE_CHECKING:
    from inferwatch.instrument.inference import Inference, ModelSpec
    from inferwatch.summaries.predictions import PredictionSummary


class FeedbackObserver(Observer):
    __slots__ = ("spec",)
    name = "feedback"

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    def on_prediction(self, rec: Inference, y: Any, summary: PredictionSummary) -> None:
        remember_prediction(
            rec.request_id, rec.span, self.spec, rec.metrics().attributes, summary, y
        )


def observer(spec: ModelSpec) -> FeedbackObserver:
    return FeedbackObserver(spec)
