"""Whatever the caller passes in or the model returns, the call behaves as if unmonitored.

The `telemetry` fixture runs inferwatch in strict mode: an internal error would raise here
instead of being swallowed, so these tests also prove the summaries handle every case cleanly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import inferwatch as iw
from tests.conftest import Captured

WEIRD_VALUES: list[Any] = [
    None,
    [],
    [[1.0, 2.0], [3.0]],  # ragged
    ["1.0", "oops", None],  # strings where numbers were expected
    [1.0, "two", None, float("nan")],
    np.array([1, "a", None], dtype=object),
    np.array(5.0),  # 0-d
    np.array(np.nan),
    np.empty((0, 4)),
    np.empty(0),
    np.array([np.nan, np.inf, -np.inf]),
    np.full((3, 3), np.nan),
    np.array([1 + 2j, np.nan + 0j]),
    np.array(["2024-01-01"], dtype="datetime64[D]"),
    2**80,
    -(2**70),
    float("inf"),
    b"\x00\xff",
    "",
    {"a": object(), "b": [1, None], "c": np.array([np.nan]), 1: "x"},
    [{"a": 1}, "not a record", {"b": None}],
    {1, 2, 3},
    (x for x in range(3)),
    pd.DataFrame({"a": [None, "x"], "b": pd.array([1, None], dtype="Int64")}),
    pd.Series([], dtype=float),
    object(),
    Exception("not data"),
    np.zeros(2, dtype=[("id", "i8"), ("score", "f4")]),  # structured records
    np.array(["2024-01-01", "NaT"], dtype="datetime64[s]"),
    np.zeros((2, 3, 4)),
    np.arange(6.0)[::2],  # a strided view
    pd.DataFrame([[1.0, "x"], [None, "y"]], columns=["a", "a"]),  # duplicate column names
    pd.DataFrame({"c": pd.Categorical(["a", None]), 0: [1.5, None]}),
    "\ud800 lone surrogate",
    {"ids": [2**70, 1], "text": "caf\udce9"},
]
try:
    import torch

    WEIRD_VALUES += [torch.ones(2, 2, requires_grad=True), [torch.zeros(1, requires_grad=True)]]
except ImportError:
    pass


def assert_otel_values(attributes: Any) -> None:
    """Scalars in the int64 range, or a batch's rows (a tuple of them)."""
    for key, attr in attributes.items():
        for item in attr if isinstance(attr, tuple) else (attr,):
            assert isinstance(item, str | bool | int | float), key
            assert not isinstance(item, int) or -(2**63) <= item < 2**63, key


@pytest.mark.parametrize("value", WEIRD_VALUES, ids=lambda v: type(v).__name__)
def test_weird_inputs_and_predictions_pass_through(telemetry: Captured, value: Any) -> None:
    @iw.monitor(model="m")
    def identity(x: Any) -> Any:
        return x

    assert identity(value) is value
    (span,) = telemetry.spans("inference m")
    assert_otel_values(span.attributes or {})
    assert iw.internal_errors() == {}


@pytest.mark.parametrize("value", WEIRD_VALUES, ids=lambda v: type(v).__name__)
def test_weird_values_through_the_explicit_form(telemetry: Captured, value: Any) -> None:
    with iw.inference(model="m", features=["a", "b"], class_names=["x"]) as rec:
        rec.record_input(value)
        rec.record_prediction(value)
        rec.tag(weird=value)
    (span,) = telemetry.spans("inference m")
    assert_otel_values(span.attributes or {})
    for attr in (span.attributes or {}).values():
        for item in attr if isinstance(attr, tuple) else (attr,):
            if isinstance(item, str):
                item.encode("utf-8")  # raises for a lone surrogate: OTLP strings are UTF-8


def test_internal_errors_are_swallowed_counted_and_logged(
    telemetry: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    iw.configure(metric_readers=[], strict=False)

    @iw.monitor(model="m")
    def predict(x: Any) -> str:
        return "ok"

    class ExplodingList(list):  # type: ignore[type-arg]
        """Indexing raises: a stand-in for any bug inside inferwatch's summaries."""

        def __getitem__(self, i: Any) -> Any:
            raise RuntimeError("boom")

    for _ in range(3):
        assert predict(ExplodingList([1])) == "ok"
    assert iw.internal_errors() == {"inference.record_input": 3}
    warnings = [r for r in caplog.records if r.name == "inferwatch.internal"]
    assert len(warnings) == 1  # rate-limited: once a minute per place
    assert "inference.record_input" in warnings[0].getMessage()


def test_strict_mode_reraises_internal_errors(telemetry: Captured) -> None:
    class ExplodingList(list):  # type: ignore[type-arg]
        def __getitem__(self, i: Any) -> Any:
            raise RuntimeError("boom")

    @iw.monitor(model="m")
    def predict(x: Any) -> str:
        return "ok"

    with pytest.raises(RuntimeError, match="boom"):
        predict(ExplodingList([1]))
