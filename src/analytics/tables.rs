//! The analytics tables and the conversion of enriched OTLP into their Arrow rows.
//!
//! Schemas are stable: detectors and ad-hoc queries are written against them, and
//! `fleetpipe query --schema` prints them.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, MapBuilder, StringBuilder, TimestampNanosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;

use crate::pipeline::Payload;

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn map_type() -> DataType {
    let entries = Fields::from(vec![
        Field::new("keys", DataType::Utf8, false),
        Field::new("values", DataType::Utf8, true),
    ]);
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
}

/// Columns every record table shares: who emitted it and which integration it touches.
fn context_fields() -> Vec<Field> {
    vec![
        Field::new("service_name", DataType::Utf8, true),
        Field::new("agent", DataType::Utf8, true),
        Field::new("layer", DataType::Utf8, true),
        Field::new("integration_id", DataType::Utf8, true),
        Field::new("integration_name", DataType::Utf8, true),
        Field::new("integration_category", DataType::Utf8, true),
        Field::new("integration_kind", DataType::Utf8, true),
        Field::new("integration_connection", DataType::Utf8, true),
        Field::new("integration_registered", DataType::Boolean, true),
        Field::new("integration_target", DataType::Utf8, true),
    ]
}

fn schema(head: Vec<Field>, tail: Vec<Field>) -> SchemaRef {
    let mut fields = vec![Field::new("window_start", timestamp(), false)];
    fields.extend(head);
    fields.extend(context_fields());
    fields.extend(tail);
    fields.push(Field::new("attributes", map_type(), false));
    Arc::new(Schema::new(fields))
}

pub static SPANS: LazyLock<SchemaRef> = LazyLock::new(|| {
    schema(
        vec![
            Field::new("trace_id", DataType::Utf8, false),
            Field::new("span_id", DataType::Utf8, false),
            Field::new("parent_span_id", DataType::Utf8, true),
            Field::new("name", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("start_time", timestamp(), false),
            Field::new("end_time", timestamp(), false),
            Field::new("duration_ms", DataType::Float64, false),
            Field::new("status_code", DataType::Utf8, false),
            Field::new("status_message", DataType::Utf8, true),
        ],
        vec![
            Field::new("operation", DataType::Utf8, true),
            Field::new("tool_name", DataType::Utf8, true),
            Field::new("model", DataType::Utf8, true),
            Field::new("provider", DataType::Utf8, true),
            Field::new("input_tokens", DataType::Int64, true),
            Field::new("output_tokens", DataType::Int64, true),
            Field::new("mcp_method", DataType::Utf8, true),
            Field::new("server_address", DataType::Utf8, true),
            Field::new("error_type", DataType::Utf8, true),
            Field::new("http_status_code", DataType::Int64, true),
            Field::new("grpc_status_code", DataType::Int64, true),
        ],
    )
});

pub static METRIC_POINTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    schema(
        vec![
            Field::new("time", timestamp(), false),
            Field::new("metric_name", DataType::Utf8, false),
            Field::new("metric_type", DataType::Utf8, false),
            Field::new("unit", DataType::Utf8, true),
            Field::new("value", DataType::Float64, true),
            Field::new("count", DataType::Int64, true),
            Field::new("sum", DataType::Float64, true),
        ],
        vec![],
    )
});

pub static LOGS: LazyLock<SchemaRef> = LazyLock::new(|| {
    schema(
        vec![
            Field::new("time", timestamp(), false),
            Field::new("severity_number", DataType::Int64, false),
            Field::new("severity_text", DataType::Utf8, true),
            Field::new("body", DataType::Utf8, true),
            Field::new("event_name", DataType::Utf8, true),
            Field::new("trace_id", DataType::Utf8, true),
            Field::new("span_id", DataType::Utf8, true),
        ],
        vec![],
    )
});

pub static INTEGRATIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("connection", DataType::Utf8, false),
        Field::new("layers", DataType::Utf8, false),
        Field::new("owner", DataType::Utf8, true),
    ]))
});

pub static HISTORY: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("window_start", timestamp(), false),
        Field::new("agent", DataType::Utf8, true),
        Field::new("layer", DataType::Utf8, true),
        Field::new("integration_id", DataType::Utf8, true),
        Field::new("tool_name", DataType::Utf8, true),
        Field::new("spans", DataType::Int64, false),
        Field::new("errors", DataType::Int64, false),
        Field::new("throttled", DataType::Int64, false),
        Field::new("p95_duration_ms", DataType::Float64, true),
        Field::new("input_tokens", DataType::Int64, false),
        Field::new("output_tokens", DataType::Int64, false),
    ]))
});

