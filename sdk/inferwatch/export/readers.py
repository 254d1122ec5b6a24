"""Metric readers that features add to inferwatch's meter provider, from a `configure()` option.

The in-process alert evaluator is one: ``configure(alerts=...)`` names the policies; the feature
that provides the option (declared by the composition root, ``inferwatch/__init__.py``, and
imported only when the option is given) checks the value when `configure()` is called and makes
the reader. A provider module has ``setting(value)`` (the checked value; raises ``ValueError``
saying why) and ``reader(value, others) -> MetricReader``, ``others`` being the application's
own ``metric_readers``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricReader

_providers: dict[str, str] = {}


def provide(option: str, module: str) -> None:
    """Declare that ``module`` makes a metric reader from ``configure(option=...)``."""
    _providers[option] = module


def setting(option: str, value: Any) -> Any:
    """The checked value of the option (None stays None, and imports nothing)."""
    if value is None:
        return None
    return importlib.import_module(_providers[option]).setting(value)


def readers(settings: Any, others: Sequence[MetricReader] = ()) -> list[MetricReader]:
    """The readers of every option the settings give (``others``: the application's)."""
    made = []
    for option, module in _providers.items():
        value = getattr(settings, option)
        if value is not None:
            made.append(importlib.import_module(module).reader(value, others))
    return made
