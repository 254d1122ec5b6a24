"""The ClickHouse SQL of the query model: one text for chDB and for a ClickHouse server.

Everything reads the columns of the OTel Collector contrib ClickHouse exporter's ``otel_traces``
table. Values (tag names included) are always bound parameters (``{name:Type}``); the only text
pasted into a query is inferwatch's own (column names, the relation, validated identifiers).
"""

from __future__ import annotations

from collections.abc import Sequence

from inferwatch import semconv

# OTLP/JSON (the collector file exporter's format) as a typed ClickHouse schema: one row per line.
_SCALAR = (
    "stringValue Nullable(String), intValue Nullable(String), "
    "doubleValue Nullable(Float64), boolValue Nullable(Bool)"
)
_ANY_VALUE = f"Tuple({_SCALAR}, arrayValue Tuple(values Array(Tuple({_SCALAR}))))"
_ATTRIBUTES = f"Array(Tuple(key String, value {_ANY_VALUE}))"
_SPAN = (
    "Tuple(traceId String, spanId String, parentSpanId String, name String, kind UInt8, "
    f"startTimeUnixNano String, endTimeUnixNano String, attributes {_ATTRIBUTES}, "
    "status Tuple(code UInt8, message String))"
)
OTLP_JSON_SCHEMA = (
    f"resourceSpans Array(Tuple(resource Tuple(attributes {_ATTRIBUTES}), "
    f"scopeSpans Array(Tuple(scope Tuple(name String, version String), spans Array({_SPAN})))))"
)


# An attribute value as the ClickHouse exporter stores it: always a string, never NULL (so a
# missing key reads '' in live segments as in the exporter's tables and the converted ones); an
# array as a JSON array (of strings here; the exporter writes numbers as numbers).
def _scalar(v: str) -> str:
    return (
        f"multiIf({v}.stringValue IS NOT NULL, {v}.stringValue, "
        f"{v}.intValue IS NOT NULL, {v}.intValue, "
        f"{v}.doubleValue IS NOT NULL, toString({v}.doubleValue), "
        f"{v}.boolValue IS NOT NULL, if({v}.boolValue, 'true', 'false'), '')"
    )


def _value_text(v: str) -> str:
    return (
        f"assumeNotNull(if(empty({v}.arrayValue.values), {_scalar(v)}, "
        f"toJSONString(arrayMap(x -> assumeNotNull({_scalar('x')}), {v}.arrayValue.values))))"
    )


_VALUE = _value_text("a.value")


def _attribute_map(path: str) -> str:
    return f"mapFromArrays(arrayMap(a -> a.key, {path}), arrayMap(a -> {_VALUE}, {path}))"


# The otel_traces columns the queries use, from one OTLP/JSON file expression.
SPAN_COLUMNS = (
    "Timestamp, TraceId, SpanId, ParentSpanId, SpanName, ServiceName, ResourceAttributes, "
    "ScopeName, SpanAttributes, Duration, StatusCode, StatusMessage"
)


def otlp_json_spans(file_expression: str) -> str:
    """SELECT the otel_traces columns from ``file(...)`` rows of OTLP/JSON traces.

    The columns come in the order of `SPAN_COLUMNS`: live segments are UNION ALL-ed (by
    position) with ``SELECT SPAN_COLUMNS FROM`` the table of closed ones.
    """
    return f"""
SELECT
    fromUnixTimestamp64Nano(toInt64(sp.startTimeUnixNano)) AS Timestamp,
    sp.traceId AS TraceId,
    sp.spanId AS SpanId,
    sp.parentSpanId AS ParentSpanId,
    sp.name AS SpanName,
    ResourceAttributes['service.name'] AS ServiceName,
    {_attribute_map("rs.resource.attributes")} AS ResourceAttributes,
    ss.scope.name AS ScopeName,
    {_attribute_map("sp.attributes")} AS SpanAttributes,
    toUInt64(toInt64(sp.endTimeUnixNano) - toInt64(sp.startTimeUnixNano)) AS Duration,
    ['Unset', 'Ok', 'Error'][sp.status.code + 1] AS StatusCode,
    sp.status.message AS StatusMessage
FROM {file_expression}
ARRAY JOIN resourceSpans AS rs
ARRAY JOIN rs.scopeSpans AS ss
ARRAY JOIN ss.spans AS sp"""


