"""Input and prediction summaries: exact counts for every supported type."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from inferwatch.summaries.arrays import MAX_POINTS
from inferwatch.summaries.inputs import InputSummary, summarize_input
from inferwatch.summaries.predictions import summarize_prediction


def test_2d_array_nan_counts_per_feature() -> None:
    X = np.ones((100, 4))
    X[3, 1] = X[7, 1] = X[7, 3] = np.nan
    s = summarize_input(X, features=["a", "b", "c", "d"])
    assert (s.batch_size, s.nan_count, s.nan_rows) == (100, 3, 2)
    assert s.nan_by_feature == {"b": 2, "d": 1}
    assert (s.length, s.length_max) == (4.0, 4)


def test_clean_array_takes_no_nan_pass_and_counts_zero() -> None:
    s = summarize_input(np.arange(12.0).reshape(3, 4))
    assert (s.nan_count, s.nan_rows, s.nan_by_feature) == (0, 0, None)


def test_inf_minus_inf_is_not_counted_as_nan() -> None:
    s = summarize_input(np.array([[np.inf, -np.inf, 1.0]]))
    assert s.nan_count == 0


def test_1d_array_is_one_feature_vector() -> None:
    s = summarize_input(np.array([1.0, np.nan, 3.0]), features=["x", "y", "z"])
    assert (s.batch_size, s.nan_count, s.nan_rows, s.length) == (1, 1, 1, 3.0)
    assert s.nan_by_feature == {"y": 1}


def test_integer_and_bool_arrays_have_no_nans() -> None:
    assert summarize_input(np.arange(10).reshape(2, 5)).nan_count == 0
    assert summarize_input(np.zeros((2, 2), dtype=bool)).nan_count == 0


def test_token_id_batch_lengths() -> None:
    s = summarize_input(np.zeros((8, 512), dtype=np.int64))
    assert (s.batch_size, s.length, s.length_max, s.lengths) == (8, 512.0, 512, [512])


def test_texts_lengths_and_missing() -> None:
    s = summarize_input(["short", "a much longer text", None])
    assert (s.batch_size, s.nan_count) == (3, 1)
    assert s.length_max == len("a much longer text")
    assert s.length == pytest.approx((5 + 18) / 2)
    assert summarize_input(np.array(["ab", "abcd"])).length == 3.0


def test_ragged_token_lists() -> None:
    s = summarize_input([[1, 2, 3], [4], [5, 6]])
    assert (s.batch_size, s.length_max, s.length) == (3, 3, 2.0)


def test_list_of_rows_is_a_batch() -> None:
    s = summarize_input([[1.0, None], [2.0, 3.0]], features=["a", "b"])
    assert (s.batch_size, s.nan_count, s.nan_by_feature) == (2, 1, {"b": 1})


def test_list_of_records() -> None:
    s = summarize_input([{"a": 1.0, "b": None}, {"a": float("nan"), "b": 2}, {"a": 1, "b": 2}])
    assert (s.batch_size, s.nan_count, s.nan_rows) == (3, 2, 2)
    assert s.nan_by_feature == {"a": 1, "b": 1}


def test_dict_row_and_columnar_dict() -> None:
    row = summarize_input({"age": 31, "income": float("nan"), "city": None, "note": "hello"})
    assert (row.batch_size, row.nan_count, row.nan_rows) == (1, 2, 1)
    assert row.nan_by_feature == {"income": 1, "city": 1}
    assert row.length == 5.0
    columns = summarize_input({"a": np.array([1.0, np.nan, np.nan]), "b": [1, None, 3]})
    assert (columns.batch_size, columns.nan_count) == (3, 3)
    assert columns.nan_by_feature == {"a": 2, "b": 1}


def test_pandas_frames_and_series() -> None:
    df = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [1.0, 2.0, np.nan]})
    s = summarize_input(df)
    assert (s.kind, s.batch_size, s.nan_count, s.nan_by_feature) == (
        "DataFrame", 3, 2, {"a": 1, "b": 1},
    )  # fmt: skip
    mixed = df.assign(city=["x", None, "z"])
    m = summarize_input(mixed)
    assert (m.nan_count, m.nan_rows, m.nan_by_feature) == (3, 2, {"a": 1, "b": 1, "city": 1})
    series = summarize_input(pd.Series([1.0, np.nan, np.nan]))
    assert (series.kind, series.batch_size, series.nan_count, series.nan_rows) == (
        "Series",
        3,
        2,
        2,
    )


def test_dict_with_list_feature_is_one_row_and_odd_values_are_unsupported() -> None:
    row = summarize_input({"tokens": [1, 2, 3], "age": 30, "city": None})
    assert (row.batch_size, row.nan_count, row.length) == (1, 1, 3.0)
    ragged = summarize_input({"a": [1.0, 2.0], "b": [None, 1.0, 2.0]})
    assert (ragged.batch_size, ragged.nan_count) == (1, 0)
    frame_inside = summarize_input({"a": pd.DataFrame({"x": [1]}), "b": 1.0})
    assert (frame_inside.batch_size, frame_inside.unsupported) == (1, 1)


def test_nullable_pandas_dtypes_count_missing_values() -> None:
    df = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"), "b": [True, False, None]})
    s = summarize_input(df)
    assert (s.nan_count, s.nan_by_feature, s.unsupported) == (2, {"a": 1, "b": 1}, 0)


def test_scalars_and_unknown_types() -> None:
    assert summarize_input(float("nan")).nan_count == 1
    assert summarize_input(3).nan_count == 0
    assert summarize_input("hello").length == 5.0
    unknown = summarize_input(object())
    assert (unknown.kind, unknown.unsupported) == ("object", 1)
    assert summarize_input(None).unsupported == 1


def test_regression_predictions_ignore_non_finite_values() -> None:
    p = summarize_prediction(np.array([1.0, 3.0, np.nan, np.inf]))
    assert (p.kind, p.count, p.nan_count) == ("regression", 4, 1)
    assert (p.mean, p.min, p.max) == (2.0, 1.0, 3.0)
    assert p.values == [1.0, 3.0]


def test_prediction_histogram_sample_is_bounded() -> None:
    p = summarize_prediction(np.linspace(0, 1, 10_000))
    assert len(p.values) == MAX_POINTS
    assert p.count == 10_000


def test_probabilities_become_classes_with_names() -> None:
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    p = summarize_prediction(proba, class_names=["legit", "fraud"])
    assert p.kind == "classification"
    assert dict(p.classes) == {"legit": 2, "fraud": 1}
    assert p.attributes()["ml.prediction.class"] == "legit"


def test_probability_rows_with_nan_have_no_class() -> None:
    p = summarize_prediction(np.array([[0.1, 0.9], [np.nan, 0.2], [0.7, 0.3]]))
    assert (p.count, p.nan_count, dict(p.classes)) == (3, 1, {"1": 1, "0": 1})


def test_labels_and_forced_kinds() -> None:
    assert dict(summarize_prediction(["cat", "dog", "cat"]).classes) == {"cat": 2, "dog": 1}
    assert dict(summarize_prediction(np.array([1, 0, 1])).classes) == {"1": 2, "0": 1}
    assert summarize_prediction(np.array([1, 0, 1]), kind="regression").mean == pytest.approx(2 / 3)
    forced = summarize_prediction(np.array([1.0, 0.0]), kind="classification")
    assert dict(forced.classes) == {"0": 1, "1": 1}
    assert summarize_prediction(0.7).mean == 0.7
    assert dict(summarize_prediction(True).classes) == {"True": 1}


def test_unsupported_predictions_are_counted() -> None:
    assert summarize_prediction(None).unsupported == 1
    assert summarize_prediction({"label": 1}).unsupported == 1
    assert summarize_prediction([[1, 2], [3]]).unsupported == 1


def test_all_attribute_values_are_otel_types() -> None:
    values = [np.array([np.nan, np.nan]), np.array([1e308, 1e308]), np.array([]), 2**70]
    values += [np.array([1.0, np.inf]), np.array([0.5, 2.0]), np.array(["a", "b"])]
    for value in values:
        for key, attr in summarize_prediction(value).attributes().items():
            for item in attr if isinstance(attr, tuple) else (attr,):  # a batch's rows
                assert isinstance(item, str | bool | int | float), key
                assert not isinstance(item, float) or np.isfinite(item), key


def test_a_batch_carries_its_rows_in_order_up_to_the_limit() -> None:
    rows = summarize_prediction(np.array([2, 0, 2]), class_names=["a", "b", "c"]).attributes()
    assert rows["ml.prediction.classes"] == ("c", "a", "c")
    probabilities = np.array([[0.9, 0.1], [np.nan, 0.5], [0.2, 0.8]])
    assert summarize_prediction(probabilities).attributes()["ml.prediction.classes"] == (
        "0",
        "",
        "1",
    )
    assert summarize_prediction(np.array([0.5, 2.0])).attributes()["ml.prediction.values"] == (
        0.5,
        2.0,
    )
    assert "ml.prediction.values" not in summarize_prediction(np.array([1.0, np.nan])).attributes()
    assert "ml.prediction.classes" not in summarize_prediction(np.array(["a"] * 257)).attributes()
    assert "ml.prediction.classes" not in summarize_prediction(np.array(["a"])).attributes()


@pytest.mark.parametrize("density", [0.0, 0.001, 0.05, 0.2, 0.9])
@pytest.mark.parametrize("shape", [(1, 32), (500, 7), (64, 3, 5)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_nan_counts_match_a_direct_count(
    density: float, shape: tuple[int, ...], order: str
) -> None:
    rng = np.random.default_rng(int(density * 1000) + len(shape))
    X = np.asarray(rng.normal(size=shape), order=order)
    X[rng.random(shape) < density] = np.nan
    features = [f"f{i}" for i in range(shape[1])] if len(shape) == 2 else None
    s = summarize_input(X, features=features)
    nan = np.isnan(X)
    assert s.nan_count == int(nan.sum())
    assert s.nan_rows == int(nan.reshape(shape[0], -1).any(axis=1).sum())
    if features is not None:
        expected = {f: int(n) for f, n in zip(features, nan.sum(axis=0), strict=True) if n}
        assert (s.nan_by_feature or {}) == expected


def test_mean_of_floats_at_the_largest_double_does_not_overflow() -> None:
    """Found by the long property run: three values at float64's max summed (as thirds) past it."""
    top = float(np.finfo(np.float64).max)
    for values in ([top] * 3, [top, -top, top], [-top] * 5, [top, top / 2]):
        summary = summarize_prediction(np.array(values))
        assert summary.mean is not None and math.isfinite(summary.mean)
        exact = float(sum(Fraction(v) for v in values) / len(values))
        assert summary.mean == pytest.approx(exact, rel=1e-12)


