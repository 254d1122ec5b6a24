"""Exports a collector refused with an HTTP status, counted as failed in the SDK's own metrics."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class RefusalsCounted:
    """Counts an export the collector refused with an HTTP status as failed, not as exported.

    The OTLP/HTTP exporters put an ``error.type`` on ``otel.sdk.exporter.*.exported`` only when
    the transport raised; a 413, 429 or 503 answer fails the export without an exception, and
    they count it as exported. This gives it one, named by the status (``error.type="503"``, as
    OTel's HTTP conventions do), so a refusing collector shows up as lost telemetry.
    """

    def __init__(self, metrics: Any) -> None:
        self._metrics = metrics

    @contextmanager
    def export_operation(self, num_items: int) -> Iterator[Any]:
        with self._metrics.export_operation(num_items) as result:
            yield result
            status = (result.error_attrs or {}).get("http.response.status_code")
            if result.error is None and status is not None:
                result.error = _status_error(int(status))()


@functools.cache
def _status_error(status: int) -> type[Exception]:
    return type(str(status), (Exception,), {"__module__": __name__})
