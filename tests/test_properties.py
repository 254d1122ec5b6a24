"""Property-based: whatever goes in or comes out, the call is unchanged and attributes are valid.

Runs in strict mode (an internal error would raise), so a failure here is a bug in inferwatch's
summaries. INFERWATCH_PROPERTY_EXAMPLES raises the number of examples (the long run: 10000).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import inferwatch as iw
from inferwatch.signals import summarize_input, summarize_prediction

EXAMPLES = int(os.environ.get("INFERWATCH_PROPERTY_EXAMPLES", "200"))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: huge ints too
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
)
arrays = hnp.arrays(
    dtype=st.one_of(
        hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.boolean_dtypes(),
        hnp.complex_number_dtypes(), hnp.unicode_string_dtypes(max_len=5),
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
)  # fmt: skip
values = st.recursive(
    st.one_of(scalars, arrays),
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=5),
    ),
    max_leaves=12,
)


def _valid_attribute(value: Any) -> bool:
    if isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, float) and math.isfinite(value)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=values)
def test_summaries_never_raise_and_give_valid_attributes(x: Any) -> None:
    for summary in (summarize_input(x), summarize_input(x, features=["a", "b", "c"]),
                    summarize_prediction(x), summarize_prediction(x, "regression"),
                    summarize_prediction(x, "classification", ["no", "yes"])):  # fmt: skip
        attributes = summary.attributes()
        assert all(_valid_attribute(v) for v in attributes.values()), attributes


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(x=values, y=values)
def test_monitored_calls_are_unchanged(telemetry: Any, x: Any, y: Any) -> None:
    @iw.monitor(model="prop", prediction_range=(0.0, 1.0), max_input_length=3)
    def predict(value: Any) -> Any:
        return y

    assert predict(x) is y
    assert iw.internal_errors() == {}


def test_numpy_scalars_and_object_arrays_are_summarised() -> None:
    odd = np.array([1, "a", None, 2.5, float("nan")], dtype=object)
    summary = summarize_input(odd)  # one feature vector, as a 1-D list of values is
    assert (summary.batch_size, summary.nan_count, summary.unsupported) == (1, 2, 1)
    assert summarize_prediction(np.float32("nan")).nan_count == 1