# Outcomes a request can have; each a boolean expression over one otel_traces row.
OUTCOMES = {
    "error": "StatusCode = 'Error'",
    "slow": "Duration > {slow_ns:UInt64}",
    "nan": "toInt64OrZero(SpanAttributes['ml.input.nan_count']) > 0",
    "wrong": f"SpanAttributes['{semconv.ML_PREDICTION_CORRECT}'] = 'false'",
}


def tag(i: int) -> str:
    """The value of tag ``{k<i>}`` on a span, NULL where the span lacks it."""
    return (
        f"if(mapContains(SpanAttributes, {{k{i}:String}}), SpanAttributes[{{k{i}:String}}], NULL)"
    )


def tag_filters(column: str, present: Sequence[bool], prefix: str = "w") -> list[str]:
    """Clauses ``column[{<prefix>k<i>}] = {<prefix>v<i>}``, or, where ``present[i]`` is false,
    "the record lacks key ``{<prefix>k<i>}``"."""
    return [
        f"{column}[{{{prefix}k{i}:String}}] = {{{prefix}v{i}:String}}"
        if here
        else f"NOT mapContains({column}, {{{prefix}k{i}:String}})"
        for i, here in enumerate(present)
    ]


TIME_WINDOW = (
    "Timestamp >= fromUnixTimestamp64Nano({since_ns:Int64}) "
    "AND Timestamp < fromUnixTimestamp64Nano({until_ns:Int64})"
)


def window_filter(present: Sequence[bool], model: bool, prefix: str = "w") -> str:
    """Inference spans in [since, until), with tag filters (`tag_filters`) and the model."""
    clauses = [TIME_WINDOW, "mapContains(SpanAttributes, 'ml.model.name')"]
    clauses += tag_filters("SpanAttributes", present, prefix)
    if model:
        clauses.append("SpanAttributes['ml.model.name'] = {model:String}")
    return " AND ".join(clauses)


def _measures(outcome: str) -> str:
    """A slice's columns after its tags: requests, errors, outcomes, latency_ns, nan_requests."""
    return f"""count() AS requests,
    countIf(StatusCode = 'Error') AS errors,
    countIf({OUTCOMES[outcome]}) AS outcomes,
    quantiles(0.5, 0.95, 0.99)(Duration) AS latency_ns,
    countIf(toInt64OrZero(SpanAttributes['ml.input.nan_count']) > 0) AS nan_requests"""


def slice_query(relation: str, n_by: int, outcome: str, where: str) -> str:
    groups = ", ".join(f"{tag(i)} AS g{i}" for i in range(n_by))
    group_by = ", ".join(f"g{i}" for i in range(n_by)) or "tuple()"
    return f"""
SELECT
    {groups + "," if groups else ""}
    {_measures(outcome)}
FROM {relation}
WHERE {where}
GROUP BY {group_by}
ORDER BY outcomes DESC, requests DESC
LIMIT {{limit:UInt32}}"""


def timeline_query(relation: str, n_by: int, outcome: str, where: str) -> str:
    """`slice_query` per time bucket: bucket ``b`` holds [origin + b * every, + every)."""
    bucket = "intDiv(toUnixTimestamp64Nano(Timestamp) - {origin_ns:Int64}, {every_ns:Int64})"
    groups = "".join(f", {tag(i)} AS g{i}" for i in range(n_by))
    group_by = "".join(f", g{i}" for i in range(n_by))
    return f"""
SELECT
    {bucket} AS bucket{groups},
    {_measures(outcome)}
FROM {relation}
WHERE {where}
GROUP BY bucket{group_by}"""


def quantile_query(relation: str, where: str) -> str:
    return f"SELECT quantile({{q:Float64}})(Duration) FROM {relation} WHERE {where}"


def totals_query(relation: str, outcome: str, where: str) -> str:
    """Requests in the window and how many have the outcome."""
    return f"SELECT count(), countIf({OUTCOMES[outcome]}) FROM {relation} WHERE {where}"


def seen_keys_query(relation: str, where: str) -> str:
    """Attribute keys in the window with their number of distinct values and of spans."""
    return f"""
SELECT key, uniq(value) AS distinct_values, count() AS spans
FROM {relation}
ARRAY JOIN mapKeys(SpanAttributes) AS key, mapValues(SpanAttributes) AS value
WHERE {where}
GROUP BY key
ORDER BY key"""


