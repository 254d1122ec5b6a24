"""The validated configuration: `Settings`, read from `configure()`'s arguments and the environment.

Bad configuration raises `ConfigurationError` here, at start-up, never later on the hot path.
Environment variables follow the OpenTelemetry SDK specification (``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_*``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from opentelemetry.sdk.resources import Resource
from pydantic import BaseModel, ConfigDict, Field, SecretBytes, ValidationError, field_validator

from inferwatch import semconv
from inferwatch.export import privacy as _privacy
from inferwatch.export import readers
from inferwatch.store import default_directory

Protocol = Literal["grpc", "http/protobuf"]
_PROTOCOLS = ("grpc", "http/protobuf")


class ConfigurationError(ValueError):
    """Raised by `configure()` (and decorators) for settings that cannot work."""


class Settings(BaseModel):
    """The validated configuration; `configure()` returns it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_name: str | None = None
    service_version: str | None = None
    environment: str | None = None
    endpoint: str | None = None
    protocol: Protocol = "http/protobuf"
    headers: dict[str, str] = Field(default_factory=dict, repr=False)  # credentials, often
    sampling_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    metric_tags: tuple[str, ...] = ()
    max_queue_size: int | None = Field(default=None, gt=0)
    max_export_batch_size: int | None = Field(default=None, gt=0)
    schedule_delay_ms: float | None = Field(default=None, gt=0)
    export_timeout_ms: float | None = Field(default=None, gt=0)
    metric_export_interval_ms: float | None = Field(default=None, gt=0)
    max_classes: int = Field(default=100, gt=0)
    logs: bool = True
    internal_metrics: bool = True
    store: str | None = None
    """The local store directory traces and logs go to without an OTLP endpoint (None: off)."""
    redact: bool = True
    """Scrub tags and log attributes with the default patterns (`inferwatch.export.privacy`)."""
    redact_keys: tuple[str, ...] = ()
    redact_values: dict[str, str] = Field(default_factory=dict)
    scrub: _privacy.Hook | None = None
    hash_tags: tuple[str, ...] = ()
    hash_key: SecretBytes | None = None
    """From ``hash_key`` or ``$INFERWATCH_HASH_KEY``; never shown (repr: ``**********``)."""
    strict: bool = False
    flush_on_sigterm: bool = True
    shutdown_timeout_ms: float = Field(default=5_000.0, ge=0)
    alerts: Any = None
    """Alert policies evaluated in the process (`inferwatch.alerts.AlertRules`); None: none."""

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"endpoint {value!r} has an invalid port") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"endpoint {value!r} is not an OTLP URL; expected http(s)://host[:port], "
                "e.g. http://localhost:4317 for gRPC or http://localhost:4318 for HTTP"
            )
        del port
        return value.rstrip("/")

    @field_validator("metric_tags")
    @classmethod
    def _no_request_ids_on_metrics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if semconv.ML_REQUEST_ID in value or "request_id" in value:
            raise ValueError("request ids are unbounded and never go on metrics")
        return value


def from_arguments(arguments: dict[str, Any]) -> Settings:
    env = os.environ
    values = {k: v for k, v in arguments.items() if k in Settings.model_fields}
    values["endpoint"] = arguments["endpoint"] or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None
    values["protocol"] = (
        arguments["protocol"] or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    )
    if values["protocol"] not in _PROTOCOLS:
        raise ConfigurationError(
            f"unknown OTLP protocol {values['protocol']!r}; use one of {', '.join(_PROTOCOLS)}"
        )
    values["headers"] = _parse_headers(arguments["headers"])
    values["metric_tags"] = tuple(arguments["metric_tags"])
    try:
        values["alerts"] = readers.setting("alerts", arguments["alerts"])
    except ValueError as exc:
        raise ConfigurationError(f"invalid alert policies: {exc}") from None
    values.update(_privacy_values(arguments))
    store = arguments["store"]
    values["store"] = (
        None
        if store is False
        else os.fspath(
            default_directory() if store is None else Path(store).expanduser().absolute()
        )
    )
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigurationError(f"invalid inferwatch configuration: {problems}") from None


def _privacy_values(arguments: dict[str, Any]) -> dict[str, Any]:
    """The privacy options as Settings fields; strings where lists belong are refused."""
    values: dict[str, Any] = {}
    for name in ("redact_keys", "hash_tags"):
        given = arguments[name]
        if isinstance(given, str | bytes):
            raise ConfigurationError(f"{name} is a list of names, e.g. [{given!r}]")
        values[name] = tuple(given)
    values["redact_values"] = dict(arguments["redact_values"] or {})
    key = arguments["hash_key"]
    if key is None:
        key = os.environ.get(_privacy.HASH_KEY_ENV) or None
    values["hash_key"] = key.encode() if isinstance(key, str) else key
    return values


def scrubber(settings: Settings) -> _privacy.Scrubber:
    try:
        return _privacy.Scrubber(
            defaults=settings.redact,
            redact_keys=settings.redact_keys,
            redact_values=settings.redact_values,
            scrub=settings.scrub,
            hash_tags=settings.hash_tags,
            hash_key=settings.hash_key.get_secret_value() if settings.hash_key else None,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"invalid inferwatch configuration: {exc}") from None


def _parse_headers(headers: Mapping[str, str] | str | None) -> dict[str, str]:
    if headers is None:
        return {}
    if isinstance(headers, str):  # the OTEL_EXPORTER_OTLP_HEADERS form: k=v,k2=v2
        pairs = [item.split("=", 1) for item in headers.split(",") if item.strip()]
        if any(len(p) != 2 or not p[0].strip() for p in pairs):
            # Not echoed: headers carry credentials (Authorization, API keys).
            raise ConfigurationError("headers are not of the form key=value,key=value")
        return {k.strip(): v.strip() for k, v in pairs}
    return {str(k): str(v) for k, v in headers.items()}


def resource(settings: Settings) -> Resource:
    attributes: dict[str, str] = {}
    if settings.service_name:
        attributes[semconv.SERVICE_NAME] = settings.service_name
    if settings.service_version:
        attributes[semconv.SERVICE_VERSION] = settings.service_version
    if settings.environment:
        attributes[semconv.DEPLOYMENT_ENVIRONMENT] = settings.environment
    return Resource.create(attributes)  # merges OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME
