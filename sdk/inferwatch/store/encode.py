"""OTLP/JSON encoding of the SDK's readable spans and log records, one export request a line."""

from __future__ import annotations

import base64
import importlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import ReadableSpan

from inferwatch import errors

# OTLP/JSON encoding, written directly from the SDK's readable spans and log records as JSON
# text. It is what `MessageToDict(encode_spans(spans), use_integers_for_enums=True)` gives once
# the ids are turned into hex (`encode_spans_protobuf`, the reference the tests compare with),
# about eight times faster (~14 us against ~120 us for a span of 15 attributes, in batches of
# 512). Empty and zero fields are left out, as proto3's JSON mapping does.

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

_json_str: Callable[[str], str] = json.encoder.encode_basestring_ascii  # '"..."', ASCII only
_DUMPS = json.JSONEncoder(separators=(",", ":")).encode
_KEYS: dict[str, str] = {}  # attribute key -> '{"key":"<key>","value":'


def _key(key: str) -> str:
    prefix = _KEYS.get(key)
    if prefix is None:
        if len(_KEYS) >= 4096:
            _KEYS.clear()
        prefix = _KEYS[key] = '{"key":' + _json_str(key) + ',"value":'
    return prefix


def _value_json(value: Any) -> str:
    """An attribute value as OTLP/JSON ``AnyValue`` text."""
    kind = type(value)
    if kind is str:
        return '{"stringValue":' + _json_str(value) + "}"
    if kind is bool:
        return '{"boolValue":true}' if value else '{"boolValue":false}'
    if kind is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return '{"intValue":"' + int.__repr__(value) + '"}'
        raise ValueError(f"integer {value} does not fit in 64 bits")
    if kind is float:
        if math.isfinite(value):
            return '{"doubleValue":' + float.__repr__(value) + "}"
        return '{"doubleValue":"' + _non_finite(value) + '"}'
    return _DUMPS(_any_value(value))


def _any_value(value: Any) -> dict[str, Any]:
    """An attribute value as an OTLP/JSON ``AnyValue`` dict (for nested and unusual values)."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": bool(value)}
    if isinstance(value, str):
        return {"stringValue": str(value)}
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return {"intValue": str(int(value))}
        raise ValueError(f"integer {value} does not fit in 64 bits")
    if isinstance(value, float):
        number = float(value)
        return {"doubleValue": number if math.isfinite(number) else _non_finite(number)}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Sequence):
        values = [_any_value(v) for v in value]
        return {"arrayValue": {"values": values} if values else {}}
    if isinstance(value, Mapping):
        pairs = [{"key": str(k), "value": _any_value(v)} for k, v in value.items()]
        return {"kvlistValue": {"values": pairs} if pairs else {}}
    raise TypeError(f"invalid attribute value type {type(value).__name__}")


def _non_finite(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _attributes(attributes: Mapping[str, Any] | None) -> str:
    """A ``KeyValue`` list as JSON text; "" when there is nothing to write."""
    if not attributes:
        return ""
    parts = []
    keys, json_str = _KEYS, _json_str
    for key, value in attributes.items():  # the common types inline: this is the hot loop
        prefix = keys.get(key) or _key(key)
        kind = type(value)
        if kind is str:
            parts.append(prefix + '{"stringValue":' + json_str(value) + "}}")
        elif kind is int and _INT64_MIN <= value <= _INT64_MAX:
            parts.append(prefix + '{"intValue":"' + int.__repr__(value) + '"}}')
        elif kind is float and value - value == 0.0:  # finite
            parts.append(prefix + '{"doubleValue":' + float.__repr__(value) + "}}")
        else:
            try:
                parts.append(prefix + _value_json(value) + "}")
            except (TypeError, ValueError) as exc:  # as the OTLP exporters do: skip it
                errors.log_internal_error("store.encode", exc)
    return "[" + ",".join(parts) + "]" if parts else ""


def _scope(scope: Any) -> str:
    if scope is None:
        return "{}"
    parts = []
    if scope.name:
        parts.append('"name":' + _json_str(scope.name))
    if scope.version:
        parts.append('"version":' + _json_str(scope.version))
    attributes = _attributes(scope.attributes)
    if attributes:
        parts.append('"attributes":' + attributes)
    return "{" + ",".join(parts) + "}"


def _resource(resource: Any) -> str:
    attributes = _attributes(resource.attributes)
    return '{"attributes":' + attributes + "}" if attributes else "{}"


class Grouper:
    """Groups records by resource, then scope, as the OTLP encoders do; caches their encoding."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Any, str]] = {}

    def encoded(self, thing: Any, encode: Callable[[Any], str]) -> str:
        hit = self._cache.get(id(thing))
        if hit is not None and hit[0] is thing:
            return hit[1]
        if len(self._cache) >= 64:
            self._cache.clear()
        value = encode(thing)
        self._cache[id(thing)] = (thing, value)  # holding `thing` keeps its id from being reused
        return value

    def group(
        self, records: Iterable[Any], encode: Callable[[Any], str]
    ) -> list[tuple[Any, list[tuple[Any, list[str]]]]]:
        by_resource: dict[int, tuple[Any, dict[Any, list[str]]]] = {}
        for record in records:
            resource = record.resource
            slot = by_resource.get(id(resource))
            if slot is None:
                slot = by_resource[id(resource)] = (resource, {})
            scope = record.instrumentation_scope or None
            slot[1].setdefault(scope, []).append(encode(record))
        groups: list[tuple[Any, dict[Any, list[str]]]] = []
        for resource, scopes in by_resource.values():  # merge equal resources (rare)
            for known, known_scopes in groups:
                if known == resource:
                    for scope, items in scopes.items():
                        known_scopes.setdefault(scope, []).extend(items)
                    break
            else:
                groups.append((resource, scopes))
        return [(resource, list(scopes.items())) for resource, scopes in groups]

    def request(
        self, records: Iterable[Any], encode: Callable[[Any], str], names: tuple[str, str, str]
    ) -> bytes:
        outer, middle, inner = names
        resources = []
        for resource, scopes in self.group(records, encode):
            scope_parts = []
            for scope, items in scopes:
                part = f'{{"scope":{self.encoded(scope, _scope)},"{inner}":[{",".join(items)}]'
                if scope is not None and scope.schema_url:
                    part += ',"schemaUrl":' + _json_str(scope.schema_url)
                scope_parts.append(part + "}")
            part = f'{{"resource":{self.encoded(resource, _resource)},"{middle}":['
            part += ",".join(scope_parts) + "]"
            if resource.schema_url:
                part += ',"schemaUrl":' + _json_str(resource.schema_url)
            resources.append(part + "}")
        return f'{{"{outer}":[{",".join(resources)}]}}'.encode("ascii")