pub static WINDOWS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("window_start", timestamp(), false),
        Field::new("window_end", timestamp(), false),
        Field::new("rows", DataType::Int64, false),
    ]))
});

/// Every table with its schema, for `--schema` and the README.
pub fn all() -> [(&'static str, SchemaRef); 6] {
    [
        ("spans", Arc::clone(&SPANS)),
        ("metric_points", Arc::clone(&METRIC_POINTS)),
        ("logs", Arc::clone(&LOGS)),
        ("integrations", Arc::clone(&INTEGRATIONS)),
        ("history", Arc::clone(&HISTORY)),
        ("windows", Arc::clone(&WINDOWS)),
    ]
}

/// The attributes a record table lifts into typed columns; the rest go to `attributes`.
const CONTEXT_KEYS: [&str; 7] = [
    "integration.id",
    "integration.name",
    "integration.category",
    "integration.kind",
    "integration.connection",
    "integration.registered",
    "integration.target",
];

const SPAN_KEYS: [&str; 11] = [
    "gen_ai.operation.name",
    "gen_ai.tool.name",
    "gen_ai.request.model",
    "gen_ai.provider.name",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "mcp.method.name",
    "server.address",
    "error.type",
    "http.response.status_code",
    "rpc.grpc.status_code",
];

/// Who emitted a resource's records.
struct Emitter {
    service: Option<String>,
    agent: Option<String>,
    layer: Option<String>,
}

impl Emitter {
    fn of(resource: &[KeyValue]) -> Emitter {
        let service = find(resource, "service.name").map(text);
        let agent = find(resource, "gen_ai.agent.name")
            .map(text)
            .or_else(|| service.clone());
        Emitter {
            service,
            agent,
            layer: find(resource, "operating_model.layer").map(text),
        }
    }
}

/// Builders shared by the three record tables.
struct ContextColumns {
    window_start: TimestampNanosecondBuilder,
    strings: Vec<StringBuilder>,
    registered: BooleanBuilder,
    attributes: MapBuilder<StringBuilder, StringBuilder>,
}

impl ContextColumns {
    fn new() -> ContextColumns {
        ContextColumns {
            window_start: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            strings: (0..9).map(|_| StringBuilder::new()).collect(),
            registered: BooleanBuilder::new(),
            attributes: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
        }
    }

    /// Appends the context of one record; `lifted` keys are left out of `attributes`.
    fn append(&mut self, window_start: i64, emitter: &Emitter, attributes: &[KeyValue], lifted: &[&str]) {
        self.window_start.append_value(window_start);
        let [service, agent, layer, id, name, category, kind, connection, target] = &mut self.strings[..] else {
            unreachable!("nine string columns")
        };
        service.append_option(emitter.service.as_deref());
        agent.append_option(emitter.agent.as_deref());
        layer.append_option(emitter.layer.as_deref());
        for (builder, key) in [id, name, category, kind, connection].into_iter().zip(CONTEXT_KEYS) {
            append_text(builder, find(attributes, key));
        }
        self.registered
            .append_option(find(attributes, "integration.registered").and_then(|v| match v {
                Value::BoolValue(b) => Some(*b),
                _ => None,
            }));
        append_text(target, find(attributes, "integration.target"));
        for kv in attributes {
            if CONTEXT_KEYS.contains(&kv.key.as_str()) || lifted.contains(&kv.key.as_str()) {
                continue;
            }
            self.attributes.keys().append_value(&kv.key);
            append_text(
                self.attributes.values(),
                kv.value.as_ref().and_then(|v| v.value.as_ref()),
            );
        }
        // Appending a map entry only fails on mismatched key/value lengths, which the loop above keeps equal.
        let _ = self.attributes.append(true);
    }

    fn finish_head(&mut self) -> ArrayRef {
        Arc::new(self.window_start.finish())
    }

    fn finish_context(&mut self) -> Vec<ArrayRef> {
        let mut columns: Vec<ArrayRef> = self.strings[..8]
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        columns.push(Arc::new(self.registered.finish()));
        columns.push(Arc::new(self.strings[8].finish()));
        columns
    }

    fn finish_attributes(&mut self) -> ArrayRef {
        Arc::new(self.attributes.finish())
    }
}

fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()
}

