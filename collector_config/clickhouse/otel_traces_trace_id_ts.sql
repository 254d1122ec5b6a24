-- otel.otel_traces_trace_id_ts (+ its materialized view): the trace-id -> time-range lookup the
-- contrib ClickHouse exporter creates next to otel_traces, so "show me trace X" reads one
-- partition range instead of every day (otel_traces is ordered by service/span/time, not id).
--
-- Source: open-telemetry/opentelemetry-collector-contrib,
--   exporter/clickhouseexporter/internal/sqltemplates/traces_id_ts_lookup_table.sql
--   (commit 1b08503058e58c68b9175b4d0663d0aaf16b5398) and traces_id_ts_lookup_mv.sql (the
--   text/template version: min/max(toDateTime(Timestamp))), rendered for `database: otel`,
--   `traces_table_name: otel_traces`, `ttl: 720h`. Engine and TTL column as asserted by the same
--   repository's exporter_traces_test.go (TestRenderCreateTraceIDTsTableSQL:
--   AggregatingMergeTree(), TTL toDateTime(Start) + toIntervalDay(n);
--   TestRenderTraceIDTsMaterializedViewSQL).
--
-- Run after otel_traces.sql (the view reads otel.otel_traces).
CREATE TABLE IF NOT EXISTS `otel`.`otel_traces_trace_id_ts` (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = AggregatingMergeTree()
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
TTL toDateTime(Start) + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS `otel`.`otel_traces_trace_id_ts_mv`
TO `otel`.`otel_traces_trace_id_ts`
AS SELECT
    TraceId,
    min(toDateTime(Timestamp)) AS Start,
    max(toDateTime(Timestamp)) AS End
FROM `otel`.`otel_traces`
WHERE TraceId != ''
GROUP BY TraceId;
