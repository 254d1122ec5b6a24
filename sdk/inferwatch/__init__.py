"""inferwatch: OpenTelemetry-native observability for machine-learning inference.

>>> import inferwatch as iw
>>> iw.configure(service_name="fraud-api")
>>> @iw.monitor(model="fraud", version="3.1")
... def predict(X): ...
"""

from inferwatch import alerts, drift, query, ranking
from inferwatch.delayed_labels import configure_feedback, feedback
from inferwatch.drift import Profile
from inferwatch.errors import internal_errors
from inferwatch.export import logs, privacy
from inferwatch.export.configure import configure, shutdown
from inferwatch.export.settings import ConfigurationError, Settings
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
from inferwatch.validation import Feature, Relation, Schema, SchemaViolationError
from inferwatch.version import __version__

__all__ = [
    "ConfigurationError",
    "ContextThreadPoolExecutor",
    "Feature",
    "Inference",
    "Profile",
    "Relation",
    "Schema",
    "SchemaViolationError",
    "Settings",
    "Stage",
    "__version__",
    "alerts",
    "configure",
    "configure_feedback",
    "context",
    "current_request_id",
    "current_tags",
    "drift",
    "feedback",
    "inference",
    "internal_errors",
    "logs",
    "monitor",
    "new_request_id",
    "privacy",
    "query",
    "ranking",
    "shutdown",
    "wrap",
]
