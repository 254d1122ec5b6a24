"""What a forked child must redo: locks it gets back unlocked, and the hooks run in it.

``os.fork`` copies a lock in whatever state it was: held by a thread of the parent (the metric
reader collecting, another request counting), it stays held forever in the child, whose next
`add()` deadlocks. Objects registered here get a fresh ``_lock`` in every child. Nothing is added
to the hot path: the owner keeps using its plain ``threading.Lock`` attribute.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

_owners: weakref.WeakSet[Any] = weakref.WeakSet()
generation = 0
"""How many forks this process is from the one that imported inferwatch: what was bound to
series before a fork (they start from zero in the child) is bound again after it."""


def renew_lock_after_fork(owner: Any) -> None:
    """Give `owner` a new ``_lock`` in each forked child."""
    _owners.add(owner)


def on_fork_in_child(hook: Callable[[], object]) -> None:
    """Run `hook` in every child forked from now on (nothing where ``os.fork`` does not exist)."""
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=hook)


def _after_fork_in_child() -> None:
    global generation
    generation += 1
    for owner in list(_owners):
        owner._lock = threading.Lock()


on_fork_in_child(_after_fork_in_child)
