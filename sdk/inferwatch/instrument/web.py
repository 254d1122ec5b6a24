"""Web servers: a request scope per HTTP request, for ASGI (Starlette, FastAPI) and WSGI apps.

>>> app.add_middleware(iw.ASGIMiddleware, tags=lambda r: {"region": r.headers.get("x-region")})
>>> app.wsgi_app = iw.WSGIMiddleware(app.wsgi_app)   # Flask; Django: its WSGI application

Each request runs inside `iw.context.from_headers`: its request id comes from ``X-Request-ID``
(else baggage, else generated) and is echoed in the response's ``X-Request-ID`` header; the
caller's ``traceparent`` is continued. Added inside OpenTelemetry's HTTP instrumentation (the
usual ``app.add_middleware``), the framework's server span gets the request id and tags; added
outside, that span is opened inside the scope and gets them at its start, and stays a SERVER
span on the caller's trace. The ASGI middleware also flushes inferwatch (`iw.flush`) when the
server's lifespan ends, after the application's own shutdown, whatever the server does next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from inferwatch.errors import contained
from inferwatch.export.configure import flush
from inferwatch.instrument.context import context


class Request:
    """What a `Tags` function sees of a request: method, path, headers (lower-case names) and
    query parameters (the first value of each; parsed when first read)."""

    __slots__ = ("_query", "_query_string", "headers", "method", "path")

    def __init__(
        self, method: str, path: str, headers: Mapping[str, str], query_string: str
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self._query_string = query_string
        self._query: dict[str, str] | None = None

    @property
    def query(self) -> Mapping[str, str]:
        if self._query is None:
            self._query = {}
            for name, value in parse_qsl(self._query_string, keep_blank_values=True):
                self._query.setdefault(name, value)
        return self._query


Tags = Callable[[Request], Mapping[str, Any] | None]
"""A request -> its tags (region, cohort, ...); None values are left out."""

REQUEST_ID_HEADER = "x-request-id"

_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_ASGIApp = Callable[[MutableMapping[str, Any], _Receive, _Send], Awaitable[None]]


def _tags_of(tags: Tags | None, request: Request) -> Mapping[str, Any]:
    if tags is None:
        return {}
    with contained("web.tags"):  # the application's function: never fails the request
        found = tags(request)
        return {k: v for k, v in (found or {}).items() if v is not None}
    return {}


def _checked(tags: Tags | None) -> Tags | None:
    if tags is not None and not callable(tags):
        raise TypeError("tags must be a callable: request -> dict of tags")
    return tags


class ASGIMiddleware:
    """A request scope around each HTTP (and WebSocket) request of an ASGI app.

    ``tags(request)`` gives the request's tags; ``echo_request_id`` adds ``X-Request-ID`` to
    responses. At the end of the lifespan (the server stopping), after the application completed
    its own shutdown, what inferwatch recorded is exported (`iw.flush`, within its deadline).
    """

    def __init__(
        self, app: _ASGIApp, *, tags: Tags | None = None, echo_request_id: bool = True
    ) -> None:
        self.app = app
        self.tags = _checked(tags)
        self.echo_request_id = echo_request_id

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: _Receive, send: _Send
    ) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await self.app(scope, receive, _flushing_at_shutdown(send))
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())
        }
        query = scope.get("query_string", b"").decode("latin-1")
        request = Request(scope.get("method", "GET"), scope.get("path", ""), headers, query)
        with context.from_headers(headers, **_tags_of(self.tags, request)) as entered:
            if not self.echo_request_id or kind != "http":
                await self.app(scope, receive, send)
                return
            header = (REQUEST_ID_HEADER.encode(), entered.request_id.encode("latin-1", "replace"))

            async def send_with_request_id(message: _Message) -> None:
                if message.get("type") == "http.response.start":
                    response_headers = message.get("headers", ())
                    if not any(k.lower() == header[0] for k, _ in response_headers):
                        message["headers"] = [*response_headers, header]
                await send(message)

            await self.app(scope, receive, send_with_request_id)


def _flushing_at_shutdown(send: _Send) -> _Send:
    async def send_after_flush(message: _Message) -> None:
        if message.get("type") == "lifespan.shutdown.complete":
            # Off the event loop: the flush waits on exporters for up to its deadline.
            await asyncio.get_running_loop().run_in_executor(None, flush)
        await send(message)

    return send_after_flush


class WSGIMiddleware:
    """A request scope around each request of a WSGI app (Flask, Django, ...).

    The scope covers the application call; ``tags(request)`` and ``echo_request_id`` as for
    `ASGIMiddleware`. (A WSGI server ends normally on SIGTERM; its exit flushes.)
    """

    def __init__(
        self,
        app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]],
        *,
        tags: Tags | None = None,
        echo_request_id: bool = True,
    ) -> None:
        self.app = app
        self.tags = _checked(tags)
        self.echo_request_id = echo_request_id

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        request = Request(
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO", ""),
            headers,
            environ.get("QUERY_STRING", ""),
        )
        with context.from_headers(headers, **_tags_of(self.tags, request)) as entered:
            if not self.echo_request_id:
                return self.app(environ, start_response)
            request_id = entered.request_id

            def start_with_request_id(
                status: str, response_headers: list[tuple[str, str]], *exc_info: Any
            ) -> Any:
                if not any(k.lower() == REQUEST_ID_HEADER for k, _ in response_headers):
                    response_headers = [*response_headers, ("X-Request-ID", request_id)]
                return start_response(status, response_headers, *exc_info)

            return self.app(environ, start_with_request_id)
