"""Schemas in the serving path: violations on the span and metric; strict mode refuses the call."""

from __future__ import annotations

import numpy as np
import pytest

import inferwatch as iw
from tests.conftest import Captured

FEATURES = ["min_price", "max_price", "country"]
SCHEMA = iw.Schema(
    features=(
        iw.Feature(name="min_price", dtype="number", min=0, nullable=False),
        iw.Feature(name="max_price", dtype="number", min=0),
        iw.Feature(name="country", allowed=frozenset({"de", "fr"})),
    ),
    relations=(iw.Relation(left="min_price", op="<=", right="max_price"),),
)


def test_violations_are_counted_by_feature_and_rule(telemetry: Captured) -> None:
    @iw.monitor(model="pricing", schema=SCHEMA)
    def predict(row: dict[str, object]) -> float:
        return 1.0

    assert predict({"min_price": 5.0, "max_price": 3.0, "country": "it"}) == 1.0
    assert predict({"min_price": 1.0, "max_price": 3.0, "country": "de"}) == 1.0
    bad, good = telemetry.spans("inference pricing")
    assert (bad.attributes or {})["ml.input.violations"] == 2
    assert "ml.input.violations" not in (good.attributes or {})
    points = {
        (a["ml.feature"], a["ml.validation.rule"]): p.value
        for a, p in telemetry.points("ml.input.violations")
    }
    assert points == {("country", "allowed"): 1, ("min_price<=max_price", "relation"): 1}


def test_strict_schema_refuses_the_call(telemetry: Captured) -> None:
    called = []

    @iw.monitor(model="pricing", features=FEATURES, schema=SCHEMA, strict_schema=True)
    def predict(X: np.ndarray) -> np.ndarray:
        called.append(True)
        return X[:, 0]

    with pytest.raises(iw.SchemaViolationError):
        predict(np.array([[-1.0, 2.0, np.nan]]))
    assert called == []
    span = telemetry.span("inference pricing")
    assert (span.attributes or {})["error.type"] == "inferwatch.validation.SchemaViolationError"
    assert iw.current_request_id() is None


def test_schema_from_a_profile_then_edited(telemetry: Captured) -> None:
    rng = np.random.default_rng(0)
    profile = iw.Profile.build(rng.uniform(0, 10, size=(1000, 2)), columns=["a", "b"])
    schema = iw.Schema.from_profile(profile).with_feature("b", max=5.0)

    @iw.monitor(model="m", features=["a", "b"], schema=schema)
    def predict(X: np.ndarray) -> int:
        return len(X)

    predict(np.array([[1.0, 9.0], [2.0, 1.0]]))
    assert (telemetry.span("inference m").attributes or {})["ml.input.violations"] == 1


def test_schema_must_be_a_schema() -> None:
    with pytest.raises(TypeError, match=r"iw\.Schema"):
        iw.monitor(model="m", schema={"a": "number"})  # type: ignore[arg-type]
