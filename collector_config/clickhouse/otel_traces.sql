-- otel.otel_traces: the span table of the OpenTelemetry Collector (contrib) ClickHouse exporter.
--
-- Source: open-telemetry/opentelemetry-collector-contrib,
--   exporter/clickhouseexporter/internal/sqltemplates/traces_table.sql (text/template version,
--   commit 2bf6b9e1f8c8716ab54eaac1635e56b4d0649900), rendered the way the exporter renders it
--   for `database: otel`, `traces_table_name: otel_traces`, `ttl: 720h`, no `cluster_name`,
--   default `table_engine` (MergeTree()) and HasFullTextSearch=false (the bloom_filter branch the
--   exporter picks for ClickHouse < 26.2; the `text` index branch is noted at the bottom).
--   Cross-checked against the same repository's exporter_traces_test.go
--   (TestRenderCreateTracesTableSQL: PRIMARY KEY / ORDER BY / T64 codec / ALIAS columns / TTL
--   toDateTime(Timestamp) + toIntervalDay(n)) and internal/sqltemplates/traces_insert.sql (the
--   column list both the contrib exporter and rotel's clickhouse exporter INSERT).
--
-- This is inferwatch's one table contract (docs/architecture.md: `query/`, one SQL model):
-- the slicing helper reads it with chDB locally and on a ClickHouse server at scale. Keep column
-- names and types identical to the exporter's: its INSERT names them, so any change here breaks
-- ingestion. Indexes, TTL, partitioning and settings may be tuned freely.
--
-- Use with `create_schema: false` in otelcol-contrib.yaml (or with rotel, which never creates
-- tables). Run: clickhouse-client --multiquery < otel_traces.sql
CREATE DATABASE IF NOT EXISTS otel;

CREATE TABLE IF NOT EXISTS `otel`.`otel_traces` (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    ResourceAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(ResourceAttributes, 'Array(Tuple(String, String))')),
    SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), CAST(SpanAttributes, 'Array(Tuple(String, String))')),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = MergeTree()
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)
TTL toDateTime(Timestamp) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

-- ClickHouse >= 26.2 (the exporter's HasFullTextSearch branch) replaces the five attribute/trace
-- id bloom_filter indexes above with text indexes:
--   INDEX idx_trace_id TraceId TYPE text(tokenizer = 'array'),
--   INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE text(tokenizer = 'array'),
--   INDEX idx_res_attr_items ResourceAttributeItems TYPE text(tokenizer = 'array'),
--   INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE text(tokenizer = 'array'),
--   INDEX idx_span_attr_items SpanAttributeItems TYPE text(tokenizer = 'array'),
-- Columns are the same either way. inferwatch slices by SpanAttributes['region'] etc., which the
-- bloom_filter on mapValues (or the text index on SpanAttributeItems) lets ClickHouse prune.
