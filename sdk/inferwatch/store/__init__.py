"""The embedded local store: OTLP/JSON lines segments, the collector ``file`` exporter's format.

Telemetry goes here when no OTLP endpoint is configured. `StoreSpanExporter` and
`StoreLogExporter` append to one open segment per process and signal; `iter_spans`,
`iter_logs` and `read_lines` read a store directory (or any OTLP/JSON lines file) back, skipping
and counting torn and malformed lines. Layout, rotation and retention: `inferwatch.store.writer`.
"""

from inferwatch.store.encode import encode_logs_json, encode_spans_json
from inferwatch.store.reader import (
    ReadStats,
    StoreNotFound,
    decode_any_value,
    iter_logs,
    iter_requests,
    iter_segments,
    iter_spans,
    read_lines,
)
from inferwatch.store.segments import (
    STORE_DIR_ENV,
    SegmentName,
    default_directory,
    is_stale,
    parse_segment_name,
)
from inferwatch.store.writer import SegmentWriter, StoreLogExporter, StoreSpanExporter

__all__ = [
    "STORE_DIR_ENV",
    "ReadStats",
    "SegmentName",
    "SegmentWriter",
    "StoreLogExporter",
    "StoreNotFound",
    "StoreSpanExporter",
    "decode_any_value",
    "default_directory",
    "encode_logs_json",
    "encode_spans_json",
    "is_stale",
    "iter_logs",
    "iter_requests",
    "iter_segments",
    "iter_spans",
    "parse_segment_name",
    "read_lines",
]
