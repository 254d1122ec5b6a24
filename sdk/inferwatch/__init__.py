"""inferwatch: OpenTelemetry-native observability for machine-learning inference.

>>> import inferwatch as iw
>>> iw.configure(service_name="fraud-api")
>>> @iw.monitor(model="fraud", version="3.1")
... def predict(X): ...

This module is the public facade and the composition root: it declares which feature provides
which option of `monitor` / `configure`, and loads a feature (drift, validation, ranking, alerts,
the query layer) when it is first used, so that a serving process that only decorates a function
imports the instrument core alone.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from inferwatch.errors import internal_errors
from inferwatch.export import logs, privacy, readers
from inferwatch.export.configure import configure, flush, shutdown
from inferwatch.export.settings import ConfigurationError, Settings
from inferwatch.instrument import observers, web
from inferwatch.instrument.context import (
    ContextThreadPoolExecutor,
    context,
    current_request_id,
    current_tags,
    new_request_id,
    wrap,
)
from inferwatch.instrument.inference import Inference, Stage, inference
from inferwatch.instrument.monitor import monitor
from inferwatch.instrument.web import ASGIMiddleware, WSGIMiddleware
from inferwatch.version import __version__

if TYPE_CHECKING:
    from inferwatch import alerts, drift, query, ranking
    from inferwatch.delayed_labels import configure_feedback, feedback
    from inferwatch.delayed_labels.joiner import LabelJoiner, join_labels
    from inferwatch.drift import Profile
    from inferwatch.validation import Feature, Relation, Schema, SchemaViolationError

# The features, each imported when a model (or `configure`) first asks for what it provides.
observers.provide("baseline", "inferwatch.drift.serving")
observers.provide("schema", "inferwatch.validation.serving")
observers.provide("ranking", "inferwatch.ranking.serving")
observers.provide("clicks", "inferwatch.ranking.clicks")  # iw.feedback(rid, clicks=...)
observers.provide_default("inferwatch.delayed_labels.serving")  # every prediction, for its label
readers.provide("alerts", "inferwatch.alerts.serving")

_LAZY = {
    "alerts": ("inferwatch.alerts", None),
    "drift": ("inferwatch.drift", None),
    "query": ("inferwatch.query", None),
    "ranking": ("inferwatch.ranking", None),
    "Profile": ("inferwatch.drift", "Profile"),
    "configure_feedback": ("inferwatch.delayed_labels", "configure_feedback"),
    "feedback": ("inferwatch.delayed_labels", "feedback"),
    "join_labels": ("inferwatch.delayed_labels.joiner", "join_labels"),
    "LabelJoiner": ("inferwatch.delayed_labels.joiner", "LabelJoiner"),
    "Feature": ("inferwatch.validation", "Feature"),
    "Relation": ("inferwatch.validation", "Relation"),
    "Schema": ("inferwatch.validation", "Schema"),
    "SchemaViolationError": ("inferwatch.validation", "SchemaViolationError"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'inferwatch' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value  # once: later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ASGIMiddleware",
    "ConfigurationError",
    "ContextThreadPoolExecutor",
    "Feature",
    "Inference",
    "LabelJoiner",
    "Profile",
    "Relation",
    "Schema",
    "SchemaViolationError",
    "Settings",
    "Stage",
    "WSGIMiddleware",
    "__version__",
    "alerts",
    "configure",
    "configure_feedback",
    "context",
    "current_request_id",
    "current_tags",
    "drift",
    "feedback",
    "flush",
    "inference",
    "internal_errors",
    "join_labels",
    "logs",
    "monitor",
    "new_request_id",
    "privacy",
    "query",
    "ranking",
    "shutdown",
    "web",
    "wrap",
]