/// Appends a value as text, borrowing string values rather than copying them first.
fn append_text(builder: &mut StringBuilder, value: Option<&Value>) {
    match value {
        Some(Value::StringValue(s)) => builder.append_value(s),
        Some(other) => builder.append_value(text(other)),
        None => builder.append_null(),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::StringValue(s) => s.clone(),
        Value::BoolValue(b) => b.to_string(),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        Value::BytesValue(b) => hex(b),
        Value::ArrayValue(a) => {
            let items: Vec<String> = a.values.iter().filter_map(|v| v.value.as_ref()).map(text).collect();
            format!("[{}]", items.join(","))
        }
        Value::KvlistValue(l) => {
            let items: Vec<String> = l
                .values
                .iter()
                .map(|kv| {
                    format!(
                        "{}={}",
                        kv.key,
                        kv.value
                            .as_ref()
                            .and_then(|v: &AnyValue| v.value.as_ref())
                            .map(text)
                            .unwrap_or_default()
                    )
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Value::StringValueStrindex(i) => i.to_string(),
    }
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::IntValue(i) => Some(*i),
        Value::DoubleValue(d) => Some(*d as i64),
        Value::StringValue(s) => s.parse().ok(),
        _ => None,
    }
}

/// Lowercase hex, as OTLP/JSON writes ids. Runs three times a span: no formatting machinery.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Rows of one window, accumulating until the window closes.
pub struct WindowBuilder {
    window_start: i64,
    spans: SpanColumns,
    points: PointColumns,
    logs: LogColumns,
    pub rows: usize,
}

impl WindowBuilder {
    pub fn new(window_start: i64) -> WindowBuilder {
        WindowBuilder {
            window_start,
            spans: SpanColumns::new(),
            points: PointColumns::new(),
            logs: LogColumns::new(),
            rows: 0,
        }
    }

    pub fn window_start(&self) -> i64 {
        self.window_start
    }

    /// Adds every span, data point or log record of an enriched request.
    pub fn add(&mut self, payload: &Payload) {
        match payload {
            Payload::Traces(r) => {
                for rs in &r.resource_spans {
                    let emitter = Emitter::of(
                        rs.resource
                            .as_ref()
                            .map(|r| r.attributes.as_slice())
                            .unwrap_or_default(),
                    );
                    for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                        self.spans.append(self.window_start, &emitter, span);
                        self.rows += 1;
                    }
                }
            }
            Payload::Metrics(r) => {
                for rm in &r.resource_metrics {
                    let emitter = Emitter::of(
                        rm.resource
                            .as_ref()
                            .map(|r| r.attributes.as_slice())
                            .unwrap_or_default(),
                    );
                    for metric in rm.scope_metrics.iter().flat_map(|sm| &sm.metrics) {
                        self.rows += self.points.append(self.window_start, &emitter, metric);
                    }
                }
            }
            Payload::Logs(r) => {
                for rl in &r.resource_logs {
                    let emitter = Emitter::of(
                        rl.resource
                            .as_ref()
                            .map(|r| r.attributes.as_slice())
                            .unwrap_or_default(),
                    );
                    for record in rl.scope_logs.iter().flat_map(|sl| &sl.log_records) {
                        if record.event_name == super::signal::ANOMALY_EVENT {
                            continue;
                        }
                        self.logs.append(self.window_start, &emitter, record);
                        self.rows += 1;
                    }
                }
            }
        }
    }

    /// The window's `spans`, `metric_points` and `logs` batches.
    pub fn finish(mut self) -> Result<[RecordBatch; 3], ArrowError> {
        Ok([self.spans.finish()?, self.points.finish()?, self.logs.finish()?])
    }
}

struct SpanColumns {
    context: ContextColumns,
    strings: Vec<StringBuilder>,
    times: [TimestampNanosecondBuilder; 2],
    duration: Float64Builder,
    genai_strings: Vec<StringBuilder>,
    ints: Vec<Int64Builder>,
}

impl SpanColumns {
    fn new() -> SpanColumns {
        SpanColumns {
            context: ContextColumns::new(),
            strings: (0..7).map(|_| StringBuilder::new()).collect(),
            times: [
                TimestampNanosecondBuilder::new().with_timezone("UTC"),
                TimestampNanosecondBuilder::new().with_timezone("UTC"),
            ],
            duration: Float64Builder::new(),
            genai_strings: (0..7).map(|_| StringBuilder::new()).collect(),
            ints: (0..4).map(|_| Int64Builder::new()).collect(),
        }
    }

    fn append(&mut self, window_start: i64, emitter: &Emitter, span: &opentelemetry_proto::tonic::trace::v1::Span) {
        self.context.append(window_start, emitter, &span.attributes, &SPAN_KEYS);
        let kind = match span.kind {
            1 => "internal",
            2 => "server",
            3 => "client",
            4 => "producer",
            5 => "consumer",
            _ => "unspecified",
        };
        let status = span.status.as_ref();
        let status_code = match status.map_or(0, |s| s.code) {
            1 => "ok",
            2 => "error",
            _ => "unset",
        };
        let [trace_id, span_id, parent, name, kind_column, status_column, message] = &mut self.strings[..] else {
            unreachable!("seven string columns")
        };
        trace_id.append_value(hex(&span.trace_id));
        span_id.append_value(hex(&span.span_id));
        parent.append_option((!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)));
        name.append_value(&span.name);
        kind_column.append_value(kind);
        status_column.append_value(status_code);
        message.append_option(status.map(|s| s.message.as_str()).filter(|m| !m.is_empty()));
        self.times[0].append_value(span.start_time_unix_nano as i64);
        self.times[1].append_value(span.end_time_unix_nano as i64);
        self.duration
            .append_value(span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano) as f64 / 1e6);
        let attrs = &span.attributes;
        for (builder, key) in self.genai_strings.iter_mut().zip([
            "gen_ai.operation.name",
            "gen_ai.tool.name",
            "gen_ai.request.model",
            "gen_ai.provider.name",
            "mcp.method.name",
            "server.address",
            "error.type",
        ]) {
            append_text(builder, find(attrs, key));
        }
        for (builder, key) in self.ints.iter_mut().zip([
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "http.response.status_code",
            "rpc.grpc.status_code",
        ]) {
            builder.append_option(find(attrs, key).and_then(int));
        }
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut columns = vec![self.context.finish_head()];
        columns.extend(self.strings[..5].iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        for time in &mut self.times {
            columns.push(Arc::new(time.finish()));
        }
        columns.push(Arc::new(self.duration.finish()));
        columns.extend(self.strings[5..].iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.extend(self.context.finish_context());
        let mut g = self.genai_strings.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef);
        let mut i = self.ints.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef);
        // operation, tool_name, model, provider, input_tokens, output_tokens, mcp_method,
        // server_address, error_type, http_status_code, grpc_status_code
        let ordered = [
            g.next(),
            g.next(),
            g.next(),
            g.next(),
            i.next(),
            i.next(),
            g.next(),
            g.next(),
            g.next(),
            i.next(),
            i.next(),
        ];
        columns.extend(ordered.into_iter().flatten());
        columns.push(self.context.finish_attributes());
        RecordBatch::try_new(Arc::clone(&SPANS), columns)
    }
}

