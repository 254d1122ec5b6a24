"""Property-based: whatever goes in or comes out, the call is unchanged and attributes are valid.

Inputs and predictions are drawn from every shape and type a model server may hand over:
numpy arrays of any dtype (object, complex, datetime, structured, byte strings, non-native
byte order; 0-d, 3-d, empty), DataFrames (mixed, categorical, nullable Int64/boolean/string,
datetimes, duplicate or non-string column names), Series, dict rows and columns, lists,
scalars, bytes, huge ints, text with lone surrogates, and torch tensors when torch is
installed. They go through `iw.monitor` (plain, async and generator functions, returning or
raising) and through `iw.inference`, and every exported span, event, metric point and log
record must carry only valid OTel attribute values.

Runs in strict mode (an internal error would raise), so a failure here is a bug in inferwatch's
summaries. INFERWATCH_PROPERTY_EXAMPLES raises the number of examples per test (the long run
uses 10000).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import inferwatch as iw
from inferwatch import errors as _internal
from inferwatch.summaries.inputs import summarize_input
from inferwatch.summaries.predictions import summarize_prediction
from tests.conftest import Captured

try:
    import torch
except ImportError:  # the tensor strategies are left out
    torch = None

EXAMPLES = int(os.environ.get("INFERWATCH_PROPERTY_EXAMPLES", "200"))
# A numerical warning raised while inferwatch summarises would reach the user's process.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")
RELAXED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large],
)  # fmt: skip

# -- what a model may be handed, or may return ---------------------------------------------------
# Lone surrogates too: json.loads and surrogateescape decoding hand them over.
lone_surrogates = st.characters(codec=None, categories=["Cs"])
texts = st.text(max_size=12) | st.builds(str.__add__, st.text(max_size=6), lone_surrogates)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63),  # past int64, as ids and hashes can be
    st.integers(max_value=-(2**63) - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(allow_nan=True),
    texts,
    st.binary(max_size=20),
    st.datetimes().map(np.datetime64),
    st.sampled_from([pd.NA, pd.NaT, np.nan, np.float32("nan"), np.int64(-(2**63))]),
)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
plain_dtypes = st.one_of(
    hnp.floating_dtypes(endianness="?"), hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(), hnp.boolean_dtypes(), hnp.complex_number_dtypes(),
    hnp.unicode_string_dtypes(max_len=5), hnp.byte_string_dtypes(max_len=5),
    hnp.datetime64_dtypes(), hnp.timedelta64_dtypes(),
)  # fmt: skip
arrays = st.one_of(
    hnp.arrays(plain_dtypes, shapes),
    hnp.arrays(np.dtype(object), shapes, elements=scalars),
    hnp.arrays(hnp.array_dtypes(plain_dtypes, max_size=3), shapes),  # structured records
    hnp.arrays(np.float64, shapes).map(lambda a: a.T),  # non-contiguous views
)


def _column(rows: int) -> st.SearchStrategy[Any]:
    """One DataFrame column of `rows` values, of one of the dtypes pandas frames hold."""
    floats = st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=rows, max_size=rows)
    maybe_ints = st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
                          min_size=rows, max_size=rows)  # fmt: skip
    # pandas' string and category dtypes (Arrow-backed) cannot hold lone surrogates at all.
    maybe_text = st.lists(st.one_of(st.none(), st.text(max_size=12)), min_size=rows, max_size=rows)
    mixed = st.lists(scalars, min_size=rows, max_size=rows)
    maybe_bools = st.lists(st.one_of(st.none(), st.booleans()), min_size=rows, max_size=rows)
    stamps = st.lists(st.one_of(st.none(), st.integers(0, 2**33)), min_size=rows, max_size=rows)
    return st.one_of(
        floats.map(lambda v: pd.Series(v, dtype="float64")),
        maybe_ints.map(lambda v: pd.Series(v, dtype="Int64")),
        maybe_bools.map(lambda v: pd.Series(v, dtype="boolean")),
        maybe_text.map(lambda v: pd.Series(v, dtype="category")),
        maybe_text.map(lambda v: pd.Series(v, dtype="string")),
        mixed.map(lambda v: pd.Series(v, dtype=object)),
        stamps.map(lambda v: pd.Series(pd.to_datetime(v, unit="s"))),
        stamps.map(lambda v: pd.Series(pd.to_timedelta(v, unit="s"))),
    )


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(0, 5))
    # Duplicate names, integers, None: all allowed by pandas, all seen in the wild.
    names = draw(st.lists(st.sampled_from(["a", "b", "a", 0, 1, None, "ü"]), max_size=5))
    columns = [draw(_column(rows)).reset_index(drop=True) for _ in names]
    frame = pd.concat(columns, axis=1) if columns else pd.DataFrame(index=range(rows))
    frame.columns = names
    return frame


feature_names = st.sampled_from(["a", "b", "c", "d"])
records = st.lists(st.dictionaries(feature_names, scalars, max_size=4), max_size=5)
column_dicts = st.dictionaries(
    feature_names, st.one_of(st.lists(scalars, max_size=4), hnp.arrays(plain_dtypes, 3)),
    max_size=4,
)  # fmt: skip
leaves = [scalars, arrays, frames(), frames().map(lambda f: f.iloc[:, 0] if f.shape[1] else f)]
leaves += [records, column_dicts]
if torch is not None:
    tensor_dtypes = st.sampled_from(
        [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8,
         np.bool_, np.complex64, np.complex128]
    )  # fmt: skip
    leaves.append(hnp.arrays(tensor_dtypes, shapes).map(lambda a: torch.from_numpy(a.copy())))
    leaves.append(
        hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4))
        .map(lambda a: torch.from_numpy(a).transpose(0, 1).requires_grad_())
    )  # fmt: skip

values = st.recursive(
    st.one_of(*leaves),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(texts, st.integers()), inner, max_size=4),
    ),
    max_leaves=8,
)


# -- what an exported attribute may be -----------------------------------------------------------
def _valid_scalar(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, str):
        try:
            value.encode("utf-8")  # an OTLP string is UTF-8: a lone surrogate cannot go
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, float) and math.isfinite(value)


def _valid_attribute(value: Any) -> bool:
    if isinstance(value, tuple | list):  # OTel allows homogeneous sequences of scalars
        return all(_valid_scalar(v) for v in value) and len({type(v) for v in value}) <= 1
    return _valid_scalar(value)


def _invalid(attributes: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(attributes or {}).items() if not _valid_attribute(v)}


class _Dropped(logging.Handler):
    """Records the OTel SDK's "invalid attribute, dropped" warnings: nothing may be dropped."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def dropped() -> Iterator[_Dropped]:
    handler = _Dropped()
    logger = logging.getLogger("opentelemetry.attributes")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _check_exported(telemetry: Captured, dropped: _Dropped) -> None:
    """Every attribute of every span, event, metric point and log record is a valid value."""
    for span in telemetry.spans():
        assert not _invalid(span.attributes), (span.name, _invalid(span.attributes))
        for event in span.events:
            assert not _invalid(event.attributes), (span.name, event.name)
    for name in ("ml.inference.duration", "ml.input.nan_count", "ml.input.length",
                 "ml.prediction.value", "ml.prediction.count"):  # fmt: skip
        for attributes, _ in telemetry.points(name):
            assert not _invalid(attributes), (name, _invalid(attributes))
    for log in telemetry.logs():
        assert not _invalid(log.log_record.attributes), log.log_record.body
    assert dropped.messages == [], dropped.messages


