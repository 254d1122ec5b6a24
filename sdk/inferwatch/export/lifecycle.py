"""Flushing at the end of the process: interpreter exit, multiprocessing workers, SIGTERM.

The providers are built with ``shutdown_on_exit=False`` (theirs would wait up to 30 s per
processor and ignore inferwatch's store and ordering), so `install` registers inferwatch's own
flush — `config.shutdown` within `EXIT_FLUSH_TIMEOUT_MS` — wherever a process can end.
"""

from __future__ import annotations

import atexit
import multiprocessing.util
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

EXIT_FLUSH_TIMEOUT_MS = 5_000.0
"""The deadline of the flush at interpreter exit and on SIGTERM: well inside the usual grace
period between SIGTERM and SIGKILL (30 s on Kubernetes) and the SDK's own 30 s per processor."""


class SigtermFlush:
    """``configure(flush_on_sigterm=True)``: flush queued telemetry before SIGTERM kills us.

    Python's default SIGTERM action ends the process without running atexit, so queued spans
    are lost. The handler is opt-in because signal handling belongs to the application:

    * the application's own handler, installed before: called instead, and nothing else (its
      graceful shutdown ends in a normal exit, where the atexit flush runs; flushing first
      would lose what in-flight requests still record);
    * the default action: flush within `EXIT_FLUSH_TIMEOUT_MS`, then restore the default and
      re-send SIGTERM, so the process still dies of SIGTERM (exit status -15) as it would have;
    * ignored: stays ignored.

    The flush runs on a helper thread, joined with the deadline: the handler interrupts the
    main thread wherever it was, perhaps holding a lock the flush needs.
    """

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush
        self.previous: Any = None
        self.installed = False

    def enable(self, on: bool) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; configure() checked when it mattered
        if on and not self.installed:
            self.previous = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, self._handle)
            self.installed = True
        elif not on and self.installed:
            if signal.getsignal(signal.SIGTERM) == self._handle:  # nobody replaced it since
                signal.signal(signal.SIGTERM, self.previous or signal.SIG_DFL)
            self.installed = False

    def _handle(self, signum: int, frame: Any) -> None:
        previous = self.previous
        if callable(previous):
            previous(signum, frame)
            return
        if previous == signal.SIG_IGN:
            return
        flush = threading.Thread(target=self._flush, name="inferwatch-sigterm", daemon=True)
        flush.start()
        flush.join(EXIT_FLUSH_TIMEOUT_MS / 1000 + 1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def install(flush: Callable[[], None], owner: object) -> SigtermFlush:
    """Run `flush` at interpreter exit and at the end of multiprocessing workers (which end in
    ``os._exit()``, skipping atexit; `owner` keys the after-fork hook); return the opt-in
    SIGTERM handler."""

    def in_worker(_: object) -> None:
        multiprocessing.util.Finalize(None, flush, exitpriority=0)

    atexit.register(flush)
    multiprocessing.util.register_after_fork(owner, in_worker)
    return SigtermFlush(flush)
