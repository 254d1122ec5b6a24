"""What the hot path reads: one tracer, one meter, the instruments, built once per `configure()`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider

from inferwatch import errors, semconv
from inferwatch.attributes import AttributeValue
from inferwatch.export import aggregation, instruments
from inferwatch.export.counters import LocalCounter, Total
from inferwatch.version import __version__

OTHER_CLASS = "__other__"
T = TypeVar("T")


class ClassNames:
    """Class names per model on metrics: the first ``limit`` seen keep their name, later new
    ones are `OTHER_CLASS` (``configure(max_classes=...)``), so a class attribute stays bounded."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.known: dict[str, set[str]] = {}

    def name(self, model: str, label: str) -> str:
        known = self.known.setdefault(model, set())
        if label in known:
            return label
        if len(known) < self.limit:
            known.add(label)
            return label
        return OTHER_CLASS


class MetricSet:
    """One attribute set of an inference's core metrics, bound to their series once: what a
    call records without looking its attributes up again (`ModelSpec` keeps one per model and
    metric tags). Series are bound on first use, so a set never recorded exports nothing.
    """

    __slots__ = (
        "_classes",
        "_features",
        "_input_length",
        "_nan_count",
        "_negative_value",
        "_prediction_value",
        "_state",
        "attributes",
        "duration",
    )

    def __init__(self, state: State, attributes: dict[str, AttributeValue]) -> None:
        self._state = state
        self.attributes = attributes
        self.duration = state.duration.bind(attributes)
        self._prediction_value: aggregation.BoundRecording | None = None
        self._negative_value: aggregation.BoundRecording | None = None
        self._input_length: aggregation.BoundRecording | None = None
        self._nan_count: Total | None = None
        self._classes: dict[str, Total] = {}
        self._features: dict[str, Total] = {}

    def prediction_value(self, value: float) -> None:
        """A predicted value into `ml.prediction.value` (a negative one as its magnitude, with
        ``ml.prediction.sign``: OTel histograms take no negative values)."""
        if value >= 0:
            bound = self._prediction_value
            if bound is None:
                bound = self._prediction_value = self._state.prediction_value.bind(self.attributes)
            bound.record(value, _NO_EXEMPLAR)
            return
        bound = self._negative_value
        if bound is None:
            negative = {**self.attributes, semconv.ML_PREDICTION_SIGN: "negative"}
            bound = self._negative_value = self._state.prediction_value.bind(negative)
        bound.record(-value, _NO_EXEMPLAR)

    def input_length(self, length: float) -> None:
        bound = self._input_length
        if bound is None:
            bound = self._input_length = self._state.input_length.bind(self.attributes)
        bound.record(length, _NO_EXEMPLAR)

    def nan_count(self, count: int) -> None:
        total = self._nan_count
        if total is None:
            total = self._nan_count = self._state.nan_count.bind(self.attributes)
        total.add(count)

    def feature_nan_count(self, feature: str, count: int) -> None:
        """``count`` NaNs (or missing values) in ``feature``."""
        total = self._features.get(feature)
        if total is None:
            total = self._state.nan_count.bind({**self.attributes, semconv.ML_FEATURE: feature})
            if len(self._features) < _MAX_BOUND_FEATURES:  # names may come from request data
                self._features[feature] = total
        total.add(count)

    def prediction_class(self, label: str, count: int) -> None:
        """``count`` predictions of class ``label`` (already bounded by `State.class_label`)."""
        total = self._classes.get(label)
        if total is None:
            attributes = {**self.attributes, semconv.ML_PREDICTION_CLASS: label}
            total = self._classes[label] = self._state.prediction_count.bind(attributes)
        total.add(count)


_MAX_BOUND_FEATURES = 1024
# Exemplars (a trace id on a metric point) are worth their cost on latency, where "show me a slow
# request" is the question; per-value histograms are recorded in an empty context instead.
# (An empty Context is falsy and the SDK would fall back to the current one: name an invalid span.)
_NO_EXEMPLAR = trace.set_span_in_context(trace.INVALID_SPAN, Context())


