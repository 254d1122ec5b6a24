"""Alert policies and channels, validated when they are declared (code or YAML).

A policy is a condition on one inferwatch metric over a sliding window — a statistic of the
points that match ``where``, per ``group_by`` group, compared with a threshold — that must hold
for ``for`` before it fires. The same definition drives the in-process evaluator
(`inferwatch.alerts.reader`) and the generated Prometheus rules and Grafana panels, so both
alert on the same thing.

>>> AlertPolicy(name="FraudErrors", metric="ml.inference.duration", statistic="ratio",
...             numerator={"error.type": "*"}, op=">", threshold=0.05, window="5m", for_="5m")
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from inferwatch import semconv
from inferwatch.alerts.catalog import KNOWN_METRICS, Kind, MetricInfo
from inferwatch.alerts.notification import Notification
from inferwatch.alerts.targets import DEFAULT_TARGET, Target
from inferwatch.durations import FORMS, parse_duration


class PolicyError(ValueError):
    """An alert policy, channel or policy file that cannot work; says which field and why."""


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        seconds = parse_duration(value)
        if seconds is None:
            raise ValueError(f"{value!r} is not a duration; write it like {FORMS}")
        return seconds
    return value


Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
"""Seconds; also written ``"90s"``, ``"5m"``, ``"1h"``."""
PositiveDuration = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]
Filter = dict[str, str | list[str]]
"""Attribute → value, list of values (any of them), ``"!value"`` (anything else, or absent),
``"*"`` (present) or ``""`` (absent)."""

Statistic = Literal["last", "max", "min", "avg", "increase", "rate", "ratio", "mean", "quantile"]
STATISTICS: dict[Kind, tuple[str, ...]] = {
    "gauge": ("last", "max", "min", "avg"),
    "counter": ("increase", "rate", "ratio"),
    "histogram": ("increase", "rate", "ratio", "mean", "quantile"),
}
Op = Literal[">", ">=", "<", "<="]
Severity = Literal["critical", "warning", "info"]
Combine = Literal["max", "min", "avg", "sum"]
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_PERCENTILE = re.compile(r"^p(\d{1,4})$")
_FORBIDDEN_KEYS = (semconv.ML_REQUEST_ID, "request_id")
LOG_CHANNEL = "log"
"""The channel every configuration has: a structured log event on ``inferwatch.events``."""


class AlertPolicy(BaseModel):
    """One alert: ``statistic`` of ``metric`` over ``window``, per group, ``op`` ``threshold``."""

    # YAML reads `ml.model.version: 3.1` as a number; attribute values compare as text.
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, coerce_numbers_to_str=True
    )

    name: str
    metric: str
    statistic: Statistic
    op: Op
    threshold: float
    window: PositiveDuration = 300.0
    for_: Duration = Field(default=0.0, alias="for")
    """How long the condition must hold before the alert fires (0: at once)."""
    keep_firing_for: Duration = 0.0
    """How long a firing alert stays firing after its condition stops holding (damps flapping)."""
    renotify: PositiveDuration | None = None
    """Notify again while still firing, at most this often (None: once per firing)."""
    quantile: float | None = Field(default=None, gt=0, lt=1)
    where: Filter = Field(default_factory=dict)
    group_by: tuple[str, ...] = ()
    numerator: Filter | None = None
    """``ratio``: the share of the window's count whose points also match this filter."""
    denominator: str | None = None
    """``ratio``: divide by the count of this other metric (same ``where`` and groups)."""
    combine: Combine | None = None
    """Gauges: how a group's series combine; default: the worst one for the condition."""
    severity: Severity = "warning"
    summary: str | None = None
    description: str = ""
    runbook_url: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    channels: tuple[str, ...] = (LOG_CHANNEL,)
    instrument: Kind | None = None
    """The metric's instrument kind, for a metric inferwatch does not know (your own)."""
    unit: str = ""
    """The metric's OTel unit, for a metric inferwatch does not know (Prometheus name)."""

    @model_validator(mode="before")
    @classmethod
    def _percentile_shorthand(cls, data: Any) -> Any:
        """``statistic: p99`` is ``statistic: quantile, quantile: 0.99``."""
        if isinstance(data, Mapping):
            match = _PERCENTILE.match(str(data.get("statistic", "")))
            if match:
                digits = match[1]
                q = int(digits) / 10 ** len(digits)
                if data.get("quantile") not in (None, q):
                    raise ValueError(f"statistic {data['statistic']} contradicts quantile")
                data = {**data, "statistic": "quantile", "quantile": q}
        return data

    @field_validator("name")
    @classmethod
    def _name_is_an_identifier(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"{value!r} is not a valid alert name: letters, digits, '_', '.', '-', "
                "starting with a letter"
            )
        return value

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("threshold must be a finite number")
        return value

    @field_validator("where", "numerator")
    @classmethod
    def _filter_keys(cls, value: Filter | None) -> Filter | None:
        for key in value or {}:
            _check_attribute(key)
        return value

    @field_validator("group_by")
    @classmethod
    def _group_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            _check_attribute(key)
        if len(set(value)) != len(value):
            raise ValueError("group_by names an attribute twice")
        return value

    @field_validator("channels")
    @classmethod
    def _some_channel(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("a policy needs at least one channel (the built-in one is 'log')")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AlertPolicy:
        known = KNOWN_METRICS.get(self.metric)
        if known is None and self.instrument is None:
            raise ValueError(
                f"metric {self.metric!r} is not an inferwatch metric; for your own metric, "
                "declare instrument (histogram, counter or gauge) and unit"
            )
        if known is not None and self.instrument not in (None, known.kind):
            raise ValueError(f"metric {self.metric!r} is a {known.kind}, not {self.instrument}")
        kind = self.info.kind
        if self.statistic not in STATISTICS[kind]:
            allowed = ", ".join(STATISTICS[kind])
            raise ValueError(
                f"statistic {self.statistic!r} does not apply to {self.metric!r} (a {kind}); "
                f"use one of {allowed}"
            )
        if (self.quantile is None) != (self.statistic != "quantile"):
            raise ValueError("quantile goes with statistic quantile (or write statistic: p99)")
        if self.statistic == "ratio":
            if (self.numerator is None) == (self.denominator is None):
                raise ValueError("statistic ratio needs exactly one of numerator, denominator")
            if self.denominator is not None:
                other = KNOWN_METRICS.get(self.denominator)
                if other is None or other.kind == "gauge":
                    raise ValueError(
                        f"denominator {self.denominator!r} must be an inferwatch counter or "
                        "histogram"
                    )
        elif self.numerator is not None or self.denominator is not None:
            raise ValueError("numerator and denominator go with statistic ratio")
        if self.combine is not None and kind != "gauge":
            raise ValueError("combine applies to gauges; counts and histograms are summed")
        return self

    @property
    def info(self) -> MetricInfo:
        """The metric's kind, unit and Prometheus name."""
        known = KNOWN_METRICS.get(self.metric)
        if known is not None:
            return known
        assert self.instrument is not None  # checked by the validator
        return MetricInfo(self.metric, self.instrument, self.unit)

    @property
    def combine_series(self) -> Combine:
        """How a gauge's series combine in a group: given, else the worst for the condition."""
        if self.combine is not None:
            return self.combine
        return "max" if self.op in (">", ">=") else "min"

    def statistic_text(self) -> str:
        """``p99``, ``ratio``, ... as a person reads it."""
        if self.statistic == "quantile" and self.quantile is not None:
            return f"p{round(self.quantile * 100, 3):g}"
        return self.statistic

    def default_summary(self) -> str:
        return (
            f"{self.name}: {self.statistic_text()} of {self.metric} over "
            f"{format_duration(self.window)} {self.op} {self.threshold:g}"
        )


def _check_attribute(key: str) -> None:
    if not key:
        raise ValueError("attribute names cannot be empty")
    if key in _FORBIDDEN_KEYS:
        raise ValueError("request ids never go on metrics, so they cannot filter or group")


class RateLimit(BaseModel):
    """At most ``max`` notifications per alert and channel in any ``per`` (suppressed: counted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max: int = Field(default=10, ge=1)
    per: PositiveDuration = 3600.0


class LogChannel(BaseModel):
    """A structured log event on ``inferwatch.events`` (an OTel log record with ``logs=True``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["log"] = "log"
    rate_limit: RateLimit | None = None


_ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str) -> str:
    """``value`` with each ``${env:NAME}`` replaced by that environment variable (unset: error).

    The collector's syntax, so that a webhook's secret (a Slack URL's path, a bearer token)
    lives in the environment rather than in a policy file under version control.
    """

    def variable(match: re.Match[str]) -> str:
        found = os.environ.get(match.group(1))
        if found is None:
            raise ValueError(f"environment variable {match.group(1)} is not set")
        return found

    return _ENV_REFERENCE.sub(variable, value)


class WebhookChannel(BaseModel):
    """POST the notification as JSON; retried with backoff on a background worker.

    ``url`` and ``headers`` values may refer to environment variables as ``${env:NAME}``. Both
    are kept out of the channel's repr, and messages name the webhook by `display_url` (scheme
    and host), since a webhook URL's path is often its secret.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["webhook"] = "webhook"
    url: str = Field(repr=False)
    timeout: PositiveDuration = 5.0
    """Connect, write and read timeout of each attempt."""
    retries: int = Field(default=3, ge=0, le=10)
    """Further attempts after a failure (connection error, timeout, 429 or 5xx)."""
    backoff: PositiveDuration = 0.5
    """The first wait between attempts; doubles each time, up to ``max_backoff``."""
    max_backoff: PositiveDuration = 30.0
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    queue_size: int = Field(default=100, ge=1)
    """Notifications waiting for delivery; beyond it new ones are dropped (and counted)."""
    rate_limit: RateLimit | None = None

    @field_validator("url", mode="before")
    @classmethod
    def _http_url(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value  # pydantic names the type
        url = expand_env(value)
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"{value!r} is not an http(s) URL")  # as written, not expanded
        return url

    @field_validator("headers", mode="before")
    @classmethod
    def _expand_headers(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        return {k: expand_env(v) if isinstance(v, str) else v for k, v in value.items()}

    @property
    def display_url(self) -> str:
        """The URL without its path, query or credentials: what logs and errors show."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        rest = "/..." if parts.path.strip("/") or parts.query else ""
        return f"{parts.scheme}://{parts.hostname}{port}{rest}"


class CallableChannel(BaseModel):
    """Call ``function(notification)`` on a background worker; exceptions are counted."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["callable"] = "callable"
    function: Callable[[Notification], object]
    queue_size: int = Field(default=100, ge=1)
    rate_limit: RateLimit | None = None


ChannelSpec = Annotated[LogChannel | WebhookChannel | CallableChannel, Field(discriminator="type")]


class AlertRules(BaseModel):
    """Policies, the channels they notify, and how often the process evaluates them.

    >>> iw.configure(alerts=AlertRules(policies=[...], channels={"pager": page}))
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    policies: tuple[AlertPolicy, ...]
    channels: dict[str, ChannelSpec] = Field(default_factory=dict)
    evaluation_interval: PositiveDuration = 30.0
    rate_limit: RateLimit = RateLimit()
    """The default for channels without their own."""
    target: Target = DEFAULT_TARGET
    """The path the metrics take into Prometheus, whose names the rendered rules and dashboard
    use (`inferwatch.alerts.targets`); the in-process evaluation does not depend on it."""

    @field_validator("channels", mode="before")
    @classmethod
    def _wrap_callables(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {
                k: {"type": "callable", "function": v} if callable(v) else v
                for k, v in value.items()
            }
        return value

    @model_validator(mode="after")
    def _references(self) -> AlertRules:
        names = [p.name for p in self.policies]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"policy names must be unique: {', '.join(duplicates)}")
        for policy in self.policies:
            unknown = [c for c in policy.channels if c != LOG_CHANNEL and c not in self.channels]
            if unknown:
                raise ValueError(f"policy {policy.name}: unknown channel(s) {', '.join(unknown)}")
            if policy.window < self.evaluation_interval:
                raise ValueError(
                    f"policy {policy.name}: window {format_duration(policy.window)} is shorter "
                    f"than evaluation_interval {format_duration(self.evaluation_interval)}"
                )
        return self

    def channel(self, name: str) -> LogChannel | WebhookChannel | CallableChannel:
        return self.channels.get(name) or LogChannel()


def format_duration(seconds: float) -> str:
    """Seconds in the form Prometheus reads (``90`` → ``1m30s``; ``0.25`` → ``250ms``)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    if ms:
        parts.append(f"{ms}ms")
    return "".join(parts)


def explain(exc: ValidationError, data: Any = None) -> str:
    """One line per problem, each naming its field (``policies[2] (FraudErrors).threshold``)."""
    lines = []
    for error in exc.errors():
        path = ""
        for i, part in enumerate(error["loc"]):
            if isinstance(part, int):
                path += f"[{part}]"
                name = _policy_name(data, error["loc"][: i + 1])
                if name:
                    path += f" ({name})"
            else:
                path += f".{part}" if path else str(part)
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{path or 'value'}: {message}")
    return "; ".join(lines)


def _policy_name(data: Any, loc: tuple[int | str, ...]) -> str | None:
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    name = node.get("name") if isinstance(node, Mapping) else getattr(node, "name", None)
    return name if isinstance(name, str) else None
