"""One inference as telemetry: `Inference` opens a span, records signals, ends with metrics.

`iw.inference(...)` hands it to the user as ``rec``; `iw.monitor` drives the same object around a
function call. Every method swallows its own errors (`inferwatch.errors`): telemetry never breaks
the model call it observes. What features do with an inference (drift windows, validation,
delayed labels, ranking) they do as observers of its model (`inferwatch.instrument.observers`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from inferwatch import forks, semconv
from inferwatch.attributes import AttributeValue, qualified_name
from inferwatch.errors import contained, is_strict, log_internal_error
from inferwatch.export import lifecycle, privacy
from inferwatch.export.state import MetricSet, State, get_state
from inferwatch.instrument import observers
from inferwatch.instrument.context import (
    Scope,
    current_scope,
    enter_scope,
    exit_scope,
    new_request_id,
)
from inferwatch.instrument.observers import FollowUp, Observer
from inferwatch.summaries.arrays import sample
from inferwatch.summaries.data_checks import DataChecks
from inferwatch.summaries.inputs import InputSummary, summarize_input
from inferwatch.summaries.predictions import PredictionKind, PredictionSummary, summarize_prediction

if TYPE_CHECKING:
    from inferwatch.drift.profile import Profile
    from inferwatch.validation import Schema

NO_INPUT: Any = object()
"""Marker: `Inference.start` was given no input to summarise."""
_MAX_CACHED_ATTRIBUTE_SETS = 4096


OutputKind = Literal["auto", "regression", "classification", "ranking"]
"""What a model returns: `PredictionKind` (summarised predictions), or a ranked list of items."""


class ModelSpec:
    """What is fixed per model: names, static attributes, its observers, metric attribute sets.

    ``options`` are the feature options of `monitor` / `inference` (``baseline``, ``window``,
    ``schema``, ``strict_schema``); the features that provide them read them from here.
    """

    __slots__ = (
        "_by_option",
        "_generation",
        "_last",
        "_metrics",
        "_state",
        "checks",
        "class_names",
        "features",
        "input_observers",
        "label_observers",
        "model",
        "observers",
        "options",
        "prediction_kind",
        "prediction_observers",
        "ranking",
        "span_attributes",
        "span_name",
        "version",
    )

    def __init__(
        self,
        model: str,
        version: str | None = None,
        *,
        features: Sequence[str] | None = None,
        prediction_kind: OutputKind = "auto",
        class_names: Sequence[str] | None = None,
        max_input_length: int | None = None,
        long_input_quantile: float | None = 0.999,
        prediction_range: tuple[float, float] | None = None,
        baseline: Profile | None = None,
        window: str | float = "5m",
        schema: Schema | None = None,
        strict_schema: bool = False,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise TypeError(f"model must be a non-empty string, got {model!r}")
        if prediction_kind not in ("auto", "regression", "classification", "ranking"):
            raise ValueError(
                f"prediction_kind must be 'auto', 'regression', 'classification' or 'ranking', "
                f"got {prediction_kind!r}"
            )
        self.ranking = prediction_kind == "ranking"
        """The output is a ranked list of item ids: recorded by `Inference.record_ranking`."""
        self.model = model
        self.version = None if version is None else str(version)
        self.features = None if features is None else [str(f) for f in features]
        self.prediction_kind: PredictionKind = "auto" if self.ranking else prediction_kind  # type: ignore[assignment]
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.span_name = semconv.SPAN_INFERENCE.format(model=model)
        self.span_attributes: dict[str, AttributeValue] = {semconv.ML_MODEL_NAME: model}
        if self.version is not None:
            self.span_attributes[semconv.ML_MODEL_VERSION] = self.version
        self.options: dict[str, Any] = {
            "baseline": baseline,
            "window": window,
            "schema": schema,
            "strict_schema": strict_schema,
        }
        self.checks = DataChecks(
            model,
            max_input_length=max_input_length,
            long_input_quantile=long_input_quantile,
            prediction_range=prediction_range,
        )
        self._by_option: dict[str, Observer | None] = {}
        self.observers: tuple[Observer, ...] = ()
        self.input_observers: tuple[Observer, ...] = ()
        self.prediction_observers: tuple[Observer, ...] = ()
        self.label_observers: tuple[Observer, ...] = ()
        # Checks first: their span attributes went in before any feature's.
        declared: list[Observer | None] = [self.checks]
        for option in ("baseline", "schema"):
            if self.options[option] is not None:
                declared.append(self._build(option))
        if self.ranking:
            declared.append(self._build("ranking"))
        self._observe([o for o in declared if o is not None] + observers.build_defaults(self))
        self._state: State | None = None
        self._generation = forks.generation
        self._metrics: dict[tuple[Any, ...], MetricSet] = {}
        self._last: tuple[Any, State, int, MetricSet] | None = None
        """The scope's tags, configuration and fork generation of the last set handed out."""

    def _build(self, option: str) -> Observer | None:
        observer = self._by_option[option] = observers.build(option, self)
        return observer

    def _observe(self, all_observers: list[Observer]) -> None:
        self.observers = tuple(all_observers)
        self.input_observers = tuple(o for o in all_observers if o.observes("on_input"))
        self.prediction_observers = tuple(o for o in all_observers if o.observes("on_prediction"))
        self.label_observers = tuple(o for o in all_observers if o.observes("on_label"))

    def observer(self, option: str) -> Observer | None:
        """The observer provided for ``option``, built now if the model was declared without it
        (``rec.record_ranking`` on a model not declared ``prediction_kind="ranking"``)."""
        found = self._by_option.get(option, False)
        if found is False:
            found = self._build(option)
            if found is not None:
                self._observe([*self.observers, found])
        return found  # type: ignore[return-value]

    def exposed(self) -> dict[str, object]:
        """What the observers expose on a decorated function (``predict.drift``)."""
        found: dict[str, object] = {}
        for observer in self.observers:
            found.update(observer.exposed())
        return found

    @property
    def drift(self) -> Any:
        """The model's live drift windows (``predict.drift``), or None without a baseline."""
        return self.exposed().get("drift")

    def metrics(self, state: State, tags: Any, error_type: str | None = None) -> MetricSet:
        """This model's metrics for a scope's tags: model, version, low-cardinality tags, error.

        One set per distinct attributes, bound once; the last one is handed out again for the
        same tags without building its key (the calls of one request scope).
        """
        last = self._last
        if (
            last is not None
            and last[0] is tags
            and last[1] is state
            and last[2] == forks.generation
            and error_type is None
        ):
            return last[3]
        if state is not self._state or self._generation != forks.generation:
            # Reconfigured (metric tags may differ), or a forked child (new series).
            self._metrics = {}
            self._state = state
            self._generation = forks.generation
        metric_tags = state.metric_tags
        values = tuple(map(tags.get, metric_tags)) if metric_tags else ()
        key = (values, error_type)
        found = self._metrics.get(key)
        if found is None:
            attrs = dict(self.span_attributes)
            for name, value in zip(metric_tags, values, strict=True):
                if value is not None:
                    attrs[name] = value
            if error_type is not None:
                attrs[semconv.ERROR_TYPE] = error_type
            found = MetricSet(state, attrs)
            if len(self._metrics) < _MAX_CACHED_ATTRIBUTE_SETS:
                self._metrics[key] = found
        if error_type is None:
            self._last = (tags, state, forks.generation, found)
        return found


