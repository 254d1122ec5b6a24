"""collector_config/: the otelcol-contrib pipeline, the rotel env file and the ClickHouse DDL.

* Every YAML file is checked structurally: components referenced by pipelines exist (``type`` or
  ``type/name`` ids), every defined component is used, memory_limiter is first and batch last,
  signal-specific components stay in their signal, env placeholders use ``${env:NAME}``.
  (otelcol-contrib itself is not available here to run ``otelcol-contrib validate``.)
* ``rotel.env`` is run for real: the rotel-agent binary from the ``rotel`` wheel is started with
  that file's settings, only the listen addresses and export endpoints overridden to local test
  servers. Traces and logs arrive at a fake ClickHouse HTTP endpoint as the INSERTs rotel would
  send a real server; metrics (and, with the documented alternative routing, traces) arrive at
  the test's OTLP receiver.
* The DDL runs in chDB (the ClickHouse engine in-process), and the RowBinary rows rotel produced
  are loaded into those tables: the DDL accepts what a collector actually writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests._otlp import OtlpReceiver, free_port, port_open, rotel_agent_path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "collector_config"
OTELCOL = CONFIG_DIR / "otelcol-contrib.yaml"
ROTEL_ENV = CONFIG_DIR / "rotel.env"
README = CONFIG_DIR / "README.md"
DDL_DIR = CONFIG_DIR / "clickhouse"
DDL_FILES = ["otel_traces.sql", "otel_traces_trace_id_ts.sql", "otel_logs.sql"]  # run order
YAML_FILES = sorted(p for p in CONFIG_DIR.rglob("*") if p.suffix in (".yaml", ".yml"))
LOCALHOST = "127.0.0.1"

# -- otelcol-contrib ---------------------------------------------------------------------------
SECTIONS = ("receivers", "processors", "exporters", "connectors", "extensions")
SIGNALS = ("traces", "metrics", "logs")
COMPONENT_ID = re.compile(r"^[a-z][a-z0-9_]*(/[^/\s]+)?$")
# Component types this repository uses, each checked against the contrib docs when added: a
# misspelt type passes every structural check and would only fail when the collector starts.
KNOWN_TYPES = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch", "tail_sampling"},
    "exporters": {"otlp", "otlp_grpc", "otlp_http", "otlphttp", "clickhouse", "prometheus", "file"},
    "connectors": set(),
    "extensions": {"health_check"},
}
SIGNAL_ONLY = {"tail_sampling": {"traces"}, "prometheus": {"metrics"}}
ENV_PLACEHOLDER = re.compile(r"\$\{env:(?P<name>[A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def load_collector_configs() -> list[tuple[Path, dict[str, Any]]]:
    configs = []
    for path in YAML_FILES:
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and "service" in data:
            configs.append((path, data))
    return configs


def pipelines(config: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    return dict(config["service"]["pipelines"])


def walk_strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from walk_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_strings(item)
    elif isinstance(node, str):
        yield node


@pytest.fixture(scope="module", params=load_collector_configs(), ids=lambda c: c[0].name)
def collector_config(request: pytest.FixtureRequest) -> tuple[Path, dict[str, Any]]:
    return request.param


def test_collector_config_files_exist() -> None:
    assert OTELCOL in YAML_FILES
    assert [p for p, _ in load_collector_configs()] == [OTELCOL]


def test_sections_and_ids(collector_config: tuple[Path, dict[str, Any]]) -> None:
    _, config = collector_config
    assert set(config) <= {*SECTIONS, "service"}, f"unknown top-level keys: {set(config)}"
    for section in SECTIONS:
        for component_id in config.get(section) or {}:
            assert COMPONENT_ID.match(component_id), f"{section}: bad id {component_id!r}"
            assert component_type(component_id) in KNOWN_TYPES[section], (
                f"{section}: {component_id!r} is not a component type this repo has checked"
            )
    for name, pipeline in pipelines(config).items():
        assert component_type(name) in SIGNALS, f"pipeline {name!r} is not traces/metrics/logs"
        assert set(pipeline) <= {"receivers", "processors", "exporters"}, name
        assert pipeline.get("receivers") and pipeline.get("exporters"), name


def test_pipelines_reference_defined_components(
    collector_config: tuple[Path, dict[str, Any]],
) -> None:
    _, config = collector_config
    for name, pipeline in pipelines(config).items():
        for section in ("receivers", "processors", "exporters"):
            ids = pipeline.get(section) or []
            assert len(ids) == len(set(ids)), f"{name}.{section} lists a component twice: {ids}"
            defined = set(config.get(section) or {})
            if section != "processors":
                defined |= set(config.get("connectors") or {})
            missing = [i for i in ids if i not in defined]
            assert not missing, f"pipeline {name}: {section} {missing} are not defined"
    extensions = config["service"].get("extensions") or []
    assert set(extensions) <= set(config.get("extensions") or {}), extensions


def test_every_defined_component_is_used(collector_config: tuple[Path, dict[str, Any]]) -> None:
    _, config = collector_config
    used = {
        section: {i for p in pipelines(config).values() for i in p.get(section) or []}
        for section in ("receivers", "processors", "exporters")
    }
    for section in ("receivers", "processors", "exporters"):
        unused = set(config.get(section) or {}) - used[section]
        assert not unused, f"{section} defined but in no pipeline: {sorted(unused)}"
    unused_ext = set(config.get("extensions") or {}) - set(
        config["service"].get("extensions") or []
    )
    assert not unused_ext, f"extensions defined but not enabled: {sorted(unused_ext)}"


def test_memory_limiter_first_and_batch_last(collector_config: tuple[Path, dict[str, Any]]) -> None:
    _, config = collector_config
    for name, pipeline in pipelines(config).items():
        types = [component_type(p) for p in pipeline.get("processors") or []]
        assert types, f"pipeline {name} has no processors"
        assert types[0] == "memory_limiter", f"{name}: memory_limiter must come first: {types}"
        assert types[-1] == "batch", f"{name}: batch must come last: {types}"


def test_signal_specific_components_stay_in_their_signal(
    collector_config: tuple[Path, dict[str, Any]],
) -> None:
    _, config = collector_config
    for name, pipeline in pipelines(config).items():
        signal = component_type(name)
        for section in ("processors", "exporters"):
            for component_id in pipeline.get(section) or []:
                allowed = SIGNAL_ONLY.get(component_type(component_id), set(SIGNALS))
                assert signal in allowed, f"{component_id} cannot be in the {name} pipeline"


def test_env_placeholders_use_env_provider(collector_config: tuple[Path, dict[str, Any]]) -> None:
    path, config = collector_config
    for text in walk_strings(config):
        rest = ENV_PLACEHOLDER.sub("", text.replace("$$", ""))
        assert "$" not in rest, f"{path.name}: use ${{env:NAME}} placeholders, not {text!r}"
    # The raw file too: yaml.safe_load keeps strings verbatim, but keep comments honest as well.
    for line in path.read_text().splitlines():
        code = line.split("#", 1)[0]
        assert "$" not in ENV_PLACEHOLDER.sub("", code), line


def test_env_vars_are_documented(collector_config: tuple[Path, dict[str, Any]]) -> None:
    path, config = collector_config
    names = {m["name"] for text in walk_strings(config) for m in ENV_PLACEHOLDER.finditer(text)}
    assert names, "expected env placeholders for endpoints and credentials"
    readme = README.read_text()
    undocumented = sorted(n for n in names if n not in readme)
    assert not undocumented, f"{path.name}: document these in README.md: {undocumented}"


def test_otelcol_pipeline_shape() -> None:
    """The pipeline inferwatch relies on (see collector_config/README.md)."""
    config = yaml.safe_load(OTELCOL.read_text())
    got = {
        name: {section: [component_type(i) for i in p[section]] for section in p}
        for name, p in pipelines(config).items()
    }
    assert got == {
        "traces": {
            "receivers": ["otlp"],
            "processors": ["memory_limiter", "tail_sampling", "batch"],
            "exporters": ["otlp", "clickhouse", "file"],
        },
        "metrics": {
            "receivers": ["otlp"],
            "processors": ["memory_limiter", "batch"],
            "exporters": ["otlp", "clickhouse", "prometheus"],
        },
        "logs": {
            "receivers": ["otlp"],
            "processors": ["memory_limiter", "batch"],
            "exporters": ["otlp", "clickhouse", "file"],
        },
    }
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    policies = {p["type"]: p for p in config["processors"]["tail_sampling"]["policies"]}
    assert set(policies) == {"status_code", "latency", "probabilistic"}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["latency"]["latency"]["threshold_ms"] > 0
    assert 0 < policies["probabilistic"]["probabilistic"]["sampling_percentage"] < 100
    exporters = config["exporters"]
    assert exporters["prometheus"]["endpoint"] == "0.0.0.0:8889"
    assert exporters["prometheus"]["resource_to_telemetry_conversion"]["enabled"] is True
    for file_id in ("file/traces", "file/logs"):
        assert exporters[file_id]["format"] == "json"
        assert exporters[file_id]["path"].endswith(".jsonl")
        assert exporters[file_id]["rotation"]["max_megabytes"] > 0
    assert isinstance(exporters["clickhouse"]["create_schema"], bool)


def ttl_days(ttl: str) -> int:
    """The exporter's `ttl` (a Go duration of whole days, "<n>h") as the n of toIntervalDay(n)."""
    match = re.fullmatch(r"(\d+)h", ttl)
    assert match and int(match.group(1)) % 24 == 0, f"keep ttl in whole days, as <n>h: {ttl!r}"
    return int(match.group(1)) // 24


