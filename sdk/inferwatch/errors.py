"""Internal-error handling: the hot path never throws into user code.

Every failure inside inferwatch is caught, counted (in-process and as the
`inferwatch.internal.errors` metric), and logged at most once a minute per place.
In strict mode (``configure(strict=True)`` or ``INFERWATCH_STRICT=1``; meant for the SDK's own
tests) the error is re-raised instead, so bugs cannot hide.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

from inferwatch import forks

P = ParamSpec("P")
R = TypeVar("R")

_log = logging.getLogger("inferwatch.internal")
_LOG_EVERY_S = 60.0

_lock = threading.Lock()  # re-created in a forked child (below)
_counts: Counter[str] = Counter()
_last_logged: dict[str, float] = {}
_env_strict = os.environ.get("INFERWATCH_STRICT", "").lower() in ("1", "true", "yes")
_strict = _env_strict
# Set by config once a meter exists: adds 1 to the internal-errors counter for `where`.
_count_hook: Callable[[str], None] | None = None


def set_strict(strict: bool) -> None:
    """Re-raise internal errors (`strict`, or the INFERWATCH_STRICT environment variable)."""
    global _strict
    _strict = strict or _env_strict


def is_strict() -> bool:
    return _strict


def set_count_hook(hook: Callable[[str], None] | None) -> None:
    global _count_hook
    _count_hook = hook


def internal_errors() -> dict[str, int]:
    """How many internal errors were swallowed so far, by where they happened."""
    with _lock:
        return dict(_counts)


def reset_internal_errors() -> None:
    with _lock:
        _counts.clear()
        _last_logged.clear()


def log_internal_error(where: str, exc: BaseException) -> None:
    """Count and (rate-limited) log an error inside inferwatch; never raises, even when strict.

    For failures of the environment (a collector past its deadline, a full disk) and for the
    last line of defence; bugs go through `contained`, which re-raises them in strict mode.
    """
    now = time.monotonic()
    with _lock:
        _counts[where] += 1
        last = _last_logged.get(where)
        should_log = last is None or now - last >= _LOG_EVERY_S
        if should_log:
            _last_logged[where] = now
    try:
        # Our own log record and metric must not feed back into instrumentation.
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        with suppress_instrumentation():
            hook = _count_hook
            if hook is not None:
                hook(where)
            if should_log:
                _log.warning(
                    "inferwatch internal error in %s (further ones here are counted, logged once "
                    "a minute): %r",
                    where,
                    exc,
                    # A traceback when there is one; a failure reported, not raised, is one line.
                    exc_info=exc if exc.__traceback__ is not None else None,
                )
    except Exception:
        pass


class contained:
    """Errors inside inferwatch, contained: counted and logged, re-raised only in strict mode.

    >>> with contained("inference.tag"): ...          # swallows what the block raises
    >>> @contained("alerts.evaluate")                 # the same around a function (returns None)
    ... def evaluate(): ...
    >>> except Exception as exc: contained.error("inference.start", exc)   # in an except block
    """

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception) or _strict:
            return False
        log_internal_error(self.where, exc)
        return True

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R | None]:
        where = self.where

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R | None:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                contained.error(where, exc)
                return None

        return guarded

    @staticmethod
    def error(where: str, exc: Exception) -> None:
        """Call from an ``except`` block: re-raise in strict mode, else count and log."""
        if _strict:
            raise exc
        log_internal_error(where, exc)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


forks.on_fork_in_child(_after_fork_in_child)