def _span(span: ReadableSpan) -> str:
    context = span.get_span_context()
    if context is None:
        raise ValueError(f"span {span.name!r} has no span context")
    parts = [f'{{"traceId":"{context.trace_id:032x}","spanId":"{context.span_id:016x}"']
    trace_state = context.trace_state
    if trace_state:
        state = ",".join(f"{k}={v}" for k, v in trace_state.items())
        parts.append(',"traceState":' + _json_str(state))
    parent = span.parent
    if parent is not None:
        parts.append(f',"parentSpanId":"{parent.span_id:016x}"')
    if span.name:
        parts.append(',"name":' + _json_str(span.name))
    # SDK kinds count from INTERNAL=0, OTLP's from INTERNAL=1 (0 is "unspecified").
    parts.append(f',"kind":{span.kind.value + 1}')
    if span.start_time:
        parts.append(f',"startTimeUnixNano":"{span.start_time}"')
    if span.end_time:
        parts.append(f',"endTimeUnixNano":"{span.end_time}"')
    attributes = _attributes(span.attributes)
    if attributes:
        parts.append(',"attributes":' + attributes)
    if span.dropped_attributes:
        parts.append(f',"droppedAttributesCount":{span.dropped_attributes}')
    if span.events:
        events = []
        for event in span.events:
            fields = []
            if event.timestamp:
                fields.append(f'"timeUnixNano":"{event.timestamp}"')
            if event.name:
                fields.append('"name":' + _json_str(event.name))
            attributes = _attributes(event.attributes)
            if attributes:
                fields.append('"attributes":' + attributes)
            if event.dropped_attributes:
                fields.append(f'"droppedAttributesCount":{event.dropped_attributes}')
            events.append("{" + ",".join(fields) + "}")
        parts.append(',"events":[' + ",".join(events) + "]")
    if span.dropped_events:
        parts.append(f',"droppedEventsCount":{span.dropped_events}')
    if span.links:
        links = []
        for link in span.links:
            linked = link.context
            item = f'{{"traceId":"{linked.trace_id:032x}","spanId":"{linked.span_id:016x}"'
            attributes = _attributes(link.attributes)
            if attributes:
                item += ',"attributes":' + attributes
            if link.dropped_attributes:
                item += f',"droppedAttributesCount":{link.dropped_attributes}'
            links.append(item + f',"flags":{0x300 if linked.is_remote else 0x100}}}')
        parts.append(',"links":[' + ",".join(links) + "]")
    if span.dropped_links:
        parts.append(f',"droppedLinksCount":{span.dropped_links}')
    status = span.status
    code = status.status_code.value
    fields = []
    if status.description:
        fields.append('"message":' + _json_str(status.description))
    if code:
        fields.append(f'"code":{code}')
    parts.append(',"status":{' + ",".join(fields) + "}")
    # SpanFlags: "has is_remote" always, "is_remote" for a remote parent.
    parts.append(',"flags":768}' if parent is not None and parent.is_remote else ',"flags":256}')
    return "".join(parts)


