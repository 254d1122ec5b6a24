"""What inferwatch's metrics are (instrument kind, unit) and what Prometheus calls them.

A policy names an OTel metric (``ml.inference.duration``); the in-process evaluator reads it
from the SDK under that name, while the generated Prometheus rules and Grafana panels must use
the name the collector's ``prometheus`` exporter gives it (``ml_inference_duration_seconds``,
with ``_bucket``/``_sum``/``_count`` series). Both come from the one entry here, which is made
from the metric's entry in `inferwatch.semconv.INSTRUMENTS` (the table its instrument is created
from).

The translation follows the OpenTelemetry Collector (contrib) ``prometheus`` exporter with its
default ``translation_strategy: UnderscoreEscapingWithSuffixes`` (``add_metric_suffixes: true``):
github.com/prometheus/otlptranslator ``metric_namer.go`` (``normalizeName``), ``unit_namer.go``
(``buildUnitSuffixes``, ``cleanUpUnit``) and ``normalize_label.go``, which the exporter uses
(formerly opentelemetry-collector-contrib ``pkg/translator/prometheus``; its README has the same
rules as a table). In short: characters other than ``[a-zA-Z0-9:]`` split the name into tokens
joined by ``_``; a UCUM unit is mapped (``s`` → ``seconds``) and appended unless already a
token; units in braces (``{prediction}``) add nothing; monotonic sums end in ``_total``; gauges
with unit ``1`` end in ``_ratio``. Attribute keys become labels with every other character
replaced by ``_`` (``ml.model.name`` → ``ml_model_name``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inferwatch import semconv

Kind = semconv.MetricKind
"""counter: a monotonic sum (Counter or ObservableCounter); gauge: a gauge or non-monotonic sum."""


@dataclass(frozen=True, slots=True)
class MetricInfo:
    name: str
    kind: Kind
    unit: str

    @property
    def prometheus_name(self) -> str:
        """The base name the collector's Prometheus exporter gives this metric."""
        return prometheus_metric_name(self.name, self.unit, self.kind)

    def prometheus_series(self, part: str = "") -> str:
        """Counter series (``_total``) or a histogram part: ``bucket``, ``sum`` or ``count``."""
        return f"{self.prometheus_name}_{part}" if part else self.prometheus_name


KNOWN_METRICS: dict[str, MetricInfo] = {
    name: MetricInfo(name, spec.kind, spec.unit) for name, spec in semconv.INSTRUMENTS.items()
}
"""Every metric inferwatch emits (`semconv.INSTRUMENTS`): what a policy may name without
declaring its instrument."""

# UCUM units and the words Prometheus uses for them (otlptranslator `unitMap`, `perUnitMap`).
_UNITS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes",
    "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes", "KBy": "kilobytes",
    "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes", "m": "meters", "V": "volts",
    "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius", "Hz": "hertz",
    "1": "", "%": "percent",
}  # fmt: skip
_PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month",
              "y": "year"}  # fmt: skip
_NAME_SEPARATOR = re.compile(r"[^a-zA-Z0-9:]+")
_INVALID_UNIT_CHARS = re.compile(r"[^a-zA-Z0-9:_]")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def _clean_unit(unit: str) -> str:
    return re.sub(r"__+", "_", _INVALID_UNIT_CHARS.sub("_", unit)).removeprefix("_")


def _unit_suffixes(unit: str) -> tuple[str, str]:
    main, _, per = unit.partition("/")
    main, per = main.strip(), per.strip()
    main_suffix = _UNITS.get(main, main) if main and not ({"{", "}"} & set(main)) else ""
    per_suffix = ""
    if per and not ({"{", "}"} & set(per)):
        per_suffix = f"per_{_PER_UNITS.get(per, per)}"
    return _clean_unit(main_suffix), _clean_unit(per_suffix)


def prometheus_metric_name(name: str, unit: str, kind: Kind) -> str:
    """The collector exporter's name for an OTel metric (see the module docstring).

    >>> prometheus_metric_name("ml.inference.duration", "s", "histogram")
    'ml_inference_duration_seconds'
    """
    tokens = [t for t in _NAME_SEPARATOR.split(name) if t]
    main, per = _unit_suffixes(unit)
    per = "" if per == "per_" else per.removesuffix("_")
    if per in tokens:
        per = ""
    if per:
        main = main.removesuffix("_")
    if main and main not in tokens:
        tokens.append(main)
    if per:
        tokens.append(per)
    if kind == "counter":
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if unit == "1" and kind == "gauge":
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    result = "_".join(tokens)
    return f"_{result}" if result[:1].isdigit() else result


def prometheus_label(key: str) -> str:
    """The label an OTel attribute key becomes (``ml.model.name`` → ``ml_model_name``)."""
    label = _INVALID_LABEL_CHARS.sub("_", key)
    if label[:1].isdigit():
        return f"key_{label}"
    if label.startswith("_") and not label.startswith("__"):
        return f"key{label}"
    return label
