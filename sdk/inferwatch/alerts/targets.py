"""Where the metrics go: the name each path into Prometheus gives a metric and an attribute.

One OTel metric reaches Prometheus under different names depending on the software that
translates it, so rules and dashboards are rendered for a *target*:

* ``otel-python`` (the default): the OTel Python SDK's ``PrometheusMetricReader``
  (opentelemetry-exporter-prometheus), scraped by Prometheus. Its rules
  (``opentelemetry/exporter/prometheus/_mapping.py`` and prometheus_client's ``Metric``): the
  name with every run of characters other than ``[a-zA-Z0-9:]`` made one ``_``, the unit's
  word appended unless the name already ends with it (``s`` → ``_seconds``; ``1`` and units in
  braces add nothing, so no ``_ratio``), counters end in ``_total``; attribute keys with every
  run of characters other than ``[a-zA-Z0-9]`` made one ``_``.
* the four ``translation_strategy`` values of github.com/prometheus/otlptranslator, which the
  collector's ``prometheus`` and ``prometheusremotewrite`` exporters and Prometheus' (and
  Mimir's) OTLP receiver use (``metric_namer.go``, ``unit_namer.go``, ``label_namer.go``):
  ``UnderscoreEscapingWithSuffixes`` (their default: names split into tokens at characters
  other than ``[a-zA-Z0-9:]``, the unit's word added unless already a token, ``_total`` on
  counters, ``_ratio`` on gauges of unit ``1``; labels with other characters replaced by
  ``_``), ``UnderscoreEscapingWithoutSuffixes`` (the same escaping, no suffix),
  ``NoUTF8EscapingWithSuffixes`` (names and labels as they are, with the suffixes) and
  ``NoTranslation`` (names and labels as they are, no suffix).

Histograms are ``_bucket``, ``_sum`` and ``_count`` series of the name on every target.

>>> metric_name("ml.drift.detected", "1", "gauge", "UnderscoreEscapingWithSuffixes")
'ml_drift_detected_ratio'
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from inferwatch import semconv

Target = Literal[
    "otel-python",
    "UnderscoreEscapingWithSuffixes",
    "UnderscoreEscapingWithoutSuffixes",
    "NoUTF8EscapingWithSuffixes",
    "NoTranslation",
]
TARGETS: tuple[Target, ...] = get_args(Target)
DEFAULT_TARGET: Target = "otel-python"
"""The path the README shows: ``iw.configure(metric_readers=[PrometheusMetricReader()])``."""

Kind = semconv.MetricKind

# UCUM units and the words Prometheus uses for them (otlptranslator `unitMap`, `perUnitMap`;
# the OTel Python exporter's `_UNIT_MAPPINGS`, `_PER_UNIT_MAPPINGS` are copies of them).
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
_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9:_]+")
_INVALID_UNIT_CHARS = re.compile(r"[^a-zA-Z0-9:_]")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_PYTHON_LABEL_SEPARATOR = re.compile(r"[^a-zA-Z0-9]+")
_UNIT_ANNOTATION = re.compile(r"{.*}")
_LEGACY_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LEGACY_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def metric_name(name: str, unit: str, kind: Kind, target: Target = DEFAULT_TARGET) -> str:
    """The name ``target`` gives an OTel metric (histograms: the base of their three series).

    >>> metric_name("ml.inference.duration", "s", "histogram")
    'ml_inference_duration_seconds'
    """
    if target == "otel-python":
        return _python_name(name, unit, kind)
    if target == "UnderscoreEscapingWithSuffixes":
        return _escaped_with_suffixes(name, unit, kind)
    if target == "UnderscoreEscapingWithoutSuffixes":
        escaped = "_".join(t for t in _INVALID_NAME_CHARS.split(name) if t)
        return f"_{escaped}" if escaped[:1].isdigit() else escaped
    if target == "NoUTF8EscapingWithSuffixes":
        return _utf8_with_suffixes(name, unit, kind)
    return name


def label_name(key: str, target: Target = DEFAULT_TARGET) -> str:
    """The label an OTel attribute key becomes (``ml.model.name`` → ``ml_model_name``)."""
    if target == "otel-python":
        if key[:1].isdigit():
            key = "_" + key[1:]
        return _PYTHON_LABEL_SEPARATOR.sub("_", key)
    if target in ("NoUTF8EscapingWithSuffixes", "NoTranslation"):
        return key
    # Prometheus' defaults (label_name_underscore_sanitization and _preserve_multiple_underscores)
    label = _INVALID_LABEL_CHARS.sub("_", key)
    if label[:1].isdigit():
        return f"key_{label}"
    if label.startswith("_") and not label.startswith("__"):
        return f"key{label}"
    return label


def is_legacy_metric_name(name: str) -> bool:
    """Whether PromQL can write ``name`` bare; otherwise it is quoted: ``{"ml.x_total"}``."""
    return bool(_LEGACY_METRIC.match(name))


def is_legacy_label_name(name: str) -> bool:
    """Whether PromQL can write the label bare; otherwise it is quoted: ``"ml.model.name"``."""
    return bool(_LEGACY_LABEL.match(name))


# -- the OTel Python exporter ---------------------------------------------------------------------
def _python_unit(unit: str) -> str:
    unit = _UNIT_ANNOTATION.sub("", unit)
    if unit in _UNITS:
        return _UNITS[unit]
    top, slash, bottom = unit.partition("/")
    if slash:
        bottom = _NAME_SEPARATOR.sub("_", bottom)
        if bottom:
            top = _NAME_SEPARATOR.sub("_", top)
            top = _UNITS.get(top, top)
            bottom = _PER_UNITS.get(bottom, bottom)
            return f"{top}_per_{bottom}" if top else f"per_{bottom}"
    return _NAME_SEPARATOR.sub("_", unit).strip("_")


def _python_name(name: str, unit: str, kind: Kind) -> str:
    if name[:1].isdigit():
        name = "_" + name[1:]
    base = _NAME_SEPARATOR.sub("_", name)
    suffix = _python_unit(unit)
    if kind == "counter":  # prometheus_client's CounterMetricFamily: _total comes last
        base = base.removesuffix("_total")
    if suffix and not base.endswith(f"_{suffix}"):
        base = f"{base}_{suffix}"
    return f"{base}_total" if kind == "counter" else base


# -- otlptranslator -------------------------------------------------------------------------------
def _unit_suffixes(unit: str) -> tuple[str, str]:
    """``buildUnitSuffixes``: the main unit's word and ``per_<word>``, before any escaping."""
    main, _, per = unit.partition("/")
    main, per = main.strip(), per.strip()
    main_suffix = _UNITS.get(main, main) if main and not ({"{", "}"} & set(main)) else ""
    per_suffix = ""
    if per and not ({"{", "}"} & set(per)):
        per_suffix = f"per_{_PER_UNITS.get(per, per)}"
    return main_suffix, per_suffix