def test_clickhouse_exporter_settings_match_ddl_and_rotel() -> None:
    clickhouse = yaml.safe_load(OTELCOL.read_text())["exporters"]["clickhouse"]
    database = clickhouse["database"]
    days = ttl_days(clickhouse["ttl"])
    for name, table in (("otel_traces.sql", "traces"), ("otel_logs.sql", "logs")):
        ddl = (DDL_DIR / name).read_text()
        table_name = clickhouse[f"{table}_table_name"]
        assert f"CREATE TABLE IF NOT EXISTS `{database}`.`{table_name}`" in ddl
        assert f"TTL toDateTime(Timestamp) + toIntervalDay({days})" in ddl
    lookup = (DDL_DIR / "otel_traces_trace_id_ts.sql").read_text()
    assert f"`{database}`.`{clickhouse['traces_table_name']}_trace_id_ts`" in lookup
    assert f"TTL toDateTime(Start) + toIntervalDay({days})" in lookup
    # rotel writes <database>.<prefix>_traces / _logs: the same tables.
    env = parse_env_file(ROTEL_ENV)
    assert env["ROTEL_EXPORTER_CLICKHOUSE_DATABASE"] == database
    prefix = env["ROTEL_EXPORTER_CLICKHOUSE_TABLE_PREFIX"]
    assert f"{prefix}_traces" == clickhouse["traces_table_name"]
    assert f"{prefix}_logs" == clickhouse["logs_table_name"]


