"""Logs: structlog and stdlib records become OTel log records linked to the inference span."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from typing import Any

import structlog
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

import inferwatch as iw
from tests.conftest import Captured


def _only(records: list[ReadableLogRecord], body: str) -> Any:
    (found,) = [r.log_record for r in records if r.log_record.body == body]
    return found


def test_structlog_event_carries_span_ids_request_id_and_tags(telemetry: Captured) -> None:
    @iw.monitor(model="fraud")
    def predict(x: float) -> float:
        structlog.get_logger().info("scored", score=0.7)
        return x

    with iw.context(request_id="r-log", region="eu"):
        predict(1.0)
    span = telemetry.span("inference fraud")
    record = _only(telemetry.logs(), "scored")
    assert record.trace_id == span.context.trace_id
    assert record.span_id == span.context.span_id
    assert record.severity_text == "INFO"
    attrs = dict(record.attributes)
    assert attrs["ml.request.id"] == "r-log"
    assert attrs["region"] == "eu"
    assert attrs["score"] == 0.7


def test_severity_exceptions_and_unserialisable_values(telemetry: Captured) -> None:
    log = structlog.get_logger()
    try:
        raise ValueError("bad row")
    except ValueError:
        log.exception("failed", payload=object(), nested={"a": [1, 2]})
    log.warning("careful", big=2**80)
    failed = _only(telemetry.logs(), "failed")
    assert failed.severity_text == "ERROR"
    assert dict(failed.attributes)["payload"].startswith("<object object")
    careful = _only(telemetry.logs(), "careful")
    assert careful.severity_text == "WARN"
    assert dict(careful.attributes)["big"] == str(2**80)
    assert iw.internal_errors() == {}


def test_rendering_stays_the_applications_choice(telemetry: Captured) -> None:
    out = io.StringIO()
    structlog.configure(
        processors=[*iw.logs.processors(), structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(out),
    )
    with iw.context(request_id="r-json"):
        structlog.get_logger().info("rendered", n=3)
    line = json.loads(out.getvalue())
    assert line == {"event": "rendered", "n": 3, "ml.request.id": "r-json"}
    assert _only(telemetry.logs(), "rendered") is not None


def _reconfigure_with_fresh_log_capture() -> InMemoryLogRecordExporter:
    """Re-run configure (which installs the bridge again); shutdown closed the old exporter."""
    exporter = InMemoryLogRecordExporter()
    iw.configure(metric_readers=[], log_processors=[SimpleLogRecordProcessor(exporter)])
    return exporter


def test_app_structlog_config_is_extended_not_replaced(telemetry: Captured) -> None:
    out = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(out),
    )
    exporter = _reconfigure_with_fresh_log_capture()
    with iw.context(request_id="r-app"):
        structlog.get_logger().info("kept")
    line = json.loads(out.getvalue())
    assert line["level"] == "info" and line["ml.request.id"] == "r-app"
    assert _only(list(exporter.get_finished_logs()), "kept") is not None


def test_stdlib_logging_is_bridged_with_scope(telemetry: Captured) -> None:
    logger = logging.getLogger("app.scoring")
    logger.setLevel(logging.INFO)

    @iw.monitor(model="m")
    def predict(x: float) -> float:
        logger.info("stdlib says %s", "hello", extra={"rows": 3})
        return x

    with iw.context(request_id="r-std", cohort="new"):
        predict(1.0)
    record = _only(telemetry.logs(), "stdlib says hello")
    span = telemetry.span("inference m")
    assert record.trace_id == span.context.trace_id
    attrs = dict(record.attributes)
    assert (attrs["ml.request.id"], attrs["cohort"], attrs["rows"]) == ("r-std", "new", 3)


def test_structlog_over_stdlib_is_exported_once(telemetry: Captured) -> None:
    logging.getLogger("app.stdlib").setLevel(logging.INFO)
    structlog.configure(
        processors=[structlog.stdlib.add_log_level, structlog.dev.ConsoleRenderer(colors=False)],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    exporter = _reconfigure_with_fresh_log_capture()
    structlog.get_logger("app.stdlib").info("once", k=1)
    bodies = [r.log_record.body for r in exporter.get_finished_logs()]
    assert bodies.count("once") == 1
    assert all("once" not in str(b) or b == "once" for b in bodies)


def test_logs_off_bridges_nothing(telemetry: Captured) -> None:
    iw.configure(metric_readers=[], logs=False)
    structlog.get_logger().info("not exported")
    logging.getLogger("app").warning("not exported either")
    assert telemetry.logs() == []


def test_console_behaviour_of_the_application_is_unchanged() -> None:
    """In a fresh process (pytest installs its own root handlers): stderr and basicConfig."""
    script = textwrap.dedent(
        """
        import logging
        import inferwatch as iw

        iw.configure(store=False, metric_readers=[])
        # No logging configured: Python prints warnings via its last-resort handler. Still so.
        logging.getLogger("app").warning("visible on stderr")
        logging.getLogger("app").info("not shown: below the last-resort level")
        # basicConfig still takes effect (a root handler would otherwise make it a no-op).
        logging.basicConfig(level=logging.INFO, format="configured: %(message)s")
        logging.getLogger("app").info("formatted by the app's own config")
        names = sorted(type(h).__name__ for h in logging.getLogger().handlers)
        print(names)
        iw.shutdown()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "visible on stderr" in result.stderr
    assert "not shown" not in result.stderr
    assert "configured: formatted by the app's own config" in result.stderr
    assert result.stdout.strip() == "['StreamHandler', '_BridgeHandler']"