def _clean_unit(unit: str) -> str:
    return re.sub(r"__+", "_", _INVALID_UNIT_CHARS.sub("_", unit)).removeprefix("_")


def _escaped_with_suffixes(name: str, unit: str, kind: Kind) -> str:
    """``normalizeName``."""
    tokens = [t for t in _NAME_SEPARATOR.split(name) if t]
    main, per = (_clean_unit(s) for s in _unit_suffixes(unit))
    if main in tokens:
        main = ""
    per = "" if per == "per_" else per.removesuffix("_")
    if per in tokens:
        per = ""
    if per:
        main = main.removesuffix("_")
    if main:
        tokens.append(main)
    if per:
        tokens.append(per)
    if kind == "counter":
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if unit == "1" and kind == "gauge":
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    result = "_".join(tokens)
    return f"_{result}" if result[:1].isdigit() else result


def _trim(name: str, suffix: str) -> str:
    """``trimSuffixAndDelimiter``."""
    if name.endswith(suffix) and len(name) > len(suffix) + 1:
        return name[: -(len(suffix) + 1)]
    return name


def _utf8_with_suffixes(name: str, unit: str, kind: Kind) -> str:
    """``buildMetricName``: the suffixes are trimmed, then appended in a fixed order."""
    ratio = unit == "1" and kind == "gauge"
    if ratio:
        name = _trim(name, "ratio")
    if kind == "counter":
        name = _trim(name, "total")
    main, per = _unit_suffixes(unit)
    if per:
        name = _trim(name, per)
    if main and not name.endswith(main):
        name = f"{name}_{main}"
    if per:
        name = f"{name}_{per}"
    if kind == "counter":
        name = f"{name}_total"
    return f"{name}_ratio" if ratio else name
