"""Validation on the serving path: `monitor(schema=...)` checks every input against the schema.

Violations go on the span (``ml.input.violations``) and into a counter by feature and rule;
with ``strict_schema=True`` the call is refused with `SchemaViolationError` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import metrics

from inferwatch import semconv
from inferwatch.attributes import AttributeValue
from inferwatch.export.counters import LocalCounter
from inferwatch.export.state import bind_instruments
from inferwatch.instrument.observers import FollowUp, Observer
from inferwatch.validation.schema import Schema
from inferwatch.validation.violations import SchemaViolationError

if TYPE_CHECKING:
    from inferwatch.instrument.inference import Inference, ModelSpec
    from inferwatch.summaries.inputs import InputSummary


def _violations_counter(meter: metrics.Meter) -> LocalCounter:
    return LocalCounter(meter, semconv.METRIC_INPUT_VIOLATIONS)


violations_counter = bind_instruments(_violations_counter)


class ValidationObserver(Observer):
    __slots__ = ("features", "schema", "strict")
    name = "validation"

    def __init__(self, schema: Schema, features: list[str] | None, strict: bool) -> None:
        self.schema = schema
        self.features = features
        self.strict = strict

    def on_input(
        self,
        rec: Inference,
        x: Any,
        summary: InputSummary | None,
        attributes: dict[str, AttributeValue],
    ) -> FollowUp | None:
        violations = self.schema.check(x, self.features)
        if violations.total:
            attributes.update(violations.attributes())
            counter = violations_counter()
            attrs = rec.metric_attributes()
            for count, labels in violations.metric_points():
                counter.add(count, {**attrs, **labels})
        if self.strict and (violations.total or violations.unsupported):
            rec.refusal = SchemaViolationError(violations)
        return None


def observer(spec: ModelSpec) -> ValidationObserver:
    schema = spec.options["schema"]
    if not isinstance(schema, Schema):
        raise TypeError(f"schema must be an iw.Schema, got {type(schema).__name__}")
    return ValidationObserver(schema, spec.features, bool(spec.options["strict_schema"]))