def _fresh(telemetry: Captured) -> None:
    """One example's telemetry and internal errors only (the fixture lives across examples)."""
    telemetry.exporter.clear()
    telemetry.log_exporter.clear()
    _internal.reset_internal_errors()


# -- the properties ------------------------------------------------------------------------------
@RELAXED
@given(x=values)
def test_summaries_never_raise_and_give_valid_attributes(x: Any) -> None:
    for summary in (summarize_input(x), summarize_input(x, features=["a", "b", "c"]),
                    summarize_prediction(x), summarize_prediction(x, "regression"),
                    summarize_prediction(x, "classification", ["no", "yes"])):  # fmt: skip
        attributes = summary.attributes()
        assert not _invalid(attributes), attributes


class ModelError(Exception):
    pass


@RELAXED
@given(x=values, y=values, fails=st.booleans())
def test_monitored_calls_are_unchanged(
    telemetry: Captured, dropped: _Dropped, x: Any, y: Any, fails: bool
) -> None:
    _fresh(telemetry)
    received: list[Any] = []
    error = ModelError(y)

    @iw.monitor(model="prop", features=["a", "b", "c"], prediction_range=(0.0, 1.0),
                max_input_length=3)  # fmt: skip
    def predict(value: Any) -> Any:
        received.append(value)
        if fails:
            raise error
        return y

    with iw.context(request_id="r-1", weird=x):
        if fails:
            with pytest.raises(ModelError) as raised:
                predict(x)
            assert raised.value is error
        else:
            assert predict(x) is y
    assert received == [x] and received[0] is x
    assert iw.internal_errors() == {}
    _check_exported(telemetry, dropped)