# -- rotel -------------------------------------------------------------------------------------
ENV_LINE = re.compile(r"^(?P<key>[A-Z][A-Z0-9_]*)=(?P<value>[^\s\"'#]+)$")


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines and comments, in the subset docker, systemd and POSIX sh all read alike."""
    settings: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = ENV_LINE.match(line)
        assert match, f"{path.name}:{number}: not a plain KEY=VALUE line: {line!r}"
        key, value = match.group("key", "value")
        assert key not in settings, f"{path.name}:{number}: {key} set twice"
        settings[key] = value
    return settings


def rotel_help() -> str:
    result = subprocess.run(
        [str(rotel_agent_path()), "start", "--help"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return result.stdout


def exporter_names(settings: dict[str, str]) -> dict[str, str]:
    """ROTEL_EXPORTERS=name:type,... as {name: type} (a bare type is its own name)."""
    pairs = [item.split(":") for item in settings["ROTEL_EXPORTERS"].split(",")]
    return {pair[0]: pair[-1] for pair in pairs}


def test_rotel_env_names_are_known_to_the_binary() -> None:
    """rotel silently ignores ROTEL_* names it does not know, so check them against --help."""
    settings = parse_env_file(ROTEL_ENV)
    help_text = rotel_help()
    known = set(re.findall(r"\[env: (ROTEL_[A-Z0-9_]+)=", help_text))
    assert {"ROTEL_EXPORTERS", "ROTEL_BATCH_TIMEOUT", "ROTEL_OTLP_GRPC_ENDPOINT"} <= known
    exporters = exporter_names(settings)
    suffixes = {
        kind: {
            flag.upper().replace("-", "_")
            for flag in re.findall(rf"--{kind}-exporter-([a-z0-9-]+)", help_text)
        }
        for kind in set(exporters.values())
    }
    for key in settings:
        if key in known:
            continue
        prefix = next(
            (n for n in exporters if key.startswith(f"ROTEL_EXPORTER_{n.upper()}_")), None
        )
        assert prefix is not None, f"{key} is not a rotel-agent setting"
        suffix = key.removeprefix(f"ROTEL_EXPORTER_{prefix.upper()}_")
        assert suffix in suffixes[exporters[prefix]], f"{key}: {exporters[prefix]} has no {suffix}"
    routed = set()
    for signal in SIGNALS:
        names = settings[f"ROTEL_EXPORTERS_{signal.upper()}"].split(",")
        assert len(names) == 1, f"this rotel version takes one exporter per signal: {names}"
        assert set(names) <= set(exporters), f"{signal}: unknown exporter {names}"
        routed |= set(names)
    assert routed == set(exporters), f"declared but unused exporters: {set(exporters) - routed}"
    assert set(exporters.values()) == {"otlp", "clickhouse"}


class _ClickHouseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ClickHouseServer

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while size := int(self.rfile.readline().strip() or b"0", 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        self.server.fake.record(params, body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ClickHouseServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeClickHouse


class FakeClickHouse:
    """ClickHouse's HTTP interface, as far as an INSERT ... FORMAT RowBinary needs: keeps them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._server = _ClickHouseServer((LOCALHOST, 0), _ClickHouseHandler)
        self._server.fake = self
        self.endpoint = f"http://{LOCALHOST}:{self._server.server_address[1]}"

    def __enter__(self) -> FakeClickHouse:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, params: dict[str, str], body: bytes) -> None:
        with self._lock:
            self.requests.append((params, body))

    def wait_for_insert(
        self, table: str, marker: bytes, timeout: float = 10.0
    ) -> tuple[str, bytes]:
        """(query, RowBinary body) of the first INSERT into `table` whose rows contain `marker`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for params, body in self.requests:
                    query = params.get("query", "")
                    if query.startswith(f"INSERT INTO {table} ") and marker in body:
                        return query, body
            time.sleep(0.02)
        seen = [p.get("query", "")[:60] for p, _ in self.requests]
        raise AssertionError(f"no INSERT into {table} with {marker!r} in {timeout}s; got {seen}")


@contextlib.contextmanager
def run_rotel(settings: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """rotel-agent with exactly `settings` as its environment; yields its OTLP/HTTP base URL."""
    log_path = tmp_path / "rotel.log"
    for _attempt in range(3):
        grpc_port, http_port = free_port(), free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            **settings,
            "ROTEL_OTLP_GRPC_ENDPOINT": f"{LOCALHOST}:{grpc_port}",
            "ROTEL_OTLP_HTTP_ENDPOINT": f"{LOCALHOST}:{http_port}",
            "ROTEL_PID_FILE": str(tmp_path / "rotel.pid"),
            "ROTEL_LOG_FILE": str(log_path),
        }
        command = [str(rotel_agent_path()), "start"]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                if port_open(grpc_port) and port_open(http_port):
                    break
                time.sleep(0.05)
            if proc.poll() is None and port_open(http_port):
                yield f"http://{LOCALHOST}:{http_port}"
                assert proc.poll() is None, f"rotel-agent died:\n{log_path.read_text()}"
                return
            if "in use" not in log_path.read_text():
                break  # a real configuration error, not a port race: report it
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
    pytest.fail(f"rotel-agent did not start with {ROTEL_ENV.name}:\n{log_path.read_text()}")


def send_span(base_url: str, service: str) -> str:
    """One failed inference span through the SDK's OTLP/HTTP exporter; returns its trace id."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"{base_url}/v1/traces", timeout=5)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    attributes = {"ml.model.name": "fraud", "ml.request.id": "r-1", "region": "eu"}
    with provider.get_tracer("inferwatch").start_as_current_span(
        "inference fraud",
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        span.record_exception(ValueError("boom"))
        span.set_status(Status(StatusCode.ERROR, "ValueError: boom"))
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


def send_metric(base_url: str, service: str) -> None:
    exporter = OTLPMetricExporter(endpoint=f"{base_url}/v1/metrics", timeout=5)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": service}), metric_readers=[reader]
    )
    histogram = provider.get_meter("inferwatch").create_histogram("ml.inference.duration", unit="s")
    histogram.record(0.012, {"ml.model.name": "fraud", "region": "eu"})
    provider.shutdown()  # collects and exports once


