"""`@iw.monitor`: one decorator for plain, async, generator and async-generator functions.

The wrapped function's return value, yielded items and exceptions pass through untouched; all
telemetry work happens in `Inference`, whose methods never raise into the caller.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from inferwatch.errors import contained
from inferwatch.instrument.context import Scope, current_scope, enter_scope, exit_scope
from inferwatch.instrument.inference import NO_INPUT, Inference, ModelSpec, OutputKind

if TYPE_CHECKING:
    from inferwatch.drift.profile import Profile
    from inferwatch.validation import Schema

F = TypeVar("F", bound=Callable[..., Any])


class _Arguments:
    """Finds the input and the tag arguments of a call without binding the whole signature."""

    __slots__ = ("defaults", "input", "tags")

    def __init__(
        self, fn: Callable[..., Any], input_arg: str | None, tags_from: Mapping[str, str]
    ) -> None:
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError) as exc:  # builtins, odd callables: first positional arg
            self.input: tuple[int, str] | None = (0, "") if input_arg is None else None
            self.tags: list[tuple[str, int, str]] = []
            self.defaults: dict[str, Any] = {}
            if input_arg is not None or tags_from:
                raise TypeError(f"cannot read the signature of {fn!r} to find arguments") from exc
            return
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        index = {p.name: i for i, p in enumerate(positional)}
        names = {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params)
        self.defaults = {p.name: p.default for p in params if p.default is not p.empty}

        def locate(name: str, what: str) -> tuple[int, str]:
            if name not in names and not takes_kwargs:
                signature = f"{fn.__qualname__}{inspect.signature(fn)}"
                raise TypeError(f"{what} {name!r} is not a parameter of {signature}")
            return index.get(name, -1), name

        if input_arg is not None:
            self.input = locate(input_arg, "input_arg")
        else:
            candidates = [p for p in positional if p.name not in ("self", "cls")][:1]
            self.input = (index[candidates[0].name], candidates[0].name) if candidates else None
        self.tags = [(tag, *locate(param, "tags_from")) for param, tag in tags_from.items()]

    def value(self, where: tuple[int, str], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        position, name = where
        if 0 <= position < len(args):
            return args[position]
        return kwargs.get(name, self.defaults.get(name, NO_INPUT))


def monitor(
    model: str,
    version: str | None = None,
    *,
    input_arg: str | None = None,
    tags_from: Sequence[str] | Mapping[str, str] = (),
    features: Sequence[str] | None = None,
    record_input: bool = True,
    record_prediction: bool = True,
    prediction_kind: OutputKind = "auto",
    class_names: Sequence[str] | None = None,
    max_input_length: int | None = None,
    long_input_quantile: float | None = 0.999,
    prediction_range: tuple[float, float] | None = None,
    baseline: Profile | None = None,
    window: str | float = "5m",
    schema: Schema | None = None,
    strict_schema: bool = False,
) -> Callable[[F], F]:
    """Trace every call of a predict function as an inference span with metrics.

    >>> @iw.monitor(model="fraud", version="3.1", tags_from=["region"])
    ... def predict(X, region="eu"): ...

    The input is the first argument (``self``/``cls`` skipped) unless ``input_arg`` names another;
    the return value (or, for generators, nothing but item counts) is the prediction.
    ``tags_from`` lists arguments whose values become tags (a mapping renames them).
    Data checks log rate-limited events: inputs longer than ``max_input_length`` (or than the
    ``long_input_quantile`` of lengths seen so far), all-NaN rows, and predictions outside
    ``prediction_range``. With a ``baseline`` profile, inputs feed live drift windows of
    ``window`` (e.g. ``"5m"``): each closed window, its 1h and 1d roll-ups (when the window
    divides them) and the running total are compared with the baseline off the request thread;
    results are ``ml.drift.*`` gauges and log events. Predictions (and labels from
    `iw.feedback`) are tested too when the baseline has them (``Profile.build(X,
    predictions=..., labels=...)``). With a ``schema`` (`iw.Schema`), inputs are validated:
    violations are counted by feature and rule (``ml.input.violations``) and put on the span;
    ``strict_schema=True`` instead raises `SchemaViolationError` to the caller without calling
    the function. ``prediction_kind="ranking"``: the function returns a ranked list of item ids
    (best first), recorded as `Inference.record_ranking` does (feedback-loop signals, and clicks
    later with ``iw.feedback(request_id, clicks=...)``).
    """
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
        strict_schema=strict_schema,
    )
    tag_names = dict(tags_from) if isinstance(tags_from, Mapping) else {t: t for t in tags_from}

    def decorate(fn: F) -> F:
        arguments = _Arguments(fn, input_arg if record_input else None, tag_names)
        if not record_input:
            arguments.input = None
        begin = functools.partial(_begin, spec, arguments)
        wrapper: Callable[..., Any]
        if inspect.isasyncgenfunction(fn):
            wrapper = _wrap_async_generator(fn, begin)
        elif inspect.isgeneratorfunction(fn):
            wrapper = _wrap_generator(fn, begin)
        elif inspect.iscoroutinefunction(fn):
            wrapper = _wrap_coroutine(fn, begin, record_prediction)
        else:
            wrapper = _wrap_function(fn, begin, record_prediction)
        # The live drift windows (or None): `predict.drift.close_window()`, `.latest`, `.stop()`.
        wrapper.__dict__.update({"drift": None, **spec.exposed()})
        return cast(F, wrapper)

    return decorate


def _begin(
    spec: ModelSpec,
    arguments: _Arguments,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    activate: bool = True,
) -> Inference:
    rec = Inference(spec)
    try:
        x = arguments.value(arguments.input, args, kwargs) if arguments.input else NO_INPUT
    except Exception as exc:
        contained.error("monitor.arguments", exc)
        x = NO_INPUT
    rec.start(activate=activate, x=x)
    if arguments.tags:
        try:
            tags = {}
            for tag, position, name in arguments.tags:
                value = arguments.value((position, name), args, kwargs)
                if value is not NO_INPUT:
                    tags[tag] = value
            rec.tag(**tags)
        except BaseException as exc:  # strict mode re-raised an internal error: leave no context
            rec.finish(exc)
            raise
    refusal = rec.refusal
    if refusal is not None:  # asked for (strict_schema): the function is not called
        rec.finish(refusal)
        raise refusal
    return rec


def _wrap_function(
    fn: Callable[..., Any], begin: Callable[..., Inference], record_prediction: bool
) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        rec = begin(args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            rec.finish(exc)
            raise
        rec.finish(result=result if record_prediction else NO_INPUT)
        return result

    return wrapper


def _wrap_coroutine(
    fn: Callable[..., Any], begin: Callable[..., Inference], record_prediction: bool
) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        rec = begin(args, kwargs)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            rec.finish(exc)
            raise
        rec.finish(result=result if record_prediction else NO_INPUT)
        return result

    return wrapper


class _Stream:
    """Counts what a generator yields; the span's context is current only while it runs.

    Each step runs in the request scope of the first one: a generator consumed from another
    request's scope (interleaved streams) still tags what it starts with its own request id.
    """

    __slots__ = ("first_item", "items", "rec", "scope", "started")

    def __init__(self, rec: Inference, scope: Scope | None) -> None:
        self.rec = rec
        self.scope = scope
        self.items = 0
        self.first_item: float | None = None
        self.started = time.perf_counter()

    def enter(self) -> tuple[Any, Any]:
        scope_token = enter_scope(self.scope) if self.scope is not None else None
        return self.rec.enter_step(), scope_token

    def leave(self, tokens: tuple[Any, Any]) -> None:
        step, scope_token = tokens
        self.rec.leave_step(step)
        if scope_token is not None:
            exit_scope(scope_token)

    def got_item(self) -> None:
        self.items += 1
        if self.first_item is None:
            self.first_item = time.perf_counter() - self.started

    def finish(self, exc: BaseException | None, completed: bool) -> None:
        self.rec.record_stream(self.items, self.first_item, completed)
        self.rec.finish(exc)


def _wrap_generator(
    fn: Callable[..., Generator[Any, Any, Any]], begin: Callable[..., Inference]
) -> Callable[..., Generator[Any, Any, Any]]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        rec = begin(args, kwargs, activate=False)
        stream = _Stream(rec, current_scope())
        tokens = stream.enter()
        try:
            gen = fn(*args, **kwargs)
        except BaseException as exc:
            stream.leave(tokens)
            stream.finish(exc, completed=False)
            raise
        stream.leave(tokens)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            tokens = stream.enter()
            try:
                item = gen.send(sent) if thrown is None else gen.throw(thrown)
            except StopIteration as stop:
                stream.leave(tokens)
                stream.finish(None, completed=True)
                return stop.value
            except BaseException as exc:
                stream.leave(tokens)
                stream.finish(exc, completed=False)
                raise
            stream.leave(tokens)
            stream.got_item()
            sent, thrown = None, None
            try:
                sent = yield item
            except GeneratorExit:  # the consumer stopped early: close the inner generator
                tokens = stream.enter()
                try:
                    gen.close()
                finally:
                    stream.leave(tokens)
                    stream.finish(None, completed=False)
                raise
            except BaseException as exc:  # gen.throw() by the consumer: pass it on
                thrown = exc

    return wrapper


def _wrap_async_generator(
    fn: Callable[..., AsyncGenerator[Any, Any]], begin: Callable[..., Inference]
) -> Callable[..., AsyncGenerator[Any, Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        rec = begin(args, kwargs, activate=False)
        stream = _Stream(rec, current_scope())
        tokens = stream.enter()
        try:
            agen = fn(*args, **kwargs)
        except BaseException as exc:
            stream.leave(tokens)
            stream.finish(exc, completed=False)
            raise
        stream.leave(tokens)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            tokens = stream.enter()
            try:
                item = await (agen.asend(sent) if thrown is None else agen.athrow(thrown))
            except StopAsyncIteration:
                stream.leave(tokens)
                stream.finish(None, completed=True)
                return
            except BaseException as exc:
                stream.leave(tokens)
                stream.finish(exc, completed=False)
                raise
            stream.leave(tokens)
            stream.got_item()
            sent, thrown = None, None
            try:
                sent = yield item
            except GeneratorExit:
                tokens = stream.enter()
                try:
                    await agen.aclose()
                finally:
                    stream.leave(tokens)
                    stream.finish(None, completed=False)
                raise
            except BaseException as exc:
                thrown = exc

    return wrapper