class State:
    """Tracer, instruments and metric settings of one configuration."""

    def __init__(
        self,
        metric_tags: tuple[str, ...],
        max_classes: int,
        tracer_provider: trace.TracerProvider,
        meter_provider: metrics.MeterProvider,
        owned: list[Any],
        batch_processors: list[Any] | None = None,
        logger_provider: Any = None,
        metrics_exported: bool = True,
    ) -> None:
        self.metric_tags = metric_tags
        self.max_classes = max_classes
        self._owned = owned
        self._batch_processors = batch_processors or []
        self._class_names = ClassNames(max_classes)
        self.logger_provider = logger_provider
        self.metrics_exported = metrics_exported
        """Whether a reader takes the metrics out of the process (not only the alert evaluator):
        labels judged here are then counted where the metrics go (`ml.label.counted`)."""
        self.tracer = tracer_provider.get_tracer(semconv.INSTRUMENTATION_NAME, __version__)
        meter = self.meter = meter_provider.get_meter(semconv.INSTRUMENTATION_NAME, __version__)
        aggregation.attach(meter, meter_provider)  # its histograms are kept in the process
        self.duration = instruments.histogram(meter, semconv.METRIC_INFERENCE_DURATION)
        self.stage_duration = instruments.histogram(meter, semconv.METRIC_STAGE_DURATION)
        self.nan_count = LocalCounter(meter, semconv.METRIC_INPUT_NAN_COUNT)
        self.input_length = instruments.histogram(meter, semconv.METRIC_INPUT_LENGTH)
        self.prediction_value = instruments.histogram(meter, semconv.METRIC_PREDICTION_VALUE)
        self.prediction_count = LocalCounter(meter, semconv.METRIC_PREDICTION_COUNT)
        internal_errors = instruments.counter(meter, semconv.METRIC_INTERNAL_ERRORS)
        self.count_internal_error = lambda where: internal_errors.add(
            1, {semconv.ATTR_INTERNAL_WHERE: where}
        )
        self._bound: dict[Callable[[metrics.Meter], Any], Any] = {}
        self._bind_lock = threading.Lock()
        for factory in list(_factories):
            self.bound(factory)

    def bound(self, factory: Callable[[metrics.Meter], T]) -> T:
        """The instruments `factory` made on this configuration's meter (made on first use)."""
        try:
            return self._bound[factory]  # type: ignore[no-any-return]
        except KeyError:
            pass
        with self._bind_lock:
            if factory not in self._bound:
                self._bound[factory] = factory(self.meter)
            return self._bound[factory]  # type: ignore[no-any-return]

    def class_label(self, model: str, label: str) -> str:
        """The label while the model has few distinct ones; `__other__` for new ones after that."""
        return self._class_names.name(model, label)

    def flush(self, timeout_ms: float) -> bool:
        """Export everything recorded so far (spans and logs, then a metric collection), within
        ``timeout_ms``; the configuration stays. False when the deadline passed first."""
        deadline = time.monotonic() + timeout_ms / 1000

        def remaining_ms() -> int:
            return int(max(0.0, (deadline - time.monotonic()) * 1000))

        done = True
        # The owned providers flush their batch processors, within the deadline given.
        for provider in self._owned:
            try:
                done = provider.force_flush(timeout_millis=remaining_ms()) is not False and done
            except Exception as exc:  # a reader past the deadline: the environment, no bug
                errors.log_internal_error("flush", exc)
                done = False
        return done

    def shutdown(self, timeout_ms: float = 30_000) -> None:
        """Flush and stop what this configuration owns, all within one deadline."""
        deadline = time.monotonic() + timeout_ms / 1000

        def remaining_ms() -> float:
            return max(0.0, (deadline - time.monotonic()) * 1000)

        # Provider shutdowns of spans and logs take no timeout: bound their batch processors.
        for processor in self._batch_processors:
            _shutdown_within(processor, remaining_ms())
        for provider in self._owned:
            try:
                if isinstance(provider, MeterProvider):
                    provider.shutdown(timeout_millis=remaining_ms())
                else:
                    provider.shutdown()
            except Exception as exc:  # e.g. a reader past the deadline: the environment, no bug
                errors.log_internal_error("shutdown", exc)


def _shutdown_within(processor: Any, timeout_ms: float) -> None:
    """Shut a Batch{Span,LogRecord}Processor down within `timeout_ms` (theirs wait up to 30 s)."""
    try:
        inner = getattr(processor, "_batch_processor", None)
        if inner is not None and hasattr(inner, "shutdown"):
            inner.shutdown(timeout_millis=int(timeout_ms))
            # Past the deadline the SDK abandons what is still queued, uncounted: count it.
            left = len(getattr(inner, "_queue", ()))
            if left:
                what = str(getattr(inner, "_exporting", "record")).lower()
                errors.log_internal_error(
                    "shutdown", TimeoutError(f"{left} {what}s still queued at the deadline: lost")
                )
        else:  # an SDK without the shared batch processor: its own bound
            processor.shutdown()
    except Exception as exc:
        errors.log_internal_error("shutdown", exc)


_state: State | None = None
_factories: list[Callable[[metrics.Meter], Any]] = []


def bind_instruments(factory: Callable[[metrics.Meter], T]) -> Callable[[], T]:
    """How a feature gets its instruments: made by `factory` on every configuration's meter.

    >>> label_instruments = bind_instruments(LabelInstruments)   # at import of the feature
    >>> label_instruments().delay.record(3.2, attributes)         # the current configuration's

    An instrument stays bound to the provider it was created on, so each `configure()` makes a
    new set; the returned getter always hands out the current one.
    """
    _factories.append(factory)
    if _state is not None:
        _state.bound(factory)
    return lambda: get_state().bound(factory)


def set_state(state: State | None) -> None:
    global _state
    _state = state
    errors.set_count_hook(state.count_internal_error if state is not None else None)


def get_state() -> State:
    """The configured state, or one over the global OTel providers when never configured."""
    state = _state
    if state is None:
        state = State((), 100, trace.get_tracer_provider(), metrics.get_meter_provider(), [])
        set_state(state)
    return state
