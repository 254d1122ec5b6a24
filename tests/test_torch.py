"""Torch tensors are summarised where they live, without a hard dependency on torch."""

from __future__ import annotations

import pytest

import inferwatch as iw
from inferwatch.summaries.inputs import summarize_input
from inferwatch.summaries.predictions import summarize_prediction
from tests.conftest import Captured

torch = pytest.importorskip("torch")


def test_tensor_inputs_count_nans_per_feature_and_full_rows() -> None:
    x = torch.ones(4, 3)
    x[1, 2] = float("nan")
    x[3] = float("nan")
    s = summarize_input(x, features=["a", "b", "c"])
    assert (s.batch_size, s.nan_count, s.nan_rows, s.nan_full_rows) == (4, 4, 2, 1)
    assert s.nan_by_feature == {"a": 1, "b": 1, "c": 2}
    assert s.lengths == []  # a float feature matrix has a fixed width: no length histogram


def test_token_id_tensors_have_lengths_and_no_nan_pass() -> None:
    s = summarize_input(torch.zeros(2, 128, dtype=torch.long))
    assert (s.batch_size, s.length, s.lengths, s.nan_count) == (2, 128.0, [128], 0)


def test_tensor_predictions() -> None:
    scores = summarize_prediction(torch.tensor([0.25, 0.75, float("nan")]))
    assert (scores.count, scores.nan_count, scores.mean) == (3, 1, 0.5)
    proba = summarize_prediction(torch.tensor([[0.1, 0.9], [0.7, 0.3], [0.2, 0.8]]))
    assert dict(proba.classes) == {"0": 1, "1": 2}
    labels = summarize_prediction(torch.tensor([1, 0, 1]))
    assert dict(labels.classes) == {"0": 1, "1": 2}


def test_monitored_torch_model(telemetry: Captured) -> None:
    model = torch.nn.Linear(4, 2)

    @iw.monitor(model="torch-linear", features=["a", "b", "c", "d"])
    def predict(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(x).softmax(dim=1)

    x = torch.randn(8, 4)
    x[0, 1] = float("nan")
    out = predict(x)
    assert out.shape == (8, 2)
    attrs = telemetry.span("inference torch-linear").attributes or {}
    assert (attrs["ml.input.batch_size"], attrs["ml.input.nan_count"]) == (8, 1)
    assert attrs["ml.prediction.count"] == 8
    assert iw.internal_errors() == {}


def test_tensor_labels_even_with_grad_are_joined(telemetry: Captured) -> None:
    """Labels may come straight from a training loop: a tensor that requires grad included."""
    with iw.context(request_id="r-1"), iw.inference("t", prediction_kind="regression") as rec:
        rec.record_prediction(torch.tensor([0.5, 1.5]))
    assert iw.feedback("r-1", torch.tensor([1.0, 1.0], requires_grad=True)) == "joined"
    assert iw.feedback("elsewhere", torch.tensor([2.0], requires_grad=True)) == "unknown"
    assert iw.internal_errors() == {}
