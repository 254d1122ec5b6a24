"""Request scopes: a request id and tags stamped on every span started inside them.

``iw.context(request_id=..., region="eu")`` sets a context variable; a span processor copies it
onto each span at start, so spans from any instrumentation inside the scope carry the tags. Context
variables follow asyncio tasks by themselves; threads need `wrap` or `ContextThreadPoolExecutor`.
"""

from __future__ import annotations

import contextvars
import functools
import os
import random
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from inferwatch import forks, semconv
from inferwatch.attributes import AttributeValue
from inferwatch.errors import log_internal_error
from inferwatch.export import lifecycle
from inferwatch.export.privacy import scrub_request_id, scrub_tags

P = ParamSpec("P")
R = TypeVar("R")

_REQUEST_ID_HEADERS = ("x-request-id", "x-correlation-id", "request-id")
_REQUEST_ID_BAGGAGE = (semconv.ML_REQUEST_ID, "request_id", "request.id")


class _IdSource:
    """64-bit random request ids; ~10x cheaper than uuid4, reseeded after fork."""

    def __init__(self) -> None:
        self._random = random.Random(os.urandom(16))

    def reseed(self) -> None:
        self._random = random.Random(os.urandom(16))

    def new(self) -> str:
        return f"{self._random.getrandbits(64):016x}"


_ids = _IdSource()
forks.on_fork_in_child(_ids.reseed)


def new_request_id() -> str:
    """A fresh random request id (16 hex characters)."""
    return _ids.new()


class Scope:
    """What a request scope holds: its request id and tags (outer scopes' tags included), and
    the caller's span context from a ``traceparent`` (`context.from_headers`)."""

    __slots__ = ("attributes", "caller", "request_id", "tags")

    def __init__(
        self,
        request_id: str,
        tags: Mapping[str, AttributeValue],
        caller: Context | None = None,
    ) -> None:
        self.request_id = request_id
        self.tags = tags
        self.caller = caller
        """The parent of an inference started here while no span is current."""
        # What the span processor sets: built once per scope, not once per span.
        self.attributes: dict[str, AttributeValue] = {semconv.ML_REQUEST_ID: request_id, **tags}


_SCOPE: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "inferwatch_scope", default=None
)


def current_scope() -> Scope | None:
    return _SCOPE.get()


def current_request_id() -> str | None:
    """The request id of the innermost `context` (or monitored call), or None outside one."""
    scope = _SCOPE.get()
    return scope.request_id if scope is not None else None


def current_tags() -> Mapping[str, AttributeValue]:
    """The tags of the innermost `context`, outer scopes' tags included."""
    scope = _SCOPE.get()
    return scope.tags if scope is not None else {}


def enter_scope(scope: Scope) -> contextvars.Token[Scope | None]:
    return _SCOPE.set(scope)


def exit_scope(token: contextvars.Token[Scope | None]) -> None:
    _SCOPE.reset(token)


class context:
    """Tag every span started inside with a request id and tags; sync and async.

    >>> with iw.context(request_id="r-1", region="eu", cohort="new"):
    ...     predict(X)

    Without ``request_id`` the outer scope's id is kept, or a fresh one is generated (one per
    entry: a ``context`` object kept and entered by many requests, even concurrently from
    threads or tasks, gives each its own id).
    Tag values must be str, bool, int or float; anything else is stored as its ``str()``.
    Tags and the request id are scrubbed as they enter (`inferwatch.export.privacy`).
    """

    __slots__ = ("_caller", "_entered_id", "_request_id", "_tag_server_span", "_tags", "_tokens")

    def __init__(self, request_id: str | None = None, **tags: Any) -> None:
        # The one place scope tags enter (from_headers too): scrubbed here, once per scope.
        self._request_id = scrub_request_id(request_id)
        self._tags = scrub_tags(tags)
        self._caller: Context | None = None
        self._tag_server_span = False
        self._entered_id: str | None = None
        # By scope, not a stack: entries of one shared object from many threads or tasks
        # interleave, and each exit must undo its own entry, in its own context.
        self._tokens: dict[int, contextvars.Token[Scope | None]] = {}

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], **tags: Any) -> context:
        """A scope for an incoming request: W3C trace context, baggage and request-id headers.

        The request id comes from ``X-Request-ID`` (or ``X-Correlation-ID``), else from a
        baggage entry ``ml.request.id``/``request_id``, else it is generated. Entered inside the
        web framework's server span (OpenTelemetry's HTTP instrumentation), it tags that span
        with the request id and tags. A ``traceparent`` makes the caller's span the parent of
        the inferences started in the scope while no span is current; the caller's span is not
        made current, so a server span opened inside the scope (by instrumentation wrapped
        inside this middleware) is still a SERVER span continuing the caller's trace.
        """
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        carrier_ctx = propagate.extract(lowered, context=otel_context.get_current())
        request_id = next((lowered[h] for h in _REQUEST_ID_HEADERS if lowered.get(h)), None)
        if request_id is None:
            entries = baggage.get_all(carrier_ctx)
            request_id = next((str(entries[k]) for k in _REQUEST_ID_BAGGAGE if k in entries), None)
        scope = cls(request_id, **tags)
        if trace.get_current_span(carrier_ctx).get_span_context().is_remote:
            scope._caller = carrier_ctx
        scope._tag_server_span = True
        return scope

    @property
    def request_id(self) -> str | None:
        """The request id given, else the one of the latest entry (None before)."""
        return self._request_id or self._entered_id

    def __enter__(self) -> Scope:
        if lifecycle.pending:  # a request in a forked worker's main thread (its event loop)
            lifecycle.arm_pending()
        outer = _SCOPE.get()
        request_id = self._request_id
        if request_id is None:
            request_id = outer.request_id if outer is not None else new_request_id()
        self._entered_id = request_id
        tags = {**outer.tags, **self._tags} if outer is not None else self._tags
        caller = self._caller or (outer.caller if outer is not None else None)
        scope = Scope(request_id, tags, caller)
        if self._tag_server_span:
            _tag_server_span(scope)
        self._tokens[id(scope)] = _SCOPE.set(scope)
        return scope

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token = self._tokens.pop(id(_SCOPE.get()), None)
        if token is None:  # exited out of order, or in a context it was not entered in
            log_internal_error("context.exit", RuntimeError("iw.context exited out of order"))
            return
        _SCOPE.reset(token)

    async def __aenter__(self) -> Scope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def _tag_server_span(scope: Scope) -> None:
    """Stamp the scope on the web framework's server span, if that is the current span: it
    started before the scope existed (OpenTelemetry's HTTP instrumentation wraps the app)."""
    span = trace.get_current_span()
    if span.is_recording() and getattr(span, "kind", SpanKind.SERVER) is SpanKind.SERVER:
        span.set_attributes(scope.attributes)


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind ``fn`` to the current context (scope, tags, active span) for another thread.

    >>> threading.Thread(target=iw.wrap(work)).start()
    """
    ctx = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(fn, *args, **kwargs)

    return run


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in the submitter's context (scope and span)."""

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        ctx = contextvars.copy_context()
        return super().submit(functools.partial(ctx.run, fn, *args, **kwargs))

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Any,
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[R]:
        ctx = contextvars.copy_context()
        return super().map(lambda *a: ctx.copy().run(fn, *a), *iterables, timeout=timeout)
