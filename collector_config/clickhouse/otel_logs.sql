-- otel.otel_logs: the log-record table of the OpenTelemetry Collector (contrib) ClickHouse
-- exporter.
--
-- Source: open-telemetry/opentelemetry-collector-contrib,
--   exporter/clickhouseexporter/internal/sqltemplates/logs_table.sql (the text/template version
--   with EventName, the `__otel_materialized_*` resource columns, no TimestampTime, and
--   ORDER BY (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp)), rendered for
--   `database: otel`, `logs_table_name: otel_logs`, `ttl: 720h`, default engine, no cluster,
--   HasFullTextSearch=false (bloom_filter/tokenbf_v1 branch, ClickHouse < 26.2).
--   Cross-checked against the same repository's exporter_logs_test.go
--   (TestRenderCreateLogsTableSQL: no TimestampTime, EventName, __otel_materialized_*,
--   toStartOfFiveMinutes, tokenbf_v1), README.md ("The default logs table is ordered by
--   (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp)") and
--   internal/sqltemplates/logs_insert.sql (the INSERT column list; EventName is optional there:
--   the exporter DESCRIBEs the table and writes it only if present).
--   Older exporter releases created a TimestampTime column and ordered by
--   (ServiceName, TimestampTime, Timestamp); their INSERT never names TimestampTime, so both
--   layouts accept the same rows.
--
-- inferwatch's structlog events land here with TraceId/SpanId and ml.request.id in
-- LogAttributes, so a slice found in otel_traces can be joined to its logs by TraceId.
-- Keep column names and types identical to the exporter's; tune indexes/TTL freely.
CREATE DATABASE IF NOT EXISTS otel;

CREATE TABLE IF NOT EXISTS `otel`.`otel_logs` (
    `Timestamp` DateTime64(9) COMMENT 'Event timestamp with nanosecond precision' CODEC(Delta(8), ZSTD(1)),
    `TraceId` String COMMENT 'W3C trace identifier' CODEC(ZSTD(1)),
    `SpanId` String COMMENT 'W3C span identifier' CODEC(ZSTD(1)),
    `TraceFlags` UInt8 COMMENT 'W3C trace flags',
    `SeverityText` LowCardinality(String) COMMENT 'Log severity as text' CODEC(ZSTD(1)),
    `SeverityNumber` UInt8 COMMENT 'Log severity as number (1-24)',
    `ServiceName` LowCardinality(String) COMMENT 'Service that emitted the log' CODEC(ZSTD(1)),
    `Body` String COMMENT 'Log message body' CODEC(ZSTD(1)),
    `ResourceSchemaUrl` LowCardinality(String) COMMENT 'Schema URL for the resource' CODEC(ZSTD(1)),
    `ResourceAttributes` Map(LowCardinality(String), String) COMMENT 'Resource attributes as key-value pairs' CODEC(ZSTD(1)),
    `ScopeSchemaUrl` LowCardinality(String) COMMENT 'Schema URL for the instrumentation scope' CODEC(ZSTD(1)),
    `ScopeName` String COMMENT 'Instrumentation scope name' CODEC(ZSTD(1)),
    `ScopeVersion` LowCardinality(String) COMMENT 'Instrumentation scope version' CODEC(ZSTD(1)),
    `ScopeAttributes` Map(LowCardinality(String), String) COMMENT 'Instrumentation scope attributes' CODEC(ZSTD(1)),
    `LogAttributes` Map(LowCardinality(String), String) COMMENT 'Log record attributes' CODEC(ZSTD(1)),
    `EventName` String COMMENT 'Event name for log records representing events' CODEC(ZSTD(1)),
    `__otel_materialized_k8s.cluster.name` LowCardinality(String) MATERIALIZED ResourceAttributes['k8s.cluster.name'] CODEC(ZSTD(1)),
    `__otel_materialized_k8s.container.name` LowCardinality(String) MATERIALIZED ResourceAttributes['k8s.container.name'] CODEC(ZSTD(1)),
    `__otel_materialized_k8s.deployment.name` LowCardinality(String) MATERIALIZED ResourceAttributes['k8s.deployment.name'] CODEC(ZSTD(1)),
    `__otel_materialized_k8s.namespace.name` LowCardinality(String) MATERIALIZED ResourceAttributes['k8s.namespace.name'] CODEC(ZSTD(1)),
    `__otel_materialized_k8s.node.name` LowCardinality(String) MATERIALIZED ResourceAttributes['k8s.node.name'] CODEC(ZSTD(1)),
    `__otel_materialized_k8s.pod.name` LowCardinality(String) MATERIALIZED ResourceAttributes['k8s.pod.name'] CODEC(ZSTD(1)),
    `__otel_materialized_k8s.pod.uid` LowCardinality(String) MATERIALIZED ResourceAttributes['k8s.pod.uid'] CODEC(ZSTD(1)),
    `__otel_materialized_deployment.environment.name` LowCardinality(String) MATERIALIZED ResourceAttributes['deployment.environment.name'] CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_lower_body lower(Body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = MergeTree()
PARTITION BY toDate(Timestamp)
ORDER BY (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

-- ClickHouse >= 26.2 (HasFullTextSearch): the eight indexes above become
--   TYPE text(tokenizer = 'array') on TraceId and the mapKeys/mapValues expressions, and
--   INDEX idx_lower_body lower(Body) TYPE text(tokenizer = 'splitByNonAlpha').