def send_log(base_url: str, service: str, trace_id: str) -> None:
    """One OTLP/HTTP log record shaped like inferwatch's structlog events (ids included)."""

    def kv(key: str, value: str) -> KeyValue:
        return KeyValue(key=key, value=AnyValue(string_value=value))

    record = LogRecord(
        time_unix_nano=time.time_ns(),
        severity_number=SeverityNumber.SEVERITY_NUMBER_WARN,
        severity_text="WARN",
        body=AnyValue(string_value="prediction outside training range"),
        attributes=[kv("ml.request.id", "r-1"), kv("ml.model.name", "fraud")],
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes(range(1, 9)),
    )
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=ProtoResource(attributes=[kv("service.name", service)]),
                scope_logs=[
                    ScopeLogs(scope=InstrumentationScope(name="inferwatch"), log_records=[record])
                ],
            )
        ]
    )
    post = urllib.request.Request(
        f"{base_url}/v1/logs",
        data=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    with urllib.request.urlopen(post, timeout=5) as response:
        assert response.status == 200


# The column lists of the contrib exporter's INSERTs (internal/sqltemplates/traces_insert.sql and
# logs_insert.sql): rotel must write exactly these for one DDL to serve both collectors.
TRACES_INSERT_COLUMNS = (
    "Timestamp,TraceId,SpanId,ParentSpanId,TraceState,SpanName,SpanKind,ServiceName,"
    "ResourceAttributes,ScopeName,ScopeVersion,SpanAttributes,Duration,StatusCode,StatusMessage,"
    "Events.Timestamp,Events.Name,Events.Attributes,"
    "Links.TraceId,Links.SpanId,Links.TraceState,Links.Attributes"
)
LOGS_INSERT_COLUMNS = (
    "Timestamp,TraceId,SpanId,TraceFlags,SeverityText,SeverityNumber,ServiceName,Body,"
    "ResourceSchemaUrl,ResourceAttributes,ScopeSchemaUrl,ScopeName,ScopeVersion,ScopeAttributes,"
    "LogAttributes"
)


def insert_columns(query: str) -> str:
    match = re.fullmatch(r"INSERT INTO \w+ \((?P<cols>[^)]*)\) FORMAT RowBinary", query)
    assert match, query
    return match.group("cols").replace(" ", "")


def test_rotel_env_as_shipped(
    otlp_receiver: OtlpReceiver, chdb_session: Any, tmp_path: Path
) -> None:
    """Traces and logs -> ClickHouse INSERTs that load into the DDL; metrics -> OTLP backend."""
    service = f"collector-config-{uuid.uuid4().hex[:8]}"
    settings = parse_env_file(ROTEL_ENV)
    with FakeClickHouse() as clickhouse:
        settings["ROTEL_EXPORTER_BACKEND_ENDPOINT"] = f"http://{otlp_receiver.grpc_endpoint}"
        settings["ROTEL_EXPORTER_CLICKHOUSE_ENDPOINT"] = clickhouse.endpoint
        # lz4 is ClickHouse's own block framing; plain RowBinary can be loaded into chDB below.
        settings["ROTEL_EXPORTER_CLICKHOUSE_COMPRESSION"] = "none"
        with run_rotel(settings, tmp_path) as base_url:
            trace_id = send_span(base_url, service)
            send_log(base_url, service, trace_id)
            send_metric(base_url, service)
            traces_query, traces_rows = clickhouse.wait_for_insert("otel_traces", service.encode())
            logs_query, logs_rows = clickhouse.wait_for_insert("otel_logs", service.encode())
            points = otlp_receiver.wait_for(
                lambda r: [m for m in r.metrics() if m["resource"].get("service.name") == service]
            )
    assert [(p["name"], p["type"], p["attributes"]) for p in points] == [
        ("ml.inference.duration", "histogram", {"ml.model.name": "fraud", "region": "eu"})
    ]
    database = {p.get("database") for p, _ in clickhouse.requests}
    assert database == {settings["ROTEL_EXPORTER_CLICKHOUSE_DATABASE"]}
    assert insert_columns(traces_query) == TRACES_INSERT_COLUMNS
    assert insert_columns(logs_query) == LOGS_INSERT_COLUMNS

    if chdb_session is None:
        pytest.skip("chdb is not installed: rotel's rows were not loaded into the DDL")
    for table, query, rows in (
        ("otel_traces", traces_query, traces_rows),
        ("otel_logs", logs_query, logs_rows),
    ):
        rows_file = tmp_path / f"{table}.rowbinary"
        rows_file.write_bytes(rows)
        columns = insert_columns(query)
        chdb_session.query(
            f"INSERT INTO otel.{table} ({columns}) SELECT * FROM file('{rows_file}', 'RowBinary')"
        )
    [span] = chdb_query(
        chdb_session,
        "SELECT TraceId, SpanName, SpanAttributes, StatusCode, StatusMessage, `Events.Name`,"
        f" Duration > 0 AS timed FROM otel.otel_traces WHERE ServiceName = '{service}'",
    )
    assert span == {
        "TraceId": trace_id,
        "SpanName": "inference fraud",
        "SpanAttributes": {"ml.model.name": "fraud", "ml.request.id": "r-1", "region": "eu"},
        "StatusCode": "Error",
        "StatusMessage": "ValueError: boom",
        "Events.Name": ["exception"],
        "timed": 1,
    }
    [lookup] = chdb_query(
        chdb_session,
        f"SELECT count() AS n FROM otel.otel_traces_trace_id_ts WHERE TraceId = '{trace_id}'",
    )
    assert lookup == {"n": 1}, "the materialized view fills the trace-id lookup table"
    [joined] = chdb_query(
        chdb_session,
        "SELECT l.LogAttributes['ml.request.id'] AS request, l.SeverityText AS severity, l.Body AS"
        " body FROM otel.otel_logs AS l INNER JOIN otel.otel_traces AS t ON l.TraceId = t.TraceId"
        f" WHERE t.ServiceName = '{service}'",
    )
    assert joined == {
        "request": "r-1",
        "severity": "WARN",
        "body": "prediction outside training range",
    }


def test_rotel_env_traces_to_backend(otlp_receiver: OtlpReceiver, tmp_path: Path) -> None:
    """The README's alternative routing: the same file, traces sent to the OTLP backend."""
    service = f"collector-config-{uuid.uuid4().hex[:8]}"
    settings = parse_env_file(ROTEL_ENV)
    with FakeClickHouse() as clickhouse:
        settings["ROTEL_EXPORTER_BACKEND_ENDPOINT"] = f"http://{otlp_receiver.grpc_endpoint}"
        settings["ROTEL_EXPORTER_CLICKHOUSE_ENDPOINT"] = clickhouse.endpoint
        settings["ROTEL_EXPORTERS_TRACES"] = "backend"
        with run_rotel(settings, tmp_path) as base_url:
            trace_id = send_span(base_url, service)
            [span] = otlp_receiver.wait_for(
                lambda r: [s for s in r.spans() if s["resource"].get("service.name") == service]
            )
    assert span["trace_id"] == trace_id
    assert span["name"] == "inference fraud"
    assert span["status_code"] == "ERROR"
    assert span["attributes"]["ml.request.id"] == "r-1"


# -- ClickHouse DDL in chDB --------------------------------------------------------------------
MAP = "Map(LowCardinality(String), String)"
TRACES_COLUMNS = {
    "Timestamp": "DateTime64(9)",
    "TraceId": "String",
    "SpanId": "String",
    "ParentSpanId": "String",
    "TraceState": "String",
    "SpanName": "LowCardinality(String)",
    "SpanKind": "LowCardinality(String)",
    "ServiceName": "LowCardinality(String)",
    "ResourceAttributes": MAP,
    "ScopeName": "String",
    "ScopeVersion": "String",
    "SpanAttributes": MAP,
    "Duration": "UInt64",
    "StatusCode": "LowCardinality(String)",
    "StatusMessage": "String",
    "Events.Timestamp": "Array(DateTime64(9))",
    "Events.Name": "Array(LowCardinality(String))",
    "Events.Attributes": f"Array({MAP})",
    "Links.TraceId": "Array(String)",
    "Links.SpanId": "Array(String)",
    "Links.TraceState": "Array(String)",
    "Links.Attributes": f"Array({MAP})",
}
LOGS_COLUMNS = {
    "Timestamp": "DateTime64(9)",
    "TraceId": "String",
    "SpanId": "String",
    "TraceFlags": "UInt8",
    "SeverityText": "LowCardinality(String)",
    "SeverityNumber": "UInt8",
    "ServiceName": "LowCardinality(String)",
    "Body": "String",
    "ResourceSchemaUrl": "LowCardinality(String)",
    "ResourceAttributes": MAP,
    "ScopeSchemaUrl": "LowCardinality(String)",
    "ScopeName": "String",
    "ScopeVersion": "LowCardinality(String)",
    "ScopeAttributes": MAP,
    "LogAttributes": MAP,
    "EventName": "String",
}
LOGS_MATERIALIZED = [
    f"__otel_materialized_{key}"
    for key in (
        "k8s.cluster.name",
        "k8s.container.name",
        "k8s.deployment.name",
        "k8s.namespace.name",
        "k8s.node.name",
        "k8s.pod.name",
        "k8s.pod.uid",
        "deployment.environment.name",
    )
]
TRACE_ID_TS_COLUMNS = {
    "TraceId": "String",
    "Start": "SimpleAggregateFunction(min, DateTime)",
    "End": "SimpleAggregateFunction(max, DateTime)",
}
# table -> (engine, partition key, sorting key, primary key)
LAYOUT = {
    "otel_traces": (
        "MergeTree",
        "toDate(Timestamp)",
        "ServiceName, SpanName, toDateTime(Timestamp), Timestamp",
        "ServiceName, SpanName, toDateTime(Timestamp)",
    ),
    "otel_logs": (
        "MergeTree",
        "toDate(Timestamp)",
        "toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp",
        "toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp",
    ),
    "otel_traces_trace_id_ts": (
        "AggregatingMergeTree",
        "toStartOfWeek(Start)",
        "TraceId",
        "TraceId",
    ),
}
SKIP_INDEXES = {
    "otel_traces": {
        "idx_trace_id": "bloom_filter(0.001)",
        "idx_res_attr_key": "bloom_filter(0.01)",
        "idx_res_attr_value": "bloom_filter(0.01)",
        "idx_span_attr_key": "bloom_filter(0.01)",
        "idx_span_attr_value": "bloom_filter(0.01)",
        "idx_duration": "minmax",
        "idx_lower_span_name": "tokenbf_v1(32768, 3, 0)",
    },
    "otel_logs": {
        "idx_trace_id": "bloom_filter(0.001)",
        "idx_res_attr_key": "bloom_filter(0.01)",
        "idx_res_attr_value": "bloom_filter(0.01)",
        "idx_scope_attr_key": "bloom_filter(0.01)",
        "idx_scope_attr_value": "bloom_filter(0.01)",
        "idx_log_attr_key": "bloom_filter(0.01)",
        "idx_log_attr_value": "bloom_filter(0.01)",
        "idx_lower_body": "tokenbf_v1(32768, 3, 0)",
    },
}


@pytest.fixture(scope="module")
def chdb_session() -> Iterator[Any]:
    """A chDB session with every DDL file executed, or None when chdb is not installed."""
    try:
        import chdb as _  # noqa: F401
    except ImportError:
        yield None
        return
    from inferwatch.query.engines import chdb_session as process_session

    # chDB runs one embedded server per process: share inferwatch's, in its own database.
    chdb = process_session()
    try:
        for name in DDL_FILES:
            chdb.query((DDL_DIR / name).read_text())
        yield chdb
    finally:
        chdb.query("DROP DATABASE IF EXISTS otel SYNC")


@pytest.fixture
def chdb(chdb_session: Any) -> Any:
    if chdb_session is None:
        pytest.skip("chdb is not installed (pip install chdb)")
    return chdb_session


def chdb_query(chdb: Any, sql: str) -> list[dict[str, Any]]:
    result = chdb.query(sql, "JSONEachRow")
    return [json.loads(line) for line in result.bytes().decode().splitlines() if line]


def describe(chdb: Any, table: str) -> list[dict[str, Any]]:
    return chdb_query(chdb, f"DESCRIBE TABLE otel.{table}")


def test_ddl_files_carry_their_source() -> None:
    for name in DDL_FILES:
        header = (DDL_DIR / name).read_text().split("CREATE", 1)[0]
        assert "opentelemetry-collector-contrib" in header, name
        assert "exporter/clickhouseexporter/internal/sqltemplates/" in header, name


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("otel_traces", TRACES_COLUMNS),
        ("otel_logs", LOGS_COLUMNS),
        ("otel_traces_trace_id_ts", TRACE_ID_TS_COLUMNS),
    ],
)
def test_ddl_columns_match_the_exporter(chdb: Any, table: str, expected: dict[str, str]) -> None:
    rows = describe(chdb, table)
    stored = {r["name"]: r["type"] for r in rows if r["default_type"] in ("", "DEFAULT")}
    assert stored == expected
    assert list(stored) == list(expected), "column order as in the exporter's DDL"