@RELAXED
@given(x=values, y=values)
def test_the_explicit_form_records_anything(
    telemetry: Captured, dropped: _Dropped, x: Any, y: Any
) -> None:
    _fresh(telemetry)
    with iw.inference(model="prop", features=["a", "b"], class_names=["no", "yes"]) as rec:
        assert rec.record_input(x) is not None
        with rec.stage("postprocess"):
            rec.tag(weird=x, other=y)
        assert rec.record_prediction(y) is not None
    assert len(telemetry.spans("inference prop")) == 1
    assert iw.internal_errors() == {}
    _check_exported(telemetry, dropped)


@settings(RELAXED, max_examples=max(1, EXAMPLES // 4))
@given(x=values, y=values)
def test_async_and_generator_functions_are_unchanged(
    telemetry: Captured, dropped: _Dropped, x: Any, y: Any
) -> None:
    _fresh(telemetry)

    @iw.monitor(model="prop-async")
    async def predict_async(value: Any) -> Any:
        await asyncio.sleep(0)
        return y

    @iw.monitor(model="prop-stream")
    def stream(value: Any) -> Iterator[Any]:
        yield x
        yield y

    assert asyncio.run(predict_async(x)) is y
    items = list(stream(x))
    assert len(items) == 2 and items[0] is x and items[1] is y
    assert iw.internal_errors() == {}
    _check_exported(telemetry, dropped)


WATCHED_SCHEMA = iw.Schema(
    features=(
        iw.Feature(name="a", dtype="number", min=0.0, max=1.0, nullable=False),
        iw.Feature(name="b", allowed={"x", "y"}, pattern="[a-z]"),
        iw.Feature(name="c", min=-5.0),
    ),
    relations=(iw.Relation(left="a", op="<=", right="c"),),
)
_rng = np.random.default_rng(0)
WATCHED_BASELINE = iw.Profile.build(
    {"a": _rng.random(500), "b": _rng.choice(["x", "y"], 500), "c": _rng.normal(size=500)},
    predictions=_rng.random((500, 2)),
)


@pytest.mark.parametrize("telemetry", [{"strict": False}], indirect=True)
@settings(RELAXED, max_examples=max(1, EXAMPLES // 4))
@given(x=values, y=values)
def test_validated_and_drift_watched_calls_are_unchanged(
    telemetry: Captured, dropped: _Dropped, x: Any, y: Any
) -> None:
    """Feature validation on the hot path and drift windows (profiled at close) take anything."""
    _fresh(telemetry)

    @iw.monitor(model="prop-watch", features=["a", "b", "c"], schema=WATCHED_SCHEMA,
                baseline=WATCHED_BASELINE, window="1h")  # fmt: skip
    def predict(value: Any) -> Any:
        return y

    try:
        with iw.context(request_id="r-1"):
            assert predict(x) is y
        predict.drift.close_window()  # type: ignore[attr-defined]
    finally:
        predict.drift.stop()  # type: ignore[attr-defined]
    assert iw.internal_errors() == {}
    _check_exported(telemetry, dropped)


STATUSES = {"joined", "unknown", "expired", "duplicate", "invalid"}
# Where a caller's bad label or list is counted (and logged): nothing else may go wrong.
CALLERS_ERRORS = {"feedback.label", "ranking.record"}
maybe = st.one_of(st.none(), values)


@pytest.mark.parametrize("telemetry", [{"strict": False}], indirect=True)
@settings(RELAXED, max_examples=max(1, EXAMPLES // 4))
@given(y=values, items=values, positions=maybe, flags=maybe, label=maybe, clicked=maybe,
       request_id=st.one_of(st.just("r-1"), values))  # fmt: skip
def test_labels_clicks_and_ranked_lists_of_anything_never_raise(
    telemetry: Captured, dropped: _Dropped, y: Any, items: Any, positions: Any, flags: Any,
    label: Any, clicked: Any, request_id: Any,
) -> None:  # fmt: skip
    _fresh(telemetry)
    with iw.context(request_id="r-1"), iw.inference("prop-rank", class_names=["no", "yes"]) as rec:
        rec.record_prediction(y)
        rec.record_ranking(items, positions=positions, clicks=flags)
    assert iw.feedback(request_id, label) in STATUSES
    assert iw.feedback(request_id, clicks=clicked) in STATUSES
    assert iw.feedback(request_id, label, clicks=clicked) in STATUSES
    assert set(iw.internal_errors()) <= CALLERS_ERRORS, iw.internal_errors()
    _check_exported(telemetry, dropped)


def test_numpy_scalars_and_object_arrays_are_summarised() -> None:
    odd = np.array([1, "a", None, 2.5, float("nan")], dtype=object)
    summary = summarize_input(odd)  # one feature vector, as a 1-D list of values is
    assert (summary.batch_size, summary.nan_count, summary.unsupported) == (1, 2, 1)
    assert summarize_prediction(np.float32("nan")).nan_count == 1


def _is_array(kind: str) -> Any:
    return lambda v: isinstance(v, np.ndarray) and v.dtype.kind == kind


# Each kind the module docstring names, with the leaf that is meant to produce it. Searching the
# leaf rather than the whole mixture keeps the guard deterministic under any seed: a byte-string
# array is 1 draw in ~300 from the mixture but 1 in ~36 from `arrays`.
KINDS: dict[str, tuple[st.SearchStrategy[Any], Any]] = {
    "float array": (arrays, _is_array("f")),
    "complex array": (arrays, _is_array("c")),
    "object array": (arrays, _is_array("O")),
    "datetime array": (arrays, _is_array("M")),
    "structured array": (arrays, lambda v: v.dtype.names is not None),
    "byte-string array": (arrays, _is_array("S")),
    "0-d array": (arrays, lambda v: v.ndim == 0),
    "3-d array": (arrays, lambda v: v.ndim == 3),
    "empty array": (arrays, lambda v: v.size == 0 and v.ndim > 0),
    "mixed DataFrame": (frames(), lambda v: v.dtypes.nunique() > 1),
    "categorical column": (frames(), lambda v: "category" in set(map(str, v.dtypes))),
    "Int64 column": (frames(), lambda v: "Int64" in set(map(str, v.dtypes))),
    "duplicate columns": (frames(), lambda v: v.columns.has_duplicates),
    "Series": (leaves[3], lambda v: isinstance(v, pd.Series)),
    "dict rows": (records, lambda v: bool(v) and isinstance(v[0], dict)),
    "huge int": (scalars, lambda v: isinstance(v, int) and abs(v) >= 2**64),
    "bytes": (scalars, lambda v: isinstance(v, bytes)),
    "lone surrogate": (
        scalars,
        lambda v: isinstance(v, str) and any(0xD800 <= ord(c) < 0xE000 for c in v),
    ),
}
if torch is not None:
    KINDS["tensor"] = (leaves[6], lambda v: isinstance(v, torch.Tensor))


@pytest.mark.parametrize("kind", KINDS)
def test_the_strategies_reach_every_kind_of_value(kind: str) -> None:
    """A guard on the generators: each kind the docstring names is drawn (else this raises)."""
    # `find` stops at the first match, so the generous bound costs nothing when all is well.
    quick = settings(database=None, max_examples=20_000, suppress_health_check=list(HealthCheck))
    source, matches = KINDS[kind]
    find(source, matches, settings=quick)