/// One metric data point, whatever its type.
struct PointRow<'a> {
    kind: &'static str,
    time: u64,
    attributes: &'a [KeyValue],
    /// Gauge and sum values.
    value: Option<f64>,
    /// Histogram and summary counts and sums.
    count: Option<i64>,
    sum: Option<f64>,
}

struct PointColumns {
    context: ContextColumns,
    time: TimestampNanosecondBuilder,
    strings: Vec<StringBuilder>,
    value: Float64Builder,
    count: Int64Builder,
    sum: Float64Builder,
}

impl PointColumns {
    fn new() -> PointColumns {
        PointColumns {
            context: ContextColumns::new(),
            time: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            strings: (0..3).map(|_| StringBuilder::new()).collect(),
            value: Float64Builder::new(),
            count: Int64Builder::new(),
            sum: Float64Builder::new(),
        }
    }

    /// Appends each data point of `metric`; returns how many.
    fn append<'a>(
        &mut self,
        window_start: i64,
        emitter: &Emitter,
        metric: &'a opentelemetry_proto::tonic::metrics::v1::Metric,
    ) -> usize {
        let number = |v: &Option<number_data_point::Value>| match v {
            Some(number_data_point::Value::AsDouble(d)) => Some(*d),
            Some(number_data_point::Value::AsInt(i)) => Some(*i as f64),
            None => None,
        };
        let point = |kind, time, attributes: &'a [KeyValue], value, count, sum| PointRow {
            kind,
            time,
            attributes,
            value,
            count,
            sum,
        };
        let points: Vec<PointRow<'a>> = match &metric.data {
            Some(Data::Gauge(g)) => g
                .data_points
                .iter()
                .map(|p| point("gauge", p.time_unix_nano, &p.attributes, number(&p.value), None, None))
                .collect(),
            Some(Data::Sum(s)) => s
                .data_points
                .iter()
                .map(|p| point("sum", p.time_unix_nano, &p.attributes, number(&p.value), None, None))
                .collect(),
            Some(Data::Histogram(h)) => h
                .data_points
                .iter()
                .map(|p| {
                    point(
                        "histogram",
                        p.time_unix_nano,
                        &p.attributes,
                        None,
                        Some(p.count as i64),
                        p.sum,
                    )
                })
                .collect(),
            Some(Data::ExponentialHistogram(h)) => h
                .data_points
                .iter()
                .map(|p| {
                    point(
                        "exponential_histogram",
                        p.time_unix_nano,
                        &p.attributes,
                        None,
                        Some(p.count as i64),
                        p.sum,
                    )
                })
                .collect(),
            Some(Data::Summary(s)) => s
                .data_points
                .iter()
                .map(|p| {
                    point(
                        "summary",
                        p.time_unix_nano,
                        &p.attributes,
                        None,
                        Some(p.count as i64),
                        Some(p.sum),
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        for row in &points {
            self.context.append(window_start, emitter, row.attributes, &[]);
            self.time.append_value(row.time as i64);
            self.strings[0].append_value(&metric.name);
            self.strings[1].append_value(row.kind);
            self.strings[2].append_option((!metric.unit.is_empty()).then_some(metric.unit.as_str()));
            self.value.append_option(row.value);
            self.count.append_option(row.count);
            self.sum.append_option(row.sum);
        }
        points.len()
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut columns = vec![self.context.finish_head(), Arc::new(self.time.finish()) as ArrayRef];
        columns.extend(self.strings.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.push(Arc::new(self.value.finish()));
        columns.push(Arc::new(self.count.finish()));
        columns.push(Arc::new(self.sum.finish()));
        columns.extend(self.context.finish_context());
        columns.push(self.context.finish_attributes());
        RecordBatch::try_new(Arc::clone(&METRIC_POINTS), columns)
    }
}

struct LogColumns {
    context: ContextColumns,
    time: TimestampNanosecondBuilder,
    severity: Int64Builder,
    strings: Vec<StringBuilder>,
}

impl LogColumns {
    fn new() -> LogColumns {
        LogColumns {
            context: ContextColumns::new(),
            time: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            severity: Int64Builder::new(),
            strings: (0..5).map(|_| StringBuilder::new()).collect(),
        }
    }

    fn append(
        &mut self,
        window_start: i64,
        emitter: &Emitter,
        record: &opentelemetry_proto::tonic::logs::v1::LogRecord,
    ) {
        self.context.append(window_start, emitter, &record.attributes, &[]);
        let time = if record.time_unix_nano > 0 {
            record.time_unix_nano
        } else {
            record.observed_time_unix_nano
        };
        self.time.append_value(time as i64);
        self.severity.append_value(i64::from(record.severity_number));
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        self.strings[0].append_option(non_empty(&record.severity_text));
        append_text(
            &mut self.strings[1],
            record.body.as_ref().and_then(|b| b.value.as_ref()),
        );
        self.strings[2].append_option(non_empty(&record.event_name));
        self.strings[3].append_option((!record.trace_id.is_empty()).then(|| hex(&record.trace_id)));
        self.strings[4].append_option((!record.span_id.is_empty()).then(|| hex(&record.span_id)));
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut columns = vec![
            self.context.finish_head(),
            Arc::new(self.time.finish()) as ArrayRef,
            Arc::new(self.severity.finish()) as ArrayRef,
        ];
        columns.extend(self.strings.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.extend(self.context.finish_context());
        columns.push(self.context.finish_attributes());
        RecordBatch::try_new(Arc::clone(&LOGS), columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: ids and bytes values are written as lowercase hex, two digits a byte.
    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0xab, 0x0f, 0xf0]), "00ab0ff0");
        assert_eq!(hex(&[]), "");
        assert_eq!(text(&Value::BytesValue(vec![1, 255])), "01ff");
    }
}
