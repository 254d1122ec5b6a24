"""What one serving window knows about its predictions' labels, and the scores derived from it.

Counts are kept, ratios derived: a confusion count per (label, predicted class) pair, sums of
absolute and squared errors. Scores are computed when the metric reader asks, so a label costs a
dict update, and a late label for an old window simply changes that window's counts.

Definitions (those of scikit-learn's defaults, so the numbers can be cross-checked):

- accuracy = correct / labelled;
- per class c, over the classes seen as a label or a prediction: precision = tp / predicted c,
  recall = tp / labelled c (a point only where the denominator is not 0), F1 = 2tp / (2tp + fp
  + fn);
- macro precision, recall and F1 = their unweighted mean over those classes, an undefined
  precision or recall counting as 0 (``zero_division=0``);
- MAE = mean |predicted - label|, RMSE = sqrt(mean (predicted - label)^2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from inferwatch import semconv
from inferwatch.attributes import AttributeValue


@dataclass(slots=True)
class WindowScores:
    """Counts of one model's predictions served in one window (mutated under the index lock)."""

    attributes: dict[str, AttributeValue]
    """Metric attributes of the window: the model's, plus the window's start."""
    served: int = 0
    labelled: int = 0
    confusion: dict[tuple[str, str], int] = field(default_factory=dict)
    """(label class, predicted class) -> predictions."""
    correct: int = 0
    """Right predictions, compared before rare classes were folded into `__other__`."""
    errors: int = 0
    abs_error: float = 0.0
    squared_error: float = 0.0

    def add_classes(self, pairs: Iterable[tuple[str, str]], correct: int) -> None:
        self.correct += correct
        confusion = self.confusion
        for pair in pairs:
            confusion[pair] = confusion.get(pair, 0) + 1

    def add_errors(self, errors: np.ndarray) -> None:
        """Signed errors (predicted - label) of the labelled regression predictions."""
        self.errors += int(errors.size)
        self.abs_error += float(np.abs(errors).sum())
        self.squared_error += float(np.square(errors).sum())

    def copy(self) -> WindowScores:
        return WindowScores(
            self.attributes,
            self.served,
            self.labelled,
            dict(self.confusion),
            self.correct,
            self.errors,
            self.abs_error,
            self.squared_error,
        )


@dataclass(frozen=True, slots=True)
class ClassificationScores:
    accuracy: float
    precision: dict[str, float]
    recall: dict[str, float]
    f1: dict[str, float]
    macro_precision: float
    macro_recall: float
    macro_f1: float


def classification_scores(
    confusion: Mapping[tuple[str, str], int], correct: int | None = None
) -> ClassificationScores | None:
    """Accuracy, per-class and macro precision/recall/F1 of a confusion count (None if empty).

    ``correct`` overrides the diagonal's total for the accuracy (classes folded together).

    >>> classification_scores({("a", "a"): 2, ("a", "b"): 1}).accuracy
    0.6666666666666666
    """
    total = sum(confusion.values())
    if total == 0:
        return None
    true_positives: dict[str, int] = {}
    labelled: dict[str, int] = {}
    predicted: dict[str, int] = {}
    for (label, guess), count in confusion.items():
        labelled[label] = labelled.get(label, 0) + count
        predicted[guess] = predicted.get(guess, 0) + count
        if label == guess:
            true_positives[label] = true_positives.get(label, 0) + count
    classes = sorted(labelled.keys() | predicted.keys())
    precision: dict[str, float] = {}
    recall: dict[str, float] = {}
    f1: dict[str, float] = {}
    for c in classes:
        tp = true_positives.get(c, 0)
        n_predicted, n_labelled = predicted.get(c, 0), labelled.get(c, 0)
        if n_predicted:
            precision[c] = tp / n_predicted
        if n_labelled:
            recall[c] = tp / n_labelled
        # 2tp + fp + fn = predicted + labelled, never 0 for a class that was seen
        f1[c] = 2 * tp / (n_predicted + n_labelled)
    k = len(classes)
    return ClassificationScores(
        accuracy=(sum(true_positives.values()) if correct is None else correct) / total,
        precision=precision,
        recall=recall,
        f1=f1,
        macro_precision=sum(precision.values()) / k,
        macro_recall=sum(recall.values()) / k,
        macro_f1=sum(f1.values()) / k,
    )


def regression_scores(scores: WindowScores) -> tuple[float, float] | None:
    """(MAE, RMSE) of the window's labelled regression predictions (None without any)."""
    if scores.errors == 0:
        return None
    return scores.abs_error / scores.errors, math.sqrt(scores.squared_error / scores.errors)


def counter_points(scores: WindowScores) -> list[tuple[str, float, dict[str, AttributeValue]]]:
    """The window's counts as the counters that sum across processes: (metric, value, attributes).

    Unlike the ratios, these add up over serving processes and the label joiner, so a backend
    computes accuracy, precision, recall, F1, MAE and RMSE of all of them (docs/delayed-labels.md
    has the PromQL). Both outcomes of a classification window are always given, zeros
    included, so a ratio of two sums has a numerator wherever it has a denominator.
    """
    attributes = scores.attributes
    points: list[tuple[str, float, dict[str, AttributeValue]]] = []
    if scores.confusion:
        judged = sum(scores.confusion.values())
        for outcome, n in (
            (semconv.OUTCOME_CORRECT, scores.correct),
            (semconv.OUTCOME_WRONG, judged - scores.correct),
        ):
            points.append(
                (semconv.METRIC_LABEL_JUDGED, n, {**attributes, semconv.ML_LABEL_OUTCOME: outcome})
            )
        outcomes: dict[str, list[int]] = {}  # class -> [tp, fp, fn]
        for (label, guess), n in scores.confusion.items():
            if label == guess:
                outcomes.setdefault(label, [0, 0, 0])[0] += n
            else:
                outcomes.setdefault(guess, [0, 0, 0])[1] += n
                outcomes.setdefault(label, [0, 0, 0])[2] += n
        for c in sorted(outcomes):
            for outcome, n in zip(("tp", "fp", "fn"), outcomes[c], strict=True):
                class_attributes = {
                    **attributes,
                    semconv.ML_LABEL_CLASS: c,
                    semconv.ML_LABEL_OUTCOME: outcome,
                }
                points.append((semconv.METRIC_LABEL_CLASS_OUTCOMES, n, class_attributes))
    if scores.errors:
        scored = {**attributes, semconv.ML_LABEL_OUTCOME: semconv.OUTCOME_SCORED}
        points += [
            (semconv.METRIC_LABEL_JUDGED, scores.errors, scored),
            (semconv.METRIC_LABEL_ERROR_ABS, scores.abs_error, attributes),
            (semconv.METRIC_LABEL_ERROR_SQUARED, scores.squared_error, attributes),
        ]
    return points
