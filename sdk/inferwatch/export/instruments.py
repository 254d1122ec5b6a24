"""Instruments created from the table in `inferwatch.semconv`: no creation site spells a unit.

Each function makes the instrument ``semconv.INSTRUMENTS[name]`` describes, with its unit,
description and bucket boundaries, and refuses a name the table does not have or describes as
another instrument, so what is exported and what is documented (and alerted on) cannot drift
apart.

>>> duration = instruments.histogram(meter, semconv.METRIC_INFERENCE_DURATION)
>>> instruments.observable_gauge(meter, semconv.METRIC_DRIFT_SCORE, [observe])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackT

from inferwatch import semconv
from inferwatch.attributes import AttributeValue
from inferwatch.export import aggregation
from inferwatch.semconv import InstrumentSpec, InstrumentType


def spec(name: str, instrument: InstrumentType) -> InstrumentSpec:
    """The table's entry for ``name``, which must be made as ``instrument``.

    >>> spec("ml.ranking.ctr", "ObservableGauge").unit
    '1'
    """
    found = semconv.INSTRUMENTS.get(name)
    if found is None:
        raise KeyError(f"{name!r} is not in semconv.INSTRUMENTS: add it there first")
    if found.instrument != instrument:
        raise ValueError(
            f"semconv.INSTRUMENTS makes {name!r} as {found.instrument}, not {instrument}"
        )
    return found


def histogram(meter: metrics.Meter, name: str) -> aggregation.Recording:
    """The histogram ``name``, with the table's unit, description and bucket boundaries.

    >>> histogram(meter, semconv.METRIC_LABEL_DELAY).record(3.2, attributes)
    """
    found = spec(name, "Histogram")
    bridge = aggregation.bridge_of(meter)
    if bridge is not None:  # inferwatch's own meter: aggregated in the process
        return bridge.histogram(found)
    return _ApiHistogram(
        meter.create_histogram(
            name,
            unit=found.unit,
            description=found.description,
            explicit_bucket_boundaries_advisory=found.buckets,
        )
    )


class _ApiHistogram:
    """A histogram of a provider that is not the SDK's (none configured yet: the API's proxy),
    with the `bind` of an aggregated one."""

    __slots__ = ("_histogram",)

    def __init__(self, histogram: metrics.Histogram) -> None:
        self._histogram = histogram

    def record(
        self,
        amount: float,
        attributes: Mapping[str, Any] | None = None,
        context: Context | None = None,
    ) -> None:
        self._histogram.record(amount, attributes, context=context)

    def bind(self, attributes: Mapping[str, AttributeValue]) -> _ApiBound:
        return _ApiBound(self._histogram, attributes)


class _ApiBound:
    __slots__ = ("_attributes", "_histogram")

    def __init__(
        self, histogram: metrics.Histogram, attributes: Mapping[str, AttributeValue]
    ) -> None:
        self._histogram = histogram
        self._attributes = attributes

    def record(self, amount: float, context: Context | None = None) -> None:
        self._histogram.record(amount, self._attributes, context=context)


def counter(meter: metrics.Meter, name: str) -> metrics.Counter:
    """The (synchronous) counter ``name``, with the table's unit and description.

    >>> counter(meter, semconv.METRIC_INTERNAL_ERRORS).add(1, {"inferwatch.where": "configure"})
    """
    found = spec(name, "Counter")
    return meter.create_counter(name, unit=found.unit, description=found.description)


def observable_counter(
    meter: metrics.Meter, name: str, callbacks: Sequence[CallbackT]
) -> metrics.ObservableCounter:
    """The observable counter ``name``: ``callbacks`` report its cumulative totals.

    >>> observable_counter(meter, semconv.METRIC_LABEL_UNJOINED, [observe_unjoined])
    """
    found = spec(name, "ObservableCounter")
    return meter.create_observable_counter(
        name, callbacks=callbacks, unit=found.unit, description=found.description
    )


def observable_gauge(
    meter: metrics.Meter, name: str, callbacks: Sequence[CallbackT]
) -> metrics.ObservableGauge:
    """The observable gauge ``name``: ``callbacks`` report its values at each collection.

    >>> observable_gauge(meter, semconv.METRIC_RANKING_GINI, [observe_gini])
    """
    found = spec(name, "ObservableGauge")
    return meter.create_observable_gauge(
        name, callbacks=callbacks, unit=found.unit, description=found.description
    )
