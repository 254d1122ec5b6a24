"""Flushing at the end of the process, by default: interpreter exit, worker exit, SIGTERM.

The providers are built with ``shutdown_on_exit=False`` (theirs would wait up to 30 s per
processor and ignore inferwatch's store and ordering), so `install` registers inferwatch's own
flush — `config.shutdown` within the configured deadline — wherever a process can end:

* a normal exit (atexit), a KeyboardInterrupt (SIGINT), a multiprocessing worker's exit;
* SIGTERM, through `ExitGuard` (docs/deployment.md): Python's default SIGTERM action ends the
  process without running atexit, and servers that stop gracefully on SIGTERM (uvicorn, alone,
  with ``--workers`` or as gunicorn's worker) end by restoring that default and re-raising the
  signal, so everything still queued was lost.
"""

from __future__ import annotations

import atexit
import multiprocessing.util
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from inferwatch import forks

DEFAULT_SHUTDOWN_TIMEOUT_MS = 5_000.0
"""The default deadline of every flush at the end (and of `iw.shutdown()`): well inside the
usual grace period between SIGTERM and SIGKILL (30 s on Kubernetes), with the collector down."""

_HELD = {signal.SIGTERM}

pending = False
"""True while the guard is wanted but not armed: the serving path then calls `arm_pending`."""
_guard: ExitGuard | None = None


def arm_pending() -> None:
    """Arm the guard, if wanted and this is the main thread (`if lifecycle.pending:` first)."""
    if _guard is not None:
        _guard.arm_if_wanted()


class ExitGuard:
    """Makes a SIGTERM end the process only after the exit flush, whoever handles the signal.

    Armed by `configure()` (``flush_on_sigterm``, on by default) from the main thread, or at the
    next chance in the main thread when configured elsewhere or after a fork (`arm_if_wanted`:
    gunicorn's worker resets SIGTERM after forking a ``--preload`` app). Armed, it sits in front
    of the SIGTERM handler found in place:

    * a handler (the server's graceful stop, the application's own): called, unchanged. Before
      that, this thread holds SIGTERM (``pthread_sigmask``), so should the graceful stop end by
      restoring the default action and re-raising the signal (uvicorn does), the signal waits,
      the process goes on to a normal exit, the exit flush runs, and the signal is released
      then: the process still dies of SIGTERM (exit status -15), as it would have, after the
      flush. A SIGTERM sent again from outside is not held (another thread takes it);
    * the default action: flush within the deadline, restore the default, re-send SIGTERM;
    * ignored: not armed; it stays ignored.

    The flush in a handler runs on a helper thread, joined with the deadline: the handler
    interrupts the main thread wherever it was, perhaps holding a lock the flush needs.
    """

    def __init__(self, flush: Callable[[], None], timeout_s: Callable[[], float]) -> None:
        self._flush = flush
        self._timeout_s = timeout_s
        self.previous: Any = None
        self.armed = False
        self.wanted = False
        self.holding = False

    # -- arming ----------------------------------------------------------------------------

    def want(self, on: bool) -> None:
        """Arm now from the main thread, else at the next `arm_if_wanted` there; or disarm."""
        self.wanted = on
        if not on:
            self._disarm()
        else:
            self.arm_if_wanted()
        self._update()

    def arm_if_wanted(self) -> None:
        """Arm if wanted and not armed, when called from the main thread (cheap otherwise)."""
        if not self.wanted or self.armed:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if previous == signal.SIG_IGN:
            self.wanted = False  # an ignored SIGTERM stays ignored
        else:
            self.previous = previous
            signal.signal(signal.SIGTERM, self._handle)
            self.armed = True
        self._update()

    def _disarm(self) -> None:
        if not self.armed or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) == self._handle:  # nobody replaced it since
            signal.signal(signal.SIGTERM, self.previous or signal.SIG_DFL)
        self.armed = False
        self._update()

    def _update(self) -> None:
        global pending
        pending = self.wanted and not self.armed

    def after_fork_in_child(self) -> None:
        # The child's server may set its own handlers (gunicorn's worker resets SIGTERM):
        # arm again at the next chance, over whatever it installed.
        if self.holding:  # the mask is inherited: this process has not been asked to stop
            self._release()
        self.armed = False
        self.previous = None
        self._update()

    # -- the signal and the exit -----------------------------------------------------------

    def _handle(self, signum: int, frame: Any) -> None:
        previous = self.previous
        if not self.wanted:  # turned off from a thread that could not take the handler back
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)
            return
        if callable(previous):
            if not self.holding:
                signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
                self.holding = True
            previous(signum, frame)
            return
        flush = threading.Thread(target=self._flush, name="inferwatch-sigterm", daemon=True)
        flush.start()
        flush.join(self._timeout_s() + 1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self._release()
        os.kill(os.getpid(), signal.SIGTERM)

    def at_exit(self) -> None:
        """The exit flush; then a SIGTERM held meanwhile takes its course."""
        try:
            self._flush()
        finally:
            self._release()

    def _release(self) -> None:
        if self.holding:
            self.holding = False
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)


def install(flush: Callable[[], None], timeout_s: Callable[[], float], owner: object) -> ExitGuard:
    """Run `flush` at interpreter exit and at the end of forked multiprocessing workers (which
    end in ``os._exit()``, skipping atexit; `owner` keys the after-fork hook); return the guard
    that makes SIGTERM wait for it."""
    global _guard
    guard = _guard = ExitGuard(flush, timeout_s)

    def in_worker(_: object) -> None:
        multiprocessing.util.Finalize(None, guard.at_exit, exitpriority=0)

    atexit.register(guard.at_exit)
    multiprocessing.util.register_after_fork(owner, in_worker)
    forks.on_fork_in_child(guard.after_fork_in_child)
    return guard
