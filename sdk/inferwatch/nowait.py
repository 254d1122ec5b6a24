"""Recording under a lock that a serving call never waits for.

Two serving threads that each wait for a lock per call convoy on it: when the interpreter
switches threads while one holds it, the other blocks, gives up the GIL and waits its turn, and
two threads end up doing about half the calls of one (docs/benchmarks.md). So a serving call
takes the lock only if it is free at once; if it is held, the call queues what it records (a
deque's append is atomic) for whoever takes the lock next: the holder, the next call, or a
reader, which settles the queue before it reads. Only a holder of the lock takes from the queue.

`record` is the pattern; the hottest places (a histogram series, a counter total, the
prediction index) inline it, one call less per measurement.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any


def record(
    lock: threading.Lock,
    pending: deque[tuple[Any, ...]],
    add: Callable[..., object],
    item: tuple[Any, ...],
) -> None:
    """``add(*item)`` under ``lock`` if it is free now (after the queued items), else queue it."""
    if lock.acquire(False):
        try:
            settle(pending, add)
            add(*item)
        finally:
            lock.release()
    else:
        pending.append(item)


def settle(pending: deque[tuple[Any, ...]], add: Callable[..., object]) -> None:
    """``add`` each queued item, in the order they came (the caller holds the lock)."""
    while pending:
        add(*pending.popleft())