# A tag as a grouping column: '=' and the value where the span has the tag, '-' where it lacks
# it. Columns outside a row's grouping set come back as '' (or NULL under group_by_use_nulls),
# so set membership and "(missing)" are read from the values alone, whatever the settings.
PRESENT, ABSENT = "=", "-"


def _coded_tag(i: int) -> str:
    key = f"{{k{i}:String}}"
    present = f"concat('{PRESENT}', SpanAttributes[{key}])"
    return f"if(mapContains(SpanAttributes, {key}), {present}, '{ABSENT}')"


def grouping_sets_query(
    relation: str, n_keys: int, sets: Sequence[Sequence[int]], outcome: str, where: str
) -> str:
    """Size and outcome count of every slice over the given sets of tag indexes, in one scan.

    Tag ``{k<i>}`` is column ``g<i>``, coded as `PRESENT` + value or `ABSENT`; columns of tags
    outside a row's set are empty. Slices smaller than ``{min_support}`` are left out.
    """
    if not sets or any(not s or not all(0 <= i < n_keys for i in s) for s in sets):
        raise ValueError(f"grouping sets {sets!r} must be non-empty sets of 0..{n_keys - 1}")
    columns = ", ".join(f"{_coded_tag(i)} AS g{i}" for i in range(n_keys))
    grouping = ", ".join("(" + ", ".join(f"g{i}" for i in s) + ")" for s in sets)
    return f"""
SELECT {", ".join(f"g{i}" for i in range(n_keys))}, count() AS size, countIf(outcome) AS outcomes
FROM (SELECT {columns}, {OUTCOMES[outcome]} AS outcome FROM {relation} WHERE {where})
GROUP BY GROUPING SETS ({grouping})
HAVING size >= {{min_support:UInt64}}"""


# -- log records, as the ClickHouse exporter's otel_logs table has them -------------------------
LOG_COLUMNS = (
    "Timestamp, TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber, ServiceName, Body, "
    "ResourceAttributes, ScopeName, LogAttributes, EventName"
)
"""The otel_logs columns the queries use (a store's log segments give the same, in this order)."""
_LOG = (
    "Tuple(timeUnixNano String, observedTimeUnixNano String, severityNumber UInt8, "
    f"severityText String, body {_ANY_VALUE}, attributes {_ATTRIBUTES}, traceId String, "
    "spanId String, flags UInt32, eventName String)"
)
OTLP_JSON_LOGS_SCHEMA = (
    f"resourceLogs Array(Tuple(resource Tuple(attributes {_ATTRIBUTES}), "
    f"scopeLogs Array(Tuple(scope Tuple(name String, version String), logRecords Array({_LOG})))))"
)


def otlp_json_logs(file_expression: str) -> str:
    """SELECT `LOG_COLUMNS` from ``file(...)`` rows of OTLP/JSON logs (the exporter's values:
    the body as text, a record without a time at its observed time)."""
    return f"""
SELECT
    fromUnixTimestamp64Nano(toInt64OrZero(if(toInt64OrZero(lr.timeUnixNano) > 0,
        lr.timeUnixNano, lr.observedTimeUnixNano))) AS Timestamp,
    lr.traceId AS TraceId,
    lr.spanId AS SpanId,
    toUInt8(bitAnd(lr.flags, 255)) AS TraceFlags,
    lr.severityText AS SeverityText,
    lr.severityNumber AS SeverityNumber,
    ResourceAttributes['service.name'] AS ServiceName,
    {_value_text("lr.body")} AS Body,
    {_attribute_map("rl.resource.attributes")} AS ResourceAttributes,
    sl.scope.name AS ScopeName,
    {_attribute_map("lr.attributes")} AS LogAttributes,
    lr.eventName AS EventName
FROM {file_expression}
ARRAY JOIN resourceLogs AS rl
ARRAY JOIN rl.scopeLogs AS sl
ARRAY JOIN sl.logRecords AS lr"""


