"""Slicing stored telemetry: where do errors, slow or NaN-laden requests concentrate?

>>> spans = iw.query.open()                       # the local store
>>> spans = iw.query.open("collector-output/")    # any directory of OTLP JSON files
>>> spans = iw.query.open("clickhouse://ch:8123/otel")
>>> spans.slice(by=["region", "cohort"], since="1h")
>>> spans.logs(since="1h", severity="warning", by=["region"])    # the log records, counted
>>> print(spans.incident(since="1h"))    # when it started, where, what the logs say, examples
"""

from __future__ import annotations

import os
from pathlib import Path

from inferwatch.query.engines import ChdbEngine, ClickHouseEngine, Engine
from inferwatch.query.spans import Result, Spans, parse_time

DEFAULT_STORE = ".inferwatch"


def open(source: str | os.PathLike[str] | None = None) -> Spans:
    """Spans from the local store (default), a directory of OTLP JSON, or ClickHouse."""
    if source is None:
        source = os.environ.get("INFERWATCH_STORE", DEFAULT_STORE)
    text = os.fspath(source)
    if text.startswith(("clickhouse://", "clickhouses://")):
        return Spans(ClickHouseEngine(text))
    return Spans(ChdbEngine(Path(text)))


__all__ = ["ChdbEngine", "ClickHouseEngine", "Engine", "Result", "Spans", "open", "parse_time"]
