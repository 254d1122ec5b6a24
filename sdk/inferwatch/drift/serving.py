"""Drift on the serving path: `monitor(baseline=..., window=...)` feeds the model's live windows.

The windows (`inferwatch.drift.windows`) buffer inputs, predictions and delayed labels by
reference and test them against the baseline off the request thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inferwatch.attributes import AttributeValue
from inferwatch.drift.profile import Profile
from inferwatch.drift.windows import DriftWindows
from inferwatch.durations import FORMS, parse_duration
from inferwatch.instrument.observers import FollowUp, Observer

if TYPE_CHECKING:
    from inferwatch.instrument.inference import Inference, ModelSpec
    from inferwatch.summaries.inputs import InputSummary
    from inferwatch.summaries.predictions import PredictionSummary


class DriftObserver(Observer):
    """Feeds one model's drift windows; ``predict.drift`` is the windows themselves."""

    __slots__ = ("windows",)
    name = "drift"

    def __init__(self, windows: DriftWindows) -> None:
        self.windows = windows

    def on_input(
        self,
        rec: Inference,
        x: Any,
        summary: InputSummary | None,
        attributes: dict[str, AttributeValue],
    ) -> FollowUp | None:
        self.windows.add(x)
        return None

    def on_prediction(self, rec: Inference, y: Any, summary: PredictionSummary) -> None:
        self.windows.add_predictions(y)  # by reference: profiled when the window closes

    def on_label(self, label: Any) -> None:
        self.windows.add_labels(label)  # as given: the baseline names classes the user's way

    def exposed(self) -> dict[str, object]:
        return {"drift": self.windows}


def observer(spec: ModelSpec) -> DriftObserver:
    """Live drift windows for a model given a baseline; the window is checked right here."""
    baseline, window = spec.options["baseline"], spec.options["window"]
    if not isinstance(baseline, Profile):
        raise TypeError(f"baseline must be an iw.Profile, got {type(baseline).__name__}")
    seconds = parse_duration(window) if isinstance(window, str) else float(window)
    if seconds is None or not seconds > 0:
        raise ValueError(f"window {window!r} is not a positive duration like {FORMS}")
    windows = DriftWindows(
        spec.model,
        baseline,
        seconds,
        features=spec.features,
        class_names=spec.class_names,
        autostart=True,
    )
    return DriftObserver(windows)