# -- delayed labels: `ml.feedback` log records joined to spans --------------------------------
def labels_query(logs: str) -> str:
    """Per request id, the first label of each model: [(model, (correct, label))].

    A record made where the prediction was known says whether it was correct; one from another
    process carries only the label (and the model, if given). "First" is by the label's time,
    as in the serving process, where a second label for a prediction is a duplicate. Click
    records (``ml.feedback`` with ``ml.ranking.clicks``) judge no prediction and are skipped.
    """
    attribute = "LogAttributes['{}']".format
    return f"""
SELECT RequestId, groupArray((Model, First)) AS Labels
FROM (
    SELECT
        {attribute(semconv.ML_REQUEST_ID)} AS RequestId,
        {attribute(semconv.ML_MODEL_NAME)} AS Model,
        argMin(({attribute(semconv.ML_PREDICTION_CORRECT)},
                {attribute(semconv.ML_LABEL_VALUE)}), Timestamp) AS First
    FROM {logs}
    WHERE EventName = '{semconv.EVENT_FEEDBACK}'
      AND Timestamp >= fromUnixTimestamp64Nano({{since_ns:Int64}})
      AND RequestId != ''
      AND NOT mapContains(LogAttributes, '{semconv.ML_RANKING_CLICKS}')
    GROUP BY RequestId, Model
)
GROUP BY RequestId"""


def dropped_query(logs: str, event: str = semconv.EVENT_SPANS_DROPPED) -> str:
    """(count, processes, reasons) of the ``event`` drop reports overlapping the window: spans
    (or log records) that did not reach the store (`inferwatch.store.drops`) while the window's
    were being written."""
    attribute = "LogAttributes['{}']".format
    return f"""
SELECT
    sum(toUInt64OrZero({attribute(semconv.ATTR_DROPPED_COUNT)})),
    uniqExact({attribute(semconv.SERVICE_INSTANCE_ID)}),
    arraySort(groupUniqArray({attribute(semconv.ATTR_DROPPED_REASON)}))
FROM {logs}
WHERE EventName = '{event}'
  AND Timestamp >= fromUnixTimestamp64Nano({{since_ns:Int64}})
  AND toInt64OrZero({attribute(semconv.ATTR_DROPPED_FIRST)}) <= {{until_ns:Int64}}"""


# A label's verdict on one span: its own correctness if it has one, else (a label from another
# process) the label against the span's predicted class, for a single prediction only.
_CORRECT = f"'{semconv.ML_PREDICTION_CORRECT}'"
_VERDICTS = f"""arrayMap(x -> multiIf(
        x.1 != '' AND x.1 != Attributes['{semconv.ML_MODEL_NAME}'], '',
        x.2.1 != '', x.2.1,
        x.2.2 != '' AND mapContains(Attributes, '{semconv.ML_PREDICTION_CLASS}')
            AND NOT mapContains(Attributes, '{semconv.ML_PREDICTION_COUNT}'),
            if(x.2.2 = Attributes['{semconv.ML_PREDICTION_CLASS}'], 'true', 'false'),
        ''), Labels)"""


def labelled_spans(relation: str, labels: str) -> str:
    """The spans of ``relation`` with ``ml.prediction.correct`` set from joined labels.

    Same columns (`SPAN_COLUMNS`), so every query runs on it unchanged. A span some label judges
    wrong reads "false", one judged right "true"; a span without a label keeps its attributes.
    """
    return f"""(
SELECT Timestamp, TraceId, SpanId, ParentSpanId, SpanName, ServiceName, ResourceAttributes,
    ScopeName,
    if(Verdict = '', Attributes, mapUpdate(Attributes, map({_CORRECT}, Verdict)))
        AS SpanAttributes,
    Duration, StatusCode, StatusMessage
FROM (
    SELECT Timestamp, TraceId, SpanId, ParentSpanId, SpanName, ServiceName, ResourceAttributes,
        ScopeName, CAST(s.SpanAttributes, 'Map(String, String)') AS Attributes, Duration,
        StatusCode, StatusMessage,
        {_VERDICTS} AS Verdicts,
        multiIf(has(Verdicts, 'false'), 'false', has(Verdicts, 'true'), 'true', '') AS Verdict
    FROM {relation} AS s
    LEFT JOIN ({labels}) AS l ON s.SpanAttributes['{semconv.ML_REQUEST_ID}'] = l.RequestId
))"""


