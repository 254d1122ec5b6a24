"""`iw.configure`: clear errors at start-up, OTEL_* environment variables, provider reuse."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

import inferwatch as iw
from tests._otlp import OtlpReceiver


@pytest.fixture(autouse=True)
def _shutdown_after() -> Iterator[None]:
    yield
    iw.shutdown(timeout_ms=1000)  # some tests point at endpoints where nothing listens


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"protocol": "thrift"}, "unknown OTLP protocol 'thrift'"),
        ({"endpoint": "localhost:4317"}, "not an OTLP URL"),
        ({"endpoint": "ftp://collector:21"}, "not an OTLP URL"),
        ({"endpoint": "http://collector:99999"}, "invalid port"),
        ({"max_queue_size": -1}, "max_queue_size"),
        ({"max_export_batch_size": 0}, "max_export_batch_size"),
        ({"sampling_ratio": 1.5}, "sampling_ratio"),
        ({"metric_tags": ["request_id"]}, "request ids are unbounded"),
        ({"headers": "no-equals-sign"}, "key=value"),
    ],
)
def test_invalid_configuration_fails_at_configure_time(kwargs: dict, message: str) -> None:
    with pytest.raises(iw.ConfigurationError, match=message):
        iw.configure(service_name="svc", **kwargs)


def test_environment_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    settings = iw.configure(service_name="svc", headers="api-key=secret, x-team = ml")
    assert settings.endpoint == "http://127.0.0.1:1"
    assert settings.protocol == "grpc"
    assert settings.headers == {"api-key": "secret", "x-team": "ml"}
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
    with pytest.raises(iw.ConfigurationError, match="carrier-pigeon"):
        iw.configure(service_name="svc")


def test_configure_is_idempotent() -> None:
    first = iw.configure(service_name="svc", metric_tags=["region"])
    from inferwatch.export.state import get_state

    state = get_state()
    assert iw.configure(service_name="svc", metric_tags=["region"]) == first
    assert get_state() is state
    iw.configure(service_name="svc", metric_tags=["cohort"])
    assert get_state() is not state
    assert get_state().metric_tags == ("cohort",)


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_existing_application_providers_are_reused() -> None:
    out = _run(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import inferwatch as iw

        exporter = InMemorySpanExporter()
        app_provider = TracerProvider()
        app_provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(app_provider)
        iw.configure(service_name="svc")
        iw.configure(service_name="svc", metric_tags=["region"])  # still the app's provider

        @iw.monitor(model="m")
        def predict(x):
            return x

        with iw.context(request_id="r-1", region="eu"):
            predict(1.0)
            with trace.get_tracer("app").start_as_current_span("app-span"):
                pass
        assert trace.get_tracer_provider() is app_provider
        for span in exporter.get_finished_spans():
            print(span.name, span.attributes["ml.request.id"], span.attributes["region"])
        """
    )
    assert out.splitlines() == ["inference m r-1 eu", "app-span r-1 eu"]


def test_shutdown_flushes_and_later_spans_are_dropped_quietly() -> None:
    out = _run(
        """
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import inferwatch as iw

        exporter = InMemorySpanExporter()
        iw.configure(span_processors=[BatchSpanProcessor(exporter, schedule_delay_millis=60_000)])

        @iw.monitor(model="m")
        def predict(x):
            return x

        for i in range(10):
            predict(float(i))
        iw.shutdown()  # the batch processor's delay is a minute: only shutdown flushes
        print(len(exporter.get_finished_spans()))
        print(predict(1.0))
        """
    )
    assert out.splitlines() == ["10", "1.0"]


def test_per_signal_endpoint_variable_alone_turns_on_export(
    monkeypatch: pytest.MonkeyPatch, otlp_receiver: OtlpReceiver
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    url = f"{otlp_receiver.http_endpoint}/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)
    iw.configure(service_name="per-signal-env", protocol="http/protobuf")

    @iw.monitor(model="env")
    def predict(x: float) -> float:
        return x

    predict(1.0)
    iw.shutdown()
    spans = otlp_receiver.wait_for(
        lambda r: [s for s in r.spans() if s["resource"].get("service.name") == "per-signal-env"]
    )
    assert spans[0]["name"] == "inference env"
