"""Logs: structlog processors, and bridges from structlog and stdlib `logging` to OTel logs.

After ``iw.configure()`` (``logs=True`` by default) every structlog event and every stdlib log
record becomes an OTel log record carrying the active span's trace and span ids, the request id
and the tags of the current `iw.context`. Rendering to the console stays the application's
choice: the processors add fields and pass the event on unchanged otherwise. What is exported
(attributes, body, exception text) is scrubbed first by `iw.privacy`, in both bridges.

>>> structlog.configure(processors=[*iw.logs.processors(), structlog.dev.ConsoleRenderer()])
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry._logs import LoggerProvider, LogRecord, SeverityNumber
from opentelemetry.context import get_current
from opentelemetry.instrumentation.logging.handler import LoggingHandler

from inferwatch.attributes import clean_value
from inferwatch.errors import contained
from inferwatch.export import privacy
from inferwatch.instrument.context import current_scope

EventDict = MutableMapping[str, Any]
Processor = Callable[[Any, str, EventDict], EventDict]

_SEVERITY = {
    "debug": (SeverityNumber.DEBUG, "DEBUG"),
    "info": (SeverityNumber.INFO, "INFO"),
    "msg": (SeverityNumber.INFO, "INFO"),
    "warning": (SeverityNumber.WARN, "WARN"),
    "warn": (SeverityNumber.WARN, "WARN"),
    "error": (SeverityNumber.ERROR, "ERROR"),
    "exception": (SeverityNumber.ERROR, "ERROR"),
    "critical": (SeverityNumber.FATAL, "FATAL"),
    "fatal": (SeverityNumber.FATAL, "FATAL"),
}
# Fields other processors add that the OTel record carries natively.
_NATIVE_FIELDS = frozenset({"event", "level", "timestamp", "trace_id", "span_id", "exc_info"})


def add_trace_context(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: ``trace_id``, ``span_id``, ``ml.request.id`` and the active tags."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict.setdefault("trace_id", format(span_context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(span_context.span_id, "016x"))
    scope = current_scope()
    if scope is not None:
        for key, value in scope.attributes.items():
            event_dict.setdefault(key, value)
    return event_dict


class OTelBridge:
    """structlog processor: emit each event as an OTel log record, then pass it on unchanged."""

    def __init__(self) -> None:
        self.logger_provider: LoggerProvider | None = None

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        provider = self.logger_provider
        if provider is None:
            return event_dict
        try:
            severity, severity_text = _SEVERITY.get(method_name, (SeverityNumber.INFO, "INFO"))
            exception = _exception(event_dict.get("exc_info"))
            scope = current_scope()
            attributes, body = privacy.active().log(
                {str(k): clean_value(v) for k, v in event_dict.items() if k not in _NATIVE_FIELDS},
                clean_value(event_dict.get("event")),
                scope.attributes if scope is not None else None,
                exception,
            )
            name = getattr(logger, "name", None) or "structlog"
            provider.get_logger(str(name)).emit(
                LogRecord(
                    context=get_current(),
                    severity_number=severity,
                    severity_text=severity_text,
                    body=body,
                    attributes=attributes,
                    exception=exception,
                )
            )
            if isinstance(logger, logging.Logger):  # the stdlib handler will see it too
                _bridged.event = str(event_dict.get("event"))
        except Exception as exc:
            contained.error("logs.structlog", exc)
        return event_dict


def _exception(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        return exc_info[1]  # type: ignore[no-any-return]
    return None


class _Bridged(threading.local):
    event: str | None = None


_bridged = _Bridged()
_bridge = OTelBridge()


def processors() -> list[Processor]:
    """The processors to put first in your own structlog chain (``configure`` does it for you)."""
    return [add_trace_context, _bridge]


class _ScopeFilter(logging.Filter):
    """Adds request id and tags to stdlib records; drops records structlog already bridged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(("opentelemetry", "inferwatch.internal")):
            return False  # exporter trouble must not loop back into the exporter
        event = _bridged.event
        if event is not None:
            _bridged.event = None
            if event in record.getMessage():
                return False
        scope = current_scope()
        if scope is not None:
            for key, value in scope.attributes.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


class _BridgeHandler(LoggingHandler):
    """The OTel logging handler, minus its side effects on the application's console.

    A handler on the root logger silences Python's last-resort stderr output for warnings of
    applications that never configured logging; where no other handler would see a record,
    this one hands it to `logging.lastResort` as Python would have.
    """

    def handle(self, record: logging.LogRecord) -> bool:
        handled = super().handle(record)
        last = logging.lastResort
        if last is not None and record.levelno >= last.level and not self._others(record.name):
            last.handle(record)
        return bool(handled)

    def _translate(self, record: logging.LogRecord) -> LogRecord:
        """The OTel record, its attributes (``extra``, exception text) and body scrubbed."""
        translated = super()._translate(record)
        scope = current_scope()
        try:
            translated.attributes, translated.body = privacy.active().log(
                translated.attributes or {},
                translated.body,
                scope.attributes if scope is not None else None,
            )
        except Exception as exc:  # fail closed: nothing unscrubbed leaves, the caller goes on
            contained.error("logs.scrub", exc)
            translated.attributes, translated.body = {}, privacy.SCRUB_ERROR
        return translated

    def _others(self, name: str) -> bool:
        logger: logging.Logger | None = logging.getLogger(name)
        while logger is not None:
            if any(h is not self for h in logger.handlers):
                return True
            if not logger.propagate:
                return False
            logger = logger.parent
        return False


_handler: _BridgeHandler | None = None
_config_functions_wrapped = False


def _keep_handler_through_logging_config() -> None:
    """basicConfig() is a no-op once root has a handler, and dictConfig() replaces root's
    handlers: take ours out around those calls, and put it back after."""
    global _config_functions_wrapped
    if _config_functions_wrapped:
        return
    _config_functions_wrapped = True
    import logging.config

    def wrap(function: Callable[..., Any]) -> Callable[..., Any]:
        def configure_logging(*args: Any, **kwargs: Any) -> Any:
            handler = _handler
            root = logging.getLogger()
            removed = handler is not None and handler in root.handlers
            if handler is not None and removed:
                root.removeHandler(handler)
            try:
                return function(*args, **kwargs)
            finally:
                if removed and handler is _handler:
                    root.addHandler(handler)  # type: ignore[arg-type]

        return configure_logging

    logging.basicConfig = wrap(logging.basicConfig)
    logging.config.dictConfig = wrap(logging.config.dictConfig)
    logging.config.fileConfig = wrap(logging.config.fileConfig)


def install(logger_provider: LoggerProvider) -> None:
    """Bridge structlog and the root stdlib logger to ``logger_provider`` (idempotent)."""
    global _handler
    _bridge.logger_provider = logger_provider
    _install_structlog()
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = _BridgeHandler(logger_provider=logger_provider)
    _handler.addFilter(_ScopeFilter())
    root.addHandler(_handler)
    _keep_handler_through_logging_config()


def uninstall() -> None:
    """Stop bridging (on `shutdown`); structlog keeps the processors, which then do nothing."""
    global _handler
    _bridge.logger_provider = None
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler = None


def _install_structlog() -> None:
    chain = list(structlog.get_config()["processors"])
    if _bridge in chain:
        return
    # Context first; the bridge just before the renderer, so the user's filters apply first.
    body, renderer = (chain[:-1], chain[-1:]) if chain else ([], [])
    structlog.configure(processors=[add_trace_context, *body, _bridge, *renderer])


__all__ = ["OTelBridge", "add_trace_context", "install", "processors", "uninstall"]