def label_join_queries(spans: str, logs: str, counted: str, n_tags: int) -> tuple[str, str]:
    """The delayed labels still to count: (judged, unmatched) queries.

    Judged: one row per prediction (request id, model) some label names, with its first label
    (by time), how many labels named it, and the span's prediction and serving service. A label
    without a model judges each model's prediction of its request. Unmatched: one row per
    (request id, label's model) with no prediction in ``spans``. Left out of both: labels a
    serving process counted in metrics it exports (``ml.label.counted``), keys in ``counted``
    (`RequestId, Model`: decided by an earlier pass), and click records. Parameters:
    ``since_ns`` (labels from), ``spans_since_ns``, tag names ``tk0``...
    """
    attribute = "LogAttributes['{}']".format
    span = "SpanAttributes['{}']".format
    has = "mapContains(SpanAttributes, '{}')".format
    tags = ", ".join(f"SpanAttributes[{{tk{i}:String}}]" for i in range(n_tags))
    has_tags = ", ".join(f"mapContains(SpanAttributes, {{tk{i}:String}})" for i in range(n_tags))
    common = f"""
WITH labels AS (
    SELECT {attribute(semconv.ML_REQUEST_ID)} AS RequestId,
        {attribute(semconv.ML_MODEL_NAME)} AS Model,
        {attribute(semconv.ML_LABEL_VALUE)} AS Label,
        {attribute(semconv.ML_LABEL_STATUS)} = '{semconv.LABEL_JOINED}'
            AND {attribute(semconv.ML_LABEL_COUNTED)} = 'true' AS Counted,
        Timestamp
    FROM {logs}
    WHERE EventName = '{semconv.EVENT_FEEDBACK}'
      AND Timestamp >= fromUnixTimestamp64Nano({{since_ns:Int64}})
      AND RequestId != ''
      AND NOT mapContains(LogAttributes, '{semconv.ML_RANKING_CLICKS}')
),
here AS (SELECT DISTINCT RequestId, Model FROM labels WHERE Counted),
candidates AS (
    SELECT RequestId, Model, Label, Timestamp FROM labels
    WHERE NOT Counted AND (RequestId, Model) NOT IN (SELECT * FROM {counted})
),
predictions AS (
    SELECT {span(semconv.ML_REQUEST_ID)} AS RequestId,
        {span(semconv.ML_MODEL_NAME)} AS Model,
        tuple({has(semconv.ML_MODEL_VERSION)}, {span(semconv.ML_MODEL_VERSION)},
            [{has_tags}], [{tags}],
            {has(semconv.ML_PREDICTION_CLASS)}, {span(semconv.ML_PREDICTION_CLASS)},
            {has(semconv.ML_PREDICTION_MEAN)}, {span(semconv.ML_PREDICTION_MEAN)},
            toUInt64OrZero({span(semconv.ML_PREDICTION_COUNT)}),
            toUnixTimestamp64Nano(Timestamp), ServiceName,
            ResourceAttributes['{semconv.SERVICE_NAMESPACE}'],
            {span(semconv.ML_PREDICTION_CLASSES)}, {span(semconv.ML_PREDICTION_VALUES)})
            AS Prediction,
        Timestamp
    FROM {spans}
    WHERE Timestamp >= fromUnixTimestamp64Nano({{spans_since_ns:Int64}})
      AND {has(semconv.ML_MODEL_NAME)}
      AND {span(semconv.ML_REQUEST_ID)} IN (SELECT RequestId FROM candidates)
)"""
    # The model is matched in WHERE of an inner join, the labels without a prediction found by
    # anti-join: in chDB an OR of the two model conditions, in the ON clause of a LEFT JOIN or
    # in this WHERE, matched nothing (the optimizer moves it into the join); IN does not.
    judged = f"""{common}
SELECT RequestId, Key,
    argMin(tuple(Label, toUnixTimestamp64Nano(LabelTime)), LabelTime) AS First,
    count() AS Labels,
    argMin(Prediction, ServedAt) AS Served
FROM (
    SELECT c.RequestId AS RequestId, c.Label AS Label, c.Timestamp AS LabelTime,
        p.Model AS Key, p.Prediction AS Prediction, p.Timestamp AS ServedAt
    FROM candidates AS c
    INNER JOIN predictions AS p ON c.RequestId = p.RequestId
    WHERE c.Model IN ('', p.Model)
      AND (c.RequestId, p.Model) NOT IN (SELECT * FROM here)
      AND (c.RequestId, p.Model) NOT IN (SELECT * FROM {counted})
)
GROUP BY RequestId, Key"""
    unmatched = f"""{common}
SELECT RequestId, Model,
    argMin(tuple(Label, toUnixTimestamp64Nano(Timestamp)), Timestamp) AS First,
    count() AS Labels
FROM candidates
WHERE (RequestId, Model) NOT IN (SELECT RequestId, Model FROM predictions)
  AND (Model != '' OR RequestId NOT IN (SELECT RequestId FROM predictions))
GROUP BY RequestId, Model"""
    return judged, unmatched