def _log_record(readable: ReadableLogRecord) -> str:
    record = readable.log_record
    parts = []
    if record.timestamp:
        parts.append(f'"timeUnixNano":"{record.timestamp}"')
    severity = getattr(record.severity_number, "value", None)
    if severity:
        parts.append(f'"severityNumber":{int(severity)}')
    if record.severity_text:
        parts.append('"severityText":' + _json_str(record.severity_text))
    try:
        body = _value_json(record.body)
    except (TypeError, ValueError):  # where the protobuf encoder would fail the whole batch
        body = '{"stringValue":' + _json_str(repr(record.body)) + "}"
    parts.append('"body":' + body)
    attributes = _attributes(record.attributes)
    if attributes:
        parts.append('"attributes":' + attributes)
    if readable.dropped_attributes:
        parts.append(f'"droppedAttributesCount":{readable.dropped_attributes}')
    flags = int(record.trace_flags) if record.trace_flags is not None else 0
    if flags:
        parts.append(f'"flags":{flags}')
    if record.trace_id:
        parts.append(f'"traceId":"{record.trace_id:032x}"')
    if record.span_id:
        parts.append(f'"spanId":"{record.span_id:016x}"')
    if record.observed_timestamp:
        parts.append(f'"observedTimeUnixNano":"{record.observed_timestamp}"')
    if record.event_name:
        parts.append('"eventName":' + _json_str(record.event_name))
    return "{" + ",".join(parts) + "}"


_SPAN_NAMES = ("resourceSpans", "scopeSpans", "spans")
_LOG_NAMES = ("resourceLogs", "scopeLogs", "logRecords")


def encode_spans_json(spans: Sequence[ReadableSpan], grouper: Grouper | None = None) -> bytes:
    """One OTLP/JSON ``ExportTraceServiceRequest`` line (no newline) for these spans."""
    return (grouper or Grouper()).request(spans, _span, _SPAN_NAMES)


def encode_logs_json(records: Sequence[ReadableLogRecord], grouper: Grouper | None = None) -> bytes:
    """One OTLP/JSON ``ExportLogsServiceRequest`` line (no newline) for these log records."""
    return (grouper or Grouper()).request(records, _log_record, _LOG_NAMES)


# The reference encoding: the OTLP exporters' protobuf messages, through protobuf's JSON mapping.


def _message_to_dict(message: Any) -> dict[str, Any]:
    json_format: Any = importlib.import_module("google.protobuf.json_format")
    result: dict[str, Any] = json_format.MessageToDict(message, use_integers_for_enums=True)
    return result


def _hex_ids(item: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        value = item.get(key)
        if value:
            item[key] = base64.b64decode(value).hex()


def encode_spans_protobuf(spans: Sequence[ReadableSpan]) -> bytes:
    """As `encode_spans_json`, via ``encode_spans`` and ``MessageToDict`` (slower)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    request = _message_to_dict(encode_spans(spans))
    for resource in request.get("resourceSpans", ()):
        for scope in resource.get("scopeSpans", ()):
            for span in scope.get("spans", ()):
                _hex_ids(span, ("traceId", "spanId", "parentSpanId"))
                for link in span.get("links", ()):
                    _hex_ids(link, ("traceId", "spanId"))
    return _DUMPS(request).encode("utf-8")


def encode_logs_protobuf(records: Sequence[ReadableLogRecord]) -> bytes:
    """As `encode_logs_json`, via ``encode_logs`` and ``MessageToDict`` (slower)."""
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

    request = _message_to_dict(encode_logs(records))
    for resource in request.get("resourceLogs", ()):
        for scope in resource.get("scopeLogs", ()):
            for record in scope.get("logRecords", ()):
                _hex_ids(record, ("traceId", "spanId"))
    return _DUMPS(request).encode("utf-8")


def encode_event_json(
    resource: Any,
    scope_name: str,
    time_ns: int,
    event_name: str,
    body: str,
    attributes: Mapping[str, Any],
    severity_number: int = 13,
    severity_text: str = "WARN",
) -> bytes:
    """One OTLP/JSON ``ExportLogsServiceRequest`` line holding one event record that inferwatch
    writes itself (a report about the store, not a record of the application's)."""
    attrs = _attributes(attributes) or "[]"
    record = (
        f'{{"timeUnixNano":"{time_ns}","observedTimeUnixNano":"{time_ns}",'
        f'"severityNumber":{severity_number},"severityText":{_json_str(severity_text)},'
        f'"body":{{"stringValue":{_json_str(body)}}},"attributes":{attrs},'
        f'"eventName":{_json_str(event_name)}}}'
    )
    return (
        f'{{"resourceLogs":[{{"resource":{_resource(resource)},"scopeLogs":[{{"scope":'
        f'{{"name":{_json_str(scope_name)}}},"logRecords":[{record}]}}]}}]}}'
    ).encode("ascii")