class Inference:
    """A single inference: a span plus its signals and metrics.

    >>> with iw.inference(model="fraud", version="3.1") as rec:
    ...     rec.record_input(X); y = model(X); rec.record_prediction(y)
    """

    __slots__ = (
        "_context",
        "_metric_tags",
        "_metrics",
        "_otel_token",
        "_own_scope",
        "_scope_token",
        "_spec",
        "_start",
        "_state",
        "_tags",
        "refusal",
        "request_id",
        "span",
    )

    def __init__(self, spec: ModelSpec) -> None:
        self._spec = spec
        self.span: Span = trace.INVALID_SPAN
        self.request_id: str | None = None
        self.refusal: BaseException | None = None
        """Set by an observer (``monitor(strict_schema=True)``): raised instead of the call."""
        self._state: State | None = None
        self._tags: Any = {}
        self._metric_tags: dict[str, AttributeValue] | None = None
        self._metrics: MetricSet | None = None
        self._otel_token: object | None = None
        self._context: Context | None = None
        self._scope_token: Token[Scope | None] | None = None
        self._own_scope: Scope | None = None
        self._start = 0.0

    # -- lifecycle (used by `monitor` and by the context-manager form) -----------------------

    def start(self, *, activate: bool = True, x: Any = NO_INPUT) -> None:
        """Open the span; with ``activate`` make it (and the request scope) current.

        ``x``, when given, is summarised first so its attributes go in with the span's own.
        """
        try:
            if lifecycle.pending:  # e.g. a forked worker: flush on SIGTERM from here on
                lifecycle.arm_pending()
            state = self._state = get_state()
            spec = self._spec
            scope = current_scope()
            if scope is None:  # a request id for every inference, even outside `iw.context`
                scope = self._own_scope = Scope(new_request_id(), {})
                if activate:
                    self._scope_token = enter_scope(scope)
            self.request_id = scope.request_id
            self._tags = scope.tags
            # Everything known now goes into one attribute set: cheaper than setting it later.
            attributes = {**spec.span_attributes, **scope.attributes}
            summary = None
            follow_ups: list[FollowUp] = []
            if x is not NO_INPUT:
                summary = self._summarize_input(x, None)
                if summary is not None:
                    attributes.update(summary.attributes())
                follow_ups = self._observe_input(x, summary, attributes)
            parent = None
            if (
                scope.caller is not None
                and not trace.get_current_span().get_span_context().is_valid
            ):
                parent = scope.caller  # the caller's span (`from_headers`), no span current
            self.span = state.tracer.start_span(
                spec.span_name, context=parent, attributes=attributes
            )
            # Metrics name this context explicitly so exemplars link them to the span.
            self._context = trace.set_span_in_context(self.span)
            if activate:
                self._otel_token = otel_context.attach(self._context)
            if summary is not None:
                self._record_input_metrics(summary)
            for follow_up in follow_ups:
                follow_up()
        except Exception as exc:
            if is_strict():  # about to raise: leave no context behind
                self._detach()
            contained.error("inference.start", exc)
        self._start = time.perf_counter()

    def finish(self, exc: BaseException | None = None, result: Any = NO_INPUT) -> None:
        """End the span, record the duration, leave the context. Never raises.

        ``result``, when given, is recorded as the prediction after the clock has stopped.
        """
        duration = time.perf_counter() - self._start
        strict_error: Exception | None = None
        if result is not NO_INPUT:
            try:
                self.record_prediction(result)
            except Exception as error:  # strict mode only: raise it once the context is left
                strict_error = error
        try:
            self._detach()
            state = self._state
            if state is None:
                return
            span = self.span
            error_type = None
            if exc is not None:
                error_type = qualified_name(type(exc))
                _record_error(span, exc, error_type)
            span.end()
            self.metrics(error_type).duration.record(duration, self._context)
        except Exception as error:
            contained.error("inference.finish", error)
        if strict_error is not None:
            raise strict_error

    def _detach(self) -> None:
        if self._otel_token is not None:
            token, self._otel_token = self._otel_token, None
            otel_context.detach(token)  # type: ignore[arg-type]
        if self._scope_token is not None:
            scope_token, self._scope_token = self._scope_token, None
            exit_scope(scope_token)

    def enter_step(self) -> tuple[object, Token[Scope | None] | None]:
        """Make the span (and its own scope) current for one step of a generator."""
        scope = self._own_scope
        scope_token = enter_scope(scope) if scope is not None else None
        context = self._context or trace.set_span_in_context(self.span)
        return otel_context.attach(context), scope_token

    @staticmethod
    def leave_step(tokens: tuple[object, Token[Scope | None] | None]) -> None:
        otel_context.detach(tokens[0])  # type: ignore[arg-type]
        if tokens[1] is not None:
            exit_scope(tokens[1])

    def metrics(self, error_type: str | None = None) -> MetricSet:
        """This inference's metric set: model, version, declared tags (and error)."""
        if error_type is None and self._metrics is not None:
            return self._metrics
        assert self._state is not None
        found = self._spec.metrics(self._state, self._tags, error_type)
        if self._metric_tags:
            found = MetricSet(self._state, {**found.attributes, **self._metric_tags})
        if error_type is None:
            self._metrics = found
        return found

    def metric_attributes(self, error_type: str | None = None) -> dict[str, AttributeValue]:
        """This inference's metric attributes: model, version, declared tags (and error)."""
        return self.metrics(error_type).attributes

    # -- what the user records ---------------------------------------------------------------

    def record_input(self, x: Any, features: Sequence[str] | None = None) -> InputSummary | None:
        """Summarise an input: NaN counts (per feature on metrics), batch size, lengths. The
        summary is read-only (one request's row shares it with every row of its shape)."""
        try:
            state = self._state
            summary = self._summarize_input(x, features)
            if state is None or summary is None:
                return None
            attributes = summary.attributes()
            follow_ups = self._observe_input(x, summary, attributes)
            self.span.set_attributes(attributes)
            self._record_input_metrics(summary)
            for follow_up in follow_ups:
                follow_up()
            return summary
        except Exception as exc:
            contained.error("inference.record_input", exc)
            return None

    def _observe_input(
        self, x: Any, summary: InputSummary | None, attributes: dict[str, AttributeValue]
    ) -> list[FollowUp]:
        follow_ups = []
        for observer in self._spec.input_observers:
            try:
                follow_up = observer.on_input(self, x, summary, attributes)
            except Exception as exc:
                contained.error(f"observer.{observer.name}", exc)
                continue
            if follow_up is not None:
                follow_ups.append(follow_up)
        return follow_ups

    def _summarize_input(self, x: Any, features: Sequence[str] | None) -> InputSummary | None:
        try:
            return summarize_input(x, features if features is not None else self._spec.features)
        except Exception as exc:
            contained.error("inference.record_input", exc)
            return None

    def _record_input_metrics(self, summary: InputSummary) -> None:
        metrics = self.metrics()
        if summary.nan_by_feature:
            for feature, count in summary.nan_by_feature.items():
                metrics.feature_nan_count(feature, count)
        elif summary.nan_count:
            metrics.nan_count(summary.nan_count)
        if summary.lengths:
            for length in sample(summary.lengths):
                metrics.input_length(length)

    def record_prediction(self, y: Any) -> PredictionSummary | None:
        """Summarise a prediction: values into a histogram, classes into a counter.

        For a model declared with ``prediction_kind="ranking"``, ``y`` is the ranked list of
        item ids, best first, and goes to `record_ranking` instead (returns None).
        """
        if self._spec.ranking:
            self.record_ranking(y)
            return None
        try:
            state = self._state
            if state is None:
                return None
            spec = self._spec
            summary = summarize_prediction(
                y, spec.prediction_kind, spec.class_names, spec.checks.prediction_range
            )
            _set_attributes(self.span, summary.attributes())
            metrics = self.metrics()
            for value in summary.values:
                metrics.prediction_value(value)
            for label, count in summary.classes:
                metrics.prediction_class(state.class_label(spec.model, label), count)
            for observer in spec.prediction_observers:
                try:
                    observer.on_prediction(self, y, summary)
                except Exception as exc:
                    contained.error(f"observer.{observer.name}", exc)
            return summary
        except Exception as exc:
            contained.error("inference.record_prediction", exc)
            return None

    def record_stream(self, items: int, first_item_s: float | None, completed: bool) -> None:
        """What a streaming (generator) inference yielded: item count, time to first item."""
        with contained("inference.record_stream"):
            attrs: dict[str, AttributeValue] = {
                semconv.ML_STREAM_ITEMS: items,
                semconv.ML_STREAM_COMPLETED: completed,
            }
            if first_item_s is not None:
                attrs[semconv.ML_STREAM_TIME_TO_FIRST_ITEM] = first_item_s
            self.span.set_attributes(attrs)

    def record_ranking(self, items: Any, positions: Any = None, clicks: Any = None) -> None:
        """The ranked list this inference served, best first, for the feedback-loop signals.

        >>> rec.record_ranking(["i42", "i7", "i3"], clicks=[False, True, False])

        It feeds the model's ranking windows (coverage, exposure Gini, long-tail share, CTR by
        position: see `inferwatch.ranking`) and sets ``ml.ranking.size`` on the span. The list
        is remembered under the request id, so ``iw.feedback(request_id, clicks=[item])`` can
        report a click later.
        """
        with contained("inference.record_ranking"):
            observer = self._spec.observer("ranking")
            if observer is not None:
                observer.on_ranking(self, items, positions, clicks)

    def tag(self, **tags: Any) -> None:
        """Add tags to this inference's span (and to its metrics, for declared metric tags)."""
        with contained("inference.tag"):
            cleaned = privacy.scrub_tags(tags)  # monitor(tags_from=...) arrives here too
            self.span.set_attributes(cleaned)
            if self._state is not None:
                declared = {k: v for k, v in cleaned.items() if k in self._state.metric_tags}
                if declared:
                    self._metric_tags = {**(self._metric_tags or {}), **declared}
                    self._metrics = None

    def stage(self, name: str) -> Stage:
        """A timed child span for one step: ``with rec.stage("postprocess"): ...``."""
        return Stage(self, str(name))

    # -- context-manager form ----------------------------------------------------------------

    def __enter__(self) -> Inference:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(exc)

    async def __aenter__(self) -> Inference:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(exc)