def test_mean_of_narrow_floats_near_their_max_does_not_overflow() -> None:
    """Found by the long property run: two float32 values near its max overflowed the sum."""
    for dtype, value in ((np.float32, 1.7014e38), (np.float16, 60000.0)):
        summary = summarize_prediction(np.array([value, value], dtype=dtype))
        assert summary.mean == pytest.approx(float(np.array(value, dtype=dtype)), rel=1e-6)


@pytest.mark.parametrize("shape", [(7,), (1, 32), (3, 8), (8, 3), (2, 2, 4), (1,), (4, 1)])
@pytest.mark.parametrize("nan_share", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("fortran", [False, True])
def test_small_arrays_are_summarised_as_the_general_path_does(
    shape: tuple[int, ...], nan_share: float, fortran: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrays of a request's size take a shortcut; it must give what the numpy path gives."""
    from inferwatch.summaries import inputs

    rng = np.random.default_rng(hash((shape, nan_share, fortran)) % 2**32)
    x = rng.normal(size=shape)
    x[rng.random(size=shape) < nan_share] = np.nan
    if len(shape) == 2 and shape[0] > 1:
        x[0, :] = np.nan  # an all-NaN row
    if fortran:
        x = np.asfortranarray(x)
    width = shape[-1] if len(shape) == 1 else int(np.prod(shape[1:]))
    for features in (None, [f"f{i}" for i in range(width)]):
        small = summarize_input(x, features)
        monkeypatch.setattr(inputs, "_SMALL", 0)
        general = summarize_input(x, features)
        monkeypatch.undo()
        assert small == general
        assert small.attributes() == general.attributes()


@pytest.mark.parametrize("rows", [1, 3, 400])
def test_frame_nans_are_named_by_their_columns_whatever_the_names(rows: int) -> None:
    """A numeric frame is read as its one array; its column names (any type) name the NaNs."""
    pd = pytest.importorskip("pandas")
    names = [0, "größe", ("a", 1), "x\udcff"]  # an int, non-ASCII, a tuple, a lone surrogate
    values = np.ones((rows, 4))
    values[0, 0] = values[-1, 2] = np.nan
    frame = pd.DataFrame(values, columns=pd.Index(names, dtype=object))
    summary = summarize_input(frame)
    by_feature = summary.nan_by_feature or {}
    assert set(by_feature) == {"0", "('a', 1)"}
    assert by_feature["0"] == 1 and by_feature["('a', 1)"] == 1
    assert summary.nan_count == 2
    assert summary.nan_rows == (1 if rows == 1 else 2)
    assert summary.attributes()["ml.input.nan_count"] == 2


@pytest.mark.parametrize("rows", [1, 3, 400])
def test_declared_feature_names_of_nans_are_valid_utf8(rows: int) -> None:
    """Names of features with NaNs become metric attribute values: a lone surrogate in a
    declared name would make the exporter drop the point, so it is replaced."""
    x = np.ones((rows, 2))
    x[0, 1] = np.nan
    by_feature = summarize_input(x, features=["a", "x\udcff"]).nan_by_feature or {}
    assert list(by_feature.values()) == [1]
    (name,) = by_feature
    name.encode("utf-8")  # raises UnicodeEncodeError for a lone surrogate
    assert name.startswith("x")


def test_a_request_row_summary_is_shared_and_read_only() -> None:
    row = np.ones((1, 8))
    row[0, 3] = np.nan
    first = summarize_input(row)
    with pytest.raises(AttributeError, match="read-only"):
        first.nan_count = 0
    assert summarize_input(row.copy()) is first
    assert first == InputSummary("ndarray", 1, 1, 1, None, 8.0, 8, (), 0, 0)
    assert summarize_input(np.full((1, 8), np.nan)).nan_full_rows == 1