def test_ddl_derived_columns(chdb: Any) -> None:
    traces = {r["name"]: (r["default_type"], r["type"]) for r in describe(chdb, "otel_traces")}
    assert traces["ResourceAttributeItems"] == ("ALIAS", "Array(String)")
    assert traces["SpanAttributeItems"] == ("ALIAS", "Array(String)")
    logs = {r["name"]: (r["default_type"], r["type"]) for r in describe(chdb, "otel_logs")}
    materialized = [name for name, (kind, _) in logs.items() if kind == "MATERIALIZED"]
    assert materialized == LOGS_MATERIALIZED
    assert {logs[name] for name in materialized} == {("MATERIALIZED", "LowCardinality(String)")}


@pytest.mark.parametrize("table", sorted(LAYOUT))
def test_ddl_table_layout(chdb: Any, table: str) -> None:
    [row] = chdb_query(
        chdb,
        "SELECT engine, partition_key, sorting_key, primary_key FROM system.tables"
        f" WHERE database = 'otel' AND name = '{table}'",
    )
    # ClickHouse reports a one-column key given as ORDER BY (TraceId) with its parentheses.
    got = tuple(re.sub(r"^\((\w+)\)$", r"\1", value) for value in row.values())
    assert got == LAYOUT[table]
    indexes = chdb_query(
        chdb,
        "SELECT name, type_full FROM system.data_skipping_indices"
        f" WHERE database = 'otel' AND table = '{table}'",
    )
    assert {i["name"]: i["type_full"] for i in indexes} == SKIP_INDEXES.get(table, {})
    [create] = chdb_query(chdb, f"SHOW CREATE TABLE otel.{table}")
    ttl_column = "Start" if table.endswith("_trace_id_ts") else "Timestamp"
    days = ttl_days(yaml.safe_load(OTELCOL.read_text())["exporters"]["clickhouse"]["ttl"])
    assert f"TTL toDateTime({ttl_column}) + toIntervalDay({days})" in create["statement"]
    assert "ttl_only_drop_parts = 1" in create["statement"]


def test_ddl_is_idempotent(chdb: Any) -> None:
    """IF NOT EXISTS throughout: re-running the files (every deploy) is safe."""
    for name in DDL_FILES:
        chdb.query((DDL_DIR / name).read_text())
    tables = chdb_query(chdb, "SELECT name FROM system.tables WHERE database = 'otel'")
    assert {t["name"] for t in tables} == {*LAYOUT, "otel_traces_trace_id_ts_mv"}