class Stage:
    """A child span and a `ml.stage.duration` point for one step of an inference."""

    __slots__ = ("_inference", "_name", "_span", "_start", "_token")

    def __init__(self, inference: Inference, name: str) -> None:
        self._inference = inference
        self._name = name
        self._span: Span = trace.INVALID_SPAN
        self._token: object | None = None
        self._start = 0.0

    def __enter__(self) -> Span:
        with contained("stage.start"):
            state = self._inference._state
            if state is not None:
                scope = current_scope()  # stamped here: the scope processor skips our spans
                self._span = state.tracer.start_span(
                    semconv.SPAN_STAGE.format(stage=self._name),
                    context=trace.set_span_in_context(self._inference.span),
                    attributes={
                        **(scope.attributes if scope is not None else {}),
                        semconv.ML_STAGE_NAME: self._name,
                    },
                )
                self._token = otel_context.attach(trace.set_span_in_context(self._span))
        self._start = time.perf_counter()
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        duration = time.perf_counter() - self._start
        with contained("stage.finish"):
            if self._token is not None:
                otel_context.detach(self._token)  # type: ignore[arg-type]
                self._token = None
            state = self._inference._state
            if state is None:
                return
            attrs = {**self._inference.metric_attributes(), semconv.ML_STAGE_NAME: self._name}
            if exc is not None:
                error_type = qualified_name(type(exc))
                _record_error(self._span, exc, error_type)
                attrs[semconv.ERROR_TYPE] = error_type
            self._span.end()
            state.stage_duration.record(duration, attrs)

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def inference(
    model: str,
    version: str | None = None,
    *,
    features: Sequence[str] | None = None,
    prediction_kind: OutputKind = "auto",
    class_names: Sequence[str] | None = None,
    max_input_length: int | None = None,
    long_input_quantile: float | None = 0.999,
    prediction_range: tuple[float, float] | None = None,
    baseline: Profile | None = None,
    window: str | float = "5m",
    schema: Schema | None = None,
) -> Inference:
    """The explicit form of `monitor`: a context manager yielding the record (sync or async).

    >>> with iw.inference(model="fraud", version="3.1") as rec:
    ...     rec.record_input(X); rec.record_prediction(model(X))
    """
    key = (
        model,
        version,
        tuple(features or ()),
        prediction_kind,
        tuple(class_names or ()),
        max_input_length,
        long_input_quantile,
        prediction_range,
        id(baseline),
        window,
        id(schema),
    )
    spec = _specs.get(key)
    if spec is None:
        spec = ModelSpec(
            model,
            version,
            features=features,
            prediction_kind=prediction_kind,
            class_names=class_names,
            max_input_length=max_input_length,
            long_input_quantile=long_input_quantile,
            prediction_range=prediction_range,
            baseline=baseline,
            window=window,
            schema=schema,
        )
        if len(_specs) < _MAX_CACHED_ATTRIBUTE_SETS:
            _specs[key] = spec
    return Inference(spec)


# One spec per distinct `inference(...)` arguments, so its caches outlive a single call.
_specs: dict[tuple[Any, ...], ModelSpec] = {}


def _set_attributes(span: Span, attributes: Mapping[str, Any]) -> None:
    """Attributes added to a started span. A single prediction adds one or two: one at a time,
    which skips the SDK's check of the mapping (the dearest part of ``set_attributes`` then)."""
    if len(attributes) > 2:
        span.set_attributes(attributes)
        return
    for key, value in attributes.items():
        span.set_attribute(key, value)


def _record_error(span: Span, exc: BaseException, error_type: str) -> None:
    span.set_status(Status(StatusCode.ERROR, _message(exc)))
    span.set_attribute(semconv.ERROR_TYPE, error_type)
    # The exception's own text may quote user data: scrubbed like any string value. (Not the
    # SDK's `record_exception`: it formats the traceback again, the slow way.)
    attributes: dict[str, AttributeValue] = {
        **privacy.active().exception_attributes(exc),
        semconv.EXCEPTION_ESCAPED: "True",
    }
    span.add_event("exception", attributes)


def _message(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {privacy.active().text(str(exc))}"
    except Exception as error:
        log_internal_error("inference.message", error)
        return type(exc).__name__
