"""inferwatch: OpenTelemetry-native observability for machine-learning inference.

>>> import inferwatch as iw
>>> iw.configure(service_name="fraud-api")
>>> @iw.monitor(model="fraud", version="3.1")
... def predict(X): ...
"""

from inferwatch import alerts, drift, logs, privacy, query, ranking
from inferwatch._internal import internal_errors
from inferwatch.config import ConfigurationError, Settings, configure, shutdown
from inferwatch.context import (
    ContextThreadPoolExecutor,
    context,
    current_request_id,
    current_tags,
    new_request_id,
    wrap,
)
from inferwatch.drift import Profile
from inferwatch.inference import Inference, Stage, inference
from inferwatch.labels import configure_feedback, feedback
from inferwatch.monitor import monitor
from inferwatch.validation import Feature, Relation, Schema, SchemaViolationError

__version__ = "0.1.0"

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
