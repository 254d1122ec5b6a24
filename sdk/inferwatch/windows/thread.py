"""The daemon thread that closes tumbling windows when they are due (drift and ranking windows).

The owner keeps its own window start and closing logic; this only waits until ``due()`` (a time
on the owner's clock), calls ``close()``, and repeats until stopped. A fork loses the thread:
`after_fork` says whether it was running so the owner can restart it lazily in the child.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from inferwatch.errors import log_internal_error


class WindowThread:
    def __init__(
        self,
        name: str,
        due: Callable[[], float],
        close: Callable[[], object],
        clock: Callable[[], float],
        where: str,
    ) -> None:
        self._name = name
        self._due = due
        self._close = close
        self._clock = clock
        self._where = where
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()

    def start(self) -> None:
        """Start the thread (a no-op when it runs)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop_event = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop_event,), daemon=True, name=self._name
            )
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread and wait for it (at most ``timeout`` seconds)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop_event.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def after_fork(self) -> bool:
        """In a forked child: forget the parent's thread; True if it was running."""
        was_running = self._thread is not None and not self._stop_event.is_set()
        self._lock = threading.Lock()
        self._thread = None
        self._stop_event = threading.Event()
        return was_running

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(max(0.0, self._due() - self._clock())):
            try:
                self._close()
            except Exception as exc:
                log_internal_error(self._where, exc)
