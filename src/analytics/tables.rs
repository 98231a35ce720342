//! The analytics tables and the conversion of enriched OTLP into their Arrow rows.
//!
//! Schemas are stable: detectors and ad-hoc queries are written against them, and
//! `fleetpipe query --schema` prints them.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Float64Builder, GenericByteArray, GenericByteBuilder,
    Int64Builder, MapBuilder, PrimitiveBuilder, StringArray, StringBuilder, TimestampNanosecondArray,
    TimestampNanosecondBuilder,
};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, ByteArrayType, DataType, Field, Fields, Schema, SchemaRef, TimeUnit,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

use super::sampling::TraceSampler;
use crate::otlp::semconv::{Tag, TagNames};
use crate::otlp::wire::codec::{AnyValueRef, Attribute, Field as WireField, Malformed, fields};
use crate::otlp::{Request, Signal};

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

/// A record table: every column but `window_start` is nullable, as a window leaves out the
/// columns nobody reads (see [`KeptColumns`]) and a query reading them gets nulls.
fn schema(head: Vec<Field>, tail: Vec<Field>) -> SchemaRef {
    let mut fields = vec![Field::new("window_start", timestamp(), false)];
    fields.extend(head);
    fields.extend(context_fields());
    fields.extend(tail);
    fields.push(Field::new("attributes", map_type(), true));
    Arc::new(Schema::new(fields))
}

pub static SPANS: LazyLock<SchemaRef> = LazyLock::new(|| {
    schema(
        vec![
            Field::new("trace_id", DataType::Utf8, true),
            Field::new("span_id", DataType::Utf8, true),
            Field::new("parent_span_id", DataType::Utf8, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("kind", DataType::Utf8, true),
            Field::new("start_time", timestamp(), true),
            Field::new("end_time", timestamp(), true),
            Field::new("duration_ms", DataType::Float64, true),
            Field::new("status_code", DataType::Utf8, true),
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
            Field::new("time", timestamp(), true),
            Field::new("metric_name", DataType::Utf8, true),
            Field::new("metric_type", DataType::Utf8, true),
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
            Field::new("time", timestamp(), true),
            Field::new("severity_number", DataType::Int64, true),
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
        Field::new("kept_spans", DataType::Int64, false),
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
        Field::new("sampling_percentage", DataType::Float64, false),
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

/// The record tables, in the order windows hold them.
pub const RECORD_TABLES: [&str; 3] = ["spans", "metric_points", "logs"];

fn record_schema(table: usize) -> &'static SchemaRef {
    [&SPANS, &METRIC_POINTS, &LOGS][table]
}

/// Which columns of the record tables a window builds, by position in their schemas; the
/// others are left out of its batches and read as nulls. Every column built costs CPU on every record at full rate, so by default
/// only those the loaded detectors and the history rollup read are built. `window_start` is
/// always built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptColumns([u64; 3]);

/// Until the detectors are loaded, windows build every column.
impl Default for KeptColumns {
    fn default() -> Self {
        KeptColumns::ALL
    }
}

impl KeptColumns {
    pub const ALL: KeptColumns = KeptColumns([u64::MAX; 3]);
    pub const WINDOW_START: KeptColumns = KeptColumns([1; 3]);

    /// Keeps the columns of `table` at `positions` (all of them when `None`, as for a query
    /// that reads every column); tables other than the record tables are ignored.
    pub fn keep(&mut self, table: &str, positions: Option<&[usize]>) {
        let Some(index) = RECORD_TABLES.iter().position(|t| *t == table) else {
            return;
        };
        self.0[index] |= match positions {
            None => u64::MAX,
            Some(positions) => positions.iter().fold(0, |mask, p| mask | 1u64 << p),
        };
    }

    pub fn union(self, other: KeptColumns) -> KeptColumns {
        KeptColumns([0, 1, 2].map(|table| self.0[table] | other.0[table]))
    }

    fn has(self, table: usize, position: usize) -> bool {
        self.0[table] & 1u64 << position != 0
    }

    /// The names of the columns at `positions` of `table` that are left out.
    pub fn left_out(self, table: &str, positions: Option<&[usize]>) -> Vec<String> {
        let Some(index) = RECORD_TABLES.iter().position(|t| *t == table) else {
            return Vec::new();
        };
        let fields = record_schema(index).fields();
        let all: Vec<usize> = (0..fields.len()).collect();
        positions
            .unwrap_or(&all)
            .iter()
            .filter(|p| !self.has(index, **p))
            .map(|p| fields[*p].name().clone())
            .collect()
    }

    /// Whether each named column of `table` is built, in the order of `names`.
    fn flags<const N: usize>(self, table: usize, names: [&str; N]) -> [bool; N] {
        let schema = record_schema(table);
        names.map(|name| {
            let position = schema.index_of(name).expect("column of the table's schema");
            self.has(table, position)
        })
    }

    /// A batch of the columns of `table` that are kept, out of all its columns (those left
    /// out come from builders never appended to). Windows hold no null columns: a query
    /// reading one gets nulls made when it scans (see `window::widen`).
    fn batch(self, table: usize, columns: Vec<ArrayRef>) -> Result<RecordBatch, ArrowError> {
        let positions: Vec<usize> = (0..columns.len()).filter(|p| self.has(table, *p)).collect();
        let schema = record_schema(table).project(&positions)?;
        let kept = columns
            .into_iter()
            .enumerate()
            .filter(|(position, _)| self.has(table, *position))
            .map(|(_, column)| column)
            .collect();
        RecordBatch::try_new(Arc::new(schema), kept)
    }
}

/// The attributes a record table lifts into typed columns, by slot: the context columns
/// every table has, then the GenAI/MCP columns of `spans`. The rest go to `attributes`.
const CONTEXT_SLOTS: usize = 7;
const LIFTED_SLOTS: usize = CONTEXT_SLOTS + 11;

/// The slot of a lifted attribute key. The keys differ in length, first or last byte, so
/// those pick the one key to compare with, a comparison of known length that the compiler
/// writes as a few word loads rather than a byte-by-byte `match` on whole keys
/// (`cargo bench --bench analytics`). The registry tags, named as configured, are found by
/// [`TagNames::tag`].
#[inline]
fn lifted_slot(key: &[u8]) -> Option<usize> {
    Some(match (key.len(), key.first()?, key.last()?) {
        (21, b'g', b'e') if key == b"gen_ai.operation.name" => 7,
        (16, b'g', b'e') if key == b"gen_ai.tool.name" => 8,
        (20, b'g', b'l') if key == b"gen_ai.request.model" => 9,
        (20, b'g', b'e') if key == b"gen_ai.provider.name" => 10,
        (15, b'm', b'e') if key == b"mcp.method.name" => 11,
        (14, b's', b's') if key == b"server.address" => 12,
        (10, b'e', b'e') if key == b"error.type" => 13,
        (25, b'g', b's') if key == b"gen_ai.usage.input_tokens" => 14,
        (26, b'g', b's') if key == b"gen_ai.usage.output_tokens" => 15,
        (25, b'h', b'e') if key == b"http.response.status_code" => 16,
        (20, b'r', b'e') if key == b"rpc.grpc.status_code" => 17,
        _ => return None,
    })
}

/// The slot of a registry tag: the context columns' order (see `ContextColumns::append`).
fn tag_slot(tag: Tag) -> usize {
    match tag {
        Tag::Id => 0,
        Tag::Name => 1,
        Tag::Category => 2,
        Tag::Kind => 3,
        Tag::Connection => 4,
        Tag::Registered => 5,
        Tag::Target => 6,
    }
}

/// One record's attributes: the encoded `AnyValue` of each lifted key, and the others when
/// the `attributes` column is built.
struct RecordAttributes<'a> {
    lifted: [Option<&'a [u8]>; LIFTED_SLOTS],
    others: Vec<Attribute<'a>>,
    keep_others: bool,
    tags: &'a TagNames,
}

impl<'a> RecordAttributes<'a> {
    fn new(keep_others: bool, tags: &'a TagNames) -> RecordAttributes<'a> {
        RecordAttributes {
            lifted: [None; LIFTED_SLOTS],
            others: Vec::new(),
            keep_others,
            tags,
        }
    }

    /// Starts the next record.
    fn clear(&mut self) {
        self.lifted = [None; LIFTED_SLOTS];
        self.others.clear();
    }

    /// Reads one attribute field. Only the first `slots` slots are lifted: tables without the
    /// GenAI/MCP columns keep those attributes in their map.
    #[inline(always)]
    fn push(&mut self, field: &WireField<'a>, slots: usize) -> Result<(), Malformed> {
        let attribute = Attribute::parse(field)?;
        let slot = lifted_slot(attribute.key).or_else(|| self.tags.tag(attribute.key).map(tag_slot));
        match slot.filter(|slot| *slot < slots) {
            Some(slot) => self.lifted[slot] = Some(attribute.value),
            None if self.keep_others => self.others.push(attribute),
            None => {}
        }
        Ok(())
    }
}

/// Field numbers of the OTLP messages analytics reads (see `proto/`).
mod field {
    /// `Resource{Spans,Metrics,Logs}`, `Scope{Spans,Metrics,Logs}` and the requests.
    pub const RESOURCE: u32 = 1;
    pub const SCOPES: u32 = 2;
    pub const RECORDS: u32 = 2;
    pub const RESOURCE_ATTRIBUTES: u32 = 1;
    pub const SPAN_TRACE_ID: u32 = 1;
    pub const SPAN_ID: u32 = 2;
    pub const SPAN_PARENT_ID: u32 = 4;
    pub const SPAN_NAME: u32 = 5;
    pub const SPAN_KIND: u32 = 6;
    pub const SPAN_START: u32 = 7;
    pub const SPAN_END: u32 = 8;
    pub const SPAN_ATTRIBUTES: u32 = 9;
    pub const SPAN_STATUS: u32 = 15;
    pub const STATUS_MESSAGE: u32 = 2;
    pub const STATUS_CODE: u32 = 3;
    pub const METRIC_NAME: u32 = 1;
    pub const METRIC_UNIT: u32 = 3;
    pub const DATA_POINTS: u32 = 1;
    pub const POINT_TIME: u32 = 3;
    pub const POINT_COUNT: u32 = 4;
    pub const POINT_SUM: u32 = 5;
    pub const NUMBER_AS_DOUBLE: u32 = 4;
    pub const NUMBER_AS_INT: u32 = 6;
    pub const LOG_TIME: u32 = 1;
    pub const LOG_SEVERITY_NUMBER: u32 = 2;
    pub const LOG_SEVERITY_TEXT: u32 = 3;
    pub const LOG_BODY: u32 = 5;
    pub const LOG_ATTRIBUTES: u32 = 6;
    pub const LOG_TRACE_ID: u32 = 9;
    pub const LOG_SPAN_ID: u32 = 10;
    pub const LOG_OBSERVED_TIME: u32 = 11;
    pub const LOG_EVENT_NAME: u32 = 12;
}

/// Who emitted a resource's records.
#[derive(Default)]
struct Emitter<'a> {
    service: Option<&'a str>,
    agent: Option<&'a str>,
    layer: Option<&'a str>,
}

impl<'a> Emitter<'a> {
    /// The emitter named by a resource's attributes; `layer` is the layer attribute's name.
    fn of(resource: &'a [u8], layer: &[u8]) -> Result<Emitter<'a>, Malformed> {
        let mut emitter = Emitter {
            service: None,
            agent: None,
            layer: None,
        };
        for f in fields(resource) {
            let f = f?;
            if f.number != field::RESOURCE_ATTRIBUTES {
                continue;
            }
            let attribute = Attribute::parse(&f)?;
            match attribute.key {
                b"service.name" => emitter.service = attribute.string(),
                b"gen_ai.agent.name" => emitter.agent = attribute.string(),
                key if key == layer => emitter.layer = attribute.string(),
                _ => {}
            }
        }
        emitter.agent = emitter.agent.or(emitter.service);
        Ok(emitter)
    }
}

/// An attribute value as an integer: ints, doubles truncated, numeric strings.
fn integer(value: AnyValueRef<'_>) -> Option<i64> {
    match value {
        AnyValueRef::Int(i) => Some(i),
        AnyValueRef::Double(d) => Some(d as i64),
        AnyValueRef::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Appends an encoded `AnyValue` as text (null when absent), writing into the builder
/// rather than through a `String`.
fn append_text(builder: &mut StringBuilder, any_value: Option<&[u8]>) {
    use std::fmt::Write;
    let Some(value) = any_value.and_then(AnyValueRef::read) else {
        builder.append_null();
        return;
    };
    // Writing into a string builder cannot fail. Strings, nearly every value, go in as they
    // are: formatting them first was 2 % of the conversion, 7 % with every column.
    let _ = match value {
        AnyValueRef::String(s) => {
            builder.append_value(s);
            return;
        }
        AnyValueRef::Bool(b) => write!(builder, "{b}"),
        AnyValueRef::Int(i) => write!(builder, "{i}"),
        AnyValueRef::Double(d) => write!(builder, "{d}"),
        AnyValueRef::Bytes(b) => write_hex(builder, b),
        AnyValueRef::Nested(bytes) => {
            let decoded = AnyValue::decode(bytes).ok().and_then(|v| v.value);
            write!(builder, "{}", decoded.as_ref().map(text).unwrap_or_default())
        }
    };
    builder.append_value("");
}

fn append_int(builder: &mut Int64Builder, any_value: Option<&[u8]>) {
    builder.append_option(any_value.and_then(AnyValueRef::read).and_then(integer));
}

/// Text of nested values (arrays, key-value lists), as `[a,b]` and `{k=v}`.
fn text(value: &Value) -> String {
    match value {
        Value::StringValue(s) => s.clone(),
        Value::BoolValue(b) => b.to_string(),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        Value::BytesValue(b) => {
            let mut out = String::with_capacity(b.len() * 2);
            let _ = write_hex(&mut out, b);
            out
        }
        Value::ArrayValue(a) => {
            let items: Vec<String> = a.values.iter().filter_map(|v| v.value.as_ref()).map(text).collect();
            format!("[{}]", items.join(","))
        }
        Value::KvlistValue(l) => {
            let items: Vec<String> = l
                .values
                .iter()
                .map(|kv| {
                    let value = kv.value.as_ref().and_then(|v| v.value.as_ref());
                    format!("{}={}", kv.key, value.map(text).unwrap_or_default())
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Value::StringValueStrindex(i) => i.to_string(),
    }
}

/// The two lowercase hex digits of each byte value.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0x0f]];
        byte += 1;
    }
    pairs
};

/// The lowercase hex digits of up to 32 bytes, one table lookup a byte (shifting and masking
/// each byte for its two digits made an id cost a third more).
fn hex_digits<'b>(bytes: &[u8], buffer: &'b mut [u8; 64]) -> &'b [u8] {
    for (pair, byte) in buffer.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(*byte)]);
    }
    &buffer[..bytes.len().min(32) * 2]
}

/// Lowercase hex, as OTLP/JSON writes ids, 32 bytes of input at a time.
fn write_hex(out: &mut impl std::fmt::Write, bytes: &[u8]) -> std::fmt::Result {
    let mut buffer = [0u8; 64];
    for chunk in bytes.chunks(32) {
        let digits = hex_digits(chunk, &mut buffer);
        // Hex digits are ASCII.
        out.write_str(std::str::from_utf8(digits).map_err(|_| std::fmt::Error)?)?;
    }
    Ok(())
}

/// A column of ids in lowercase hex. The digits go in as bytes and the column is checked as
/// UTF-8 once a batch: checking each id on its own was a fifth of writing it, and ids are
/// written up to three times a span.
struct IdColumn(BinaryBuilder);

impl IdColumn {
    fn new() -> IdColumn {
        IdColumn(BinaryBuilder::new())
    }

    /// Appends an id; an empty id is null.
    fn append(&mut self, id: &[u8]) {
        use std::io::Write;
        if id.is_empty() {
            self.0.append_null();
            return;
        }
        let mut buffer = [0u8; 64];
        for chunk in id.chunks(32) {
            // Writing into a binary builder cannot fail.
            let _ = self.0.write_all(hex_digits(chunk, &mut buffer));
        }
        self.0.append_value(b"");
    }

    /// The column, as text; the builder left in its place has room for a whole batch (see
    /// `FinishSized`).
    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(Arc::new(StringArray::try_from_binary(finish_bytes_sized(&mut self.0))?))
    }
}

/// The text of a field whose column is built; empty otherwise, unchecked.
fn utf8_if(kept: bool, bytes: &[u8], field: u32) -> Result<&str, Malformed> {
    match kept {
        true => std::str::from_utf8(bytes).map_err(|_| Malformed::Utf8 { field }),
        false => Ok(""),
    }
}

/// Appends to the builder of a column the window builds; nothing otherwise.
fn append_if<B>(kept: bool, builder: &mut B, append: impl FnOnce(&mut B)) {
    if kept {
        append(builder);
    }
}

fn append_non_empty(builder: &mut StringBuilder, text: &str) {
    builder.append_option((!text.is_empty()).then_some(text));
}

/// Finishing a builder into a column leaves in its place one with room for a whole batch
/// (`CHUNK_ROWS`) at the sizes per row it just held: consecutive batches of a stream are
/// alike, and a builder that grows by doubling copies its column several times over while it
/// fills (7% of the conversion). Only a table's first batch grows.
trait FinishSized {
    fn finish_sized(&mut self) -> ArrayRef;
}

/// `held` items of `rows` rows scaled to a whole batch.
fn per_batch(held: usize, rows: usize) -> usize {
    held.div_ceil(rows.max(1)) * CHUNK_ROWS
}

/// Finishes a text or binary builder, leaving one sized for a whole batch in its place.
fn finish_bytes_sized<T: ByteArrayType>(builder: &mut GenericByteBuilder<T>) -> GenericByteArray<T> {
    let bytes = per_batch(builder.values_slice().len(), builder.len());
    std::mem::replace(builder, GenericByteBuilder::with_capacity(CHUNK_ROWS, bytes)).finish()
}

impl FinishSized for StringBuilder {
    fn finish_sized(&mut self) -> ArrayRef {
        Arc::new(finish_bytes_sized(self))
    }
}

impl<T: ArrowPrimitiveType> FinishSized for PrimitiveBuilder<T> {
    fn finish_sized(&mut self) -> ArrayRef {
        let column = self.finish();
        *self = PrimitiveBuilder::with_capacity(CHUNK_ROWS).with_data_type(column.data_type().clone());
        Arc::new(column)
    }
}

impl FinishSized for BooleanBuilder {
    fn finish_sized(&mut self) -> ArrayRef {
        Arc::new(std::mem::replace(self, BooleanBuilder::with_capacity(CHUNK_ROWS)).finish())
    }
}

impl FinishSized for MapBuilder<StringBuilder, StringBuilder> {
    fn finish_sized(&mut self) -> ArrayRef {
        let rows = self.len();
        let sized = |text: &StringBuilder| {
            let entries = per_batch(text.len(), rows);
            StringBuilder::with_capacity(entries, per_batch(text.values_slice().len(), rows))
        };
        let (keys, values) = (sized(self.keys()), sized(self.values()));
        let next = MapBuilder::with_capacity(None, keys, values, CHUNK_ROWS);
        Arc::new(std::mem::replace(self, next).finish())
    }
}

/// Builders shared by the three record tables.
struct ContextColumns {
    strings: Vec<StringBuilder>,
    registered: BooleanBuilder,
    attributes: MapBuilder<StringBuilder, StringBuilder>,
    /// Whether `strings`, `registered` and `attributes` are built.
    kept_strings: [bool; 9],
    kept_registered: bool,
    kept_attributes: bool,
}

/// The columns of `ContextColumns::strings`, in order.
const CONTEXT_STRINGS: [&str; 9] = [
    "service_name",
    "agent",
    "layer",
    "integration_id",
    "integration_name",
    "integration_category",
    "integration_kind",
    "integration_connection",
    "integration_target",
];

fn time_builder() -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::new().with_timezone("UTC")
}

impl ContextColumns {
    fn new() -> ContextColumns {
        ContextColumns {
            strings: (0..9).map(|_| StringBuilder::new()).collect(),
            registered: BooleanBuilder::new(),
            attributes: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            kept_strings: [true; 9],
            kept_registered: true,
            kept_attributes: true,
        }
    }

    /// Builds only the columns of `table` that `kept` keeps; between batches only.
    fn keep(&mut self, kept: KeptColumns, table: usize) {
        self.kept_strings = kept.flags(table, CONTEXT_STRINGS);
        [self.kept_registered, self.kept_attributes] = kept.flags(table, ["integration_registered", "attributes"]);
    }

    /// Appends the context of one record and its attributes that are not lifted.
    fn append(&mut self, emitter: &Emitter<'_>, attributes: &RecordAttributes<'_>) {
        let lifted = &attributes.lifted;
        // The emitter's three, then the integration's, lifted in the same order (see `lifted_slot`).
        let emitted = [emitter.service, emitter.agent, emitter.layer];
        for ((builder, value), kept) in self.strings.iter_mut().zip(emitted).zip(self.kept_strings) {
            append_if(kept, builder, |b| b.append_option(value));
        }
        let integration = [lifted[0], lifted[1], lifted[2], lifted[3], lifted[4], lifted[6]];
        let kept_integration = &self.kept_strings[3..];
        for ((builder, value), kept) in self.strings[3..].iter_mut().zip(integration).zip(kept_integration) {
            append_if(*kept, builder, |b| append_text(b, value));
        }
        let registered = lifted[5].and_then(AnyValueRef::read).and_then(|v| match v {
            AnyValueRef::Bool(b) => Some(b),
            _ => None,
        });
        append_if(self.kept_registered, &mut self.registered, |b| {
            b.append_option(registered)
        });
        if self.kept_attributes {
            for attribute in &attributes.others {
                self.attributes
                    .keys()
                    .append_value(String::from_utf8_lossy(attribute.key));
                append_text(self.attributes.values(), Some(attribute.value));
            }
            // Appending a map entry only fails on mismatched key/value lengths, which the loop above keeps equal.
            let _ = self.attributes.append(true);
        }
    }

    fn finish_context(&mut self) -> Vec<ArrayRef> {
        let mut columns: Vec<ArrayRef> = self.strings[..8].iter_mut().map(FinishSized::finish_sized).collect();
        columns.push(self.registered.finish_sized());
        columns.push(self.strings[8].finish_sized());
        columns
    }

    fn finish_attributes(&mut self) -> ArrayRef {
        self.attributes.finish_sized()
    }
}

/// Rows a table's builders take before they are finished into a batch: DataFusion's batch
/// size, and builders that never grow past it (growing one builder per window copied each
/// column over and over: a fifth of analytics' time at 100k spans/s).
const CHUNK_ROWS: usize = 8192;

/// Why rows could not be added.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("malformed record: {0}")]
    Malformed(#[from] Malformed),
    #[error("could not build Arrow rows: {0}")]
    Arrow(#[from] ArrowError),
}

/// The index of a signal's table in a window's `chunks` and `pending`.
fn table_of(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

/// Rows of one window, accumulating until the window closes.
pub struct WindowBuilder {
    window_start: i64,
    spans: SpanColumns,
    points: PointColumns,
    logs: LogColumns,
    /// Finished batches of `spans`, `metric_points` and `logs`, and rows in their builders.
    chunks: [Vec<RecordBatch>; 3],
    pending: [usize; 3],
    pub rows: usize,
    kept: KeptColumns,
    sampler: TraceSampler,
    /// The names of the registry tags on the records, as the enrich processor writes them.
    tags: Arc<TagNames>,
}

impl WindowBuilder {
    /// A window that builds every column.
    pub fn new(window_start: i64) -> WindowBuilder {
        WindowBuilder::keeping(window_start, KeptColumns::ALL)
    }

    /// A window that builds the columns `kept` keeps (and `window_start`); the others are null.
    pub fn keeping(window_start: i64, kept: KeptColumns) -> WindowBuilder {
        let mut builder = WindowBuilder {
            window_start,
            spans: SpanColumns::new(),
            points: PointColumns::new(),
            logs: LogColumns::new(),
            chunks: Default::default(),
            pending: [0; 3],
            rows: 0,
            kept: KeptColumns::ALL,
            sampler: TraceSampler::ALL,
            tags: Arc::default(),
        };
        builder.keep(kept);
        builder
    }

    /// Reads the registry tags under `tags`' names.
    pub fn tagged(mut self, tags: Arc<TagNames>) -> WindowBuilder {
        self.tags = tags;
        self
    }

    /// This window and the ones it is closed into keep only the spans of the traces `sampler`
    /// keeps; metric points and log records are all kept.
    pub fn sampling(mut self, sampler: TraceSampler) -> WindowBuilder {
        self.sampler = sampler;
        self
    }

    /// Only between windows, when no builder holds rows.
    fn keep(&mut self, kept: KeptColumns) {
        self.kept = kept;
        self.spans.keep(kept);
        self.points.keep(kept);
        self.logs.keep(kept);
    }

    fn sampled_out(&self, span: &[u8]) -> bool {
        self.sampler != TraceSampler::ALL && !self.sampler.keeps(span_trace_id(span))
    }

    pub fn window_start(&self) -> i64 {
        self.window_start
    }

    /// Adds every span, data point or log record of an enriched request, read from its
    /// protobuf bytes. A malformed record is skipped whole (no partial row); the others are
    /// added, and the first problem is returned.
    pub fn add(&mut self, request: &Request) -> Result<(), RowError> {
        let [keep_others] = self.kept.flags(table_of(request.signal()), ["attributes"]);
        let tags = Arc::clone(&self.tags);
        self.add_records(request, RecordAttributes::new(keep_others, &tags))
    }

    /// Counts the rows a record added. A table's builders are finished into a batch as soon
    /// as they hold `CHUNK_ROWS`, within a request: finished after a whole request, they grew
    /// past the room they were given, copying each column (3 % of the conversion of 100-span
    /// requests, more with the batch processor's larger ones).
    fn count(&mut self, table: usize, rows: usize) -> Result<(), ArrowError> {
        self.rows += rows;
        self.pending[table] += rows;
        if self.pending[table] >= CHUNK_ROWS {
            self.finish_chunk(table)?;
        }
        Ok(())
    }

    fn finish_chunk(&mut self, table: usize) -> Result<(), ArrowError> {
        // Every row of a window has its start: one value for the batch rather than one a row.
        let window_start =
            TimestampNanosecondArray::from_value(self.window_start, self.pending[table]).with_timezone("UTC");
        let mut columns: Vec<ArrayRef> = vec![Arc::new(window_start)];
        columns.extend(match table {
            0 => self.spans.finish()?,
            1 => self.points.finish(),
            _ => self.logs.finish()?,
        });
        let batch = self.kept.batch(table, columns)?;
        self.chunks[table].push(batch);
        self.pending[table] = 0;
        Ok(())
    }

    fn add_records<'a>(&mut self, request: &'a Request, mut attributes: RecordAttributes<'a>) -> Result<(), RowError> {
        let mut first_error = None;
        for (part, highest_randomness) in request.parts_with_trace_randomness() {
            // A request none of whose traces is kept is passed over without reading it: its
            // bytes have gone cold since it was received, and reading each span's trace id
            // was a cache miss per span.
            if !self.sampler.keeps_randomness(highest_randomness) {
                continue;
            }
            for f in fields(part) {
                let added = f.and_then(|f| match f.number {
                    field::RESOURCE => {
                        self.add_resource(request.signal(), f.bytes()?, &mut attributes, &mut first_error)
                    }
                    _ => Ok(()),
                });
                if let Err(error) = added {
                    first_error.get_or_insert(error.into());
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// One `Resource{Spans,Metrics,Logs}`: its resource first (wherever it is on the wire),
    /// then the records of each scope.
    fn add_resource<'a>(
        &mut self,
        signal: Signal,
        message: &'a [u8],
        attributes: &mut RecordAttributes<'a>,
        first_error: &mut Option<RowError>,
    ) -> Result<(), Malformed> {
        let table = table_of(signal);
        let mut emitter = Emitter::default();
        for f in fields(message) {
            let f = f?;
            if f.number == field::RESOURCE {
                emitter = Emitter::of(f.bytes()?, self.tags.layer.as_bytes())?;
            }
        }
        for scope in fields(message) {
            let scope = scope?;
            if scope.number != field::SCOPES {
                continue;
            }
            for record in fields(scope.bytes()?) {
                let record = record?;
                if record.number != field::RECORDS {
                    continue;
                }
                let bytes = record.bytes()?;
                let rows = match signal {
                    Signal::Traces if self.sampled_out(bytes) => Ok(0),
                    Signal::Traces => self.spans.append(&emitter, bytes, attributes),
                    Signal::Metrics => self.points.append(&emitter, bytes, attributes.tags),
                    Signal::Logs => self.logs.append(&emitter, bytes, attributes),
                };
                let counted = rows
                    .map_err(RowError::from)
                    .and_then(|rows| Ok(self.count(table, rows)?));
                if let Err(error) = counted {
                    first_error.get_or_insert(error);
                }
            }
        }
        Ok(())
    }

    /// The window's `spans`, `metric_points` and `logs` batches.
    pub fn finish(mut self) -> Result<[Vec<RecordBatch>; 3], ArrowError> {
        self.close(self.window_start, self.kept)
    }

    /// Closes the window, returning its batches, and starts the one at `next_start`, building
    /// the columns `kept` keeps, with the same builders (see `FinishSized`); the next window
    /// starts even when this one cannot be finished.
    pub fn close(&mut self, next_start: i64, kept: KeptColumns) -> Result<[Vec<RecordBatch>; 3], ArrowError> {
        let finished = (0..3).try_for_each(|table| match self.pending[table] {
            0 => Ok(()),
            _ => self.finish_chunk(table),
        });
        self.keep(kept);
        self.window_start = next_start;
        self.rows = 0;
        self.pending = [0; 3];
        let chunks = std::mem::take(&mut self.chunks);
        finished.map(|()| chunks)
    }
}

/// A span's fields that have columns; read whole before anything is appended, so that a
/// malformed span leaves no partial row.
#[derive(Default)]
struct SpanRow<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    parent_span_id: &'a [u8],
    /// Text checked as UTF-8 only when its column is built (see `SpanColumns::append`).
    name: &'a [u8],
    kind: u64,
    start: u64,
    end: u64,
    status_message: &'a [u8],
    status_code: u64,
}

impl<'a> SpanRow<'a> {
    fn read(span: &'a [u8], attributes: &mut RecordAttributes<'a>) -> Result<SpanRow<'a>, Malformed> {
        let mut row = SpanRow::default();
        for f in fields(span) {
            let f = f?;
            match f.number {
                field::SPAN_TRACE_ID => row.trace_id = f.bytes()?,
                field::SPAN_ID => row.span_id = f.bytes()?,
                field::SPAN_PARENT_ID => row.parent_span_id = f.bytes()?,
                field::SPAN_NAME => row.name = f.bytes()?,
                field::SPAN_KIND => row.kind = f.varint()?,
                field::SPAN_START => row.start = f.fixed64()?,
                field::SPAN_END => row.end = f.fixed64()?,
                field::SPAN_ATTRIBUTES => attributes.push(&f, LIFTED_SLOTS)?,
                field::SPAN_STATUS => {
                    for s in fields(f.bytes()?) {
                        let s = s?;
                        match s.number {
                            field::STATUS_MESSAGE => row.status_message = s.bytes()?,
                            field::STATUS_CODE => row.status_code = s.varint()?,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(row)
    }
}

/// A span's trace id, found without reading the rest of the span (it is the first field as
/// every SDK writes it); empty when absent or malformed, which `SpanRow::read` reports.
fn span_trace_id(span: &[u8]) -> &[u8] {
    fields(span)
        .map_while(Result::ok)
        .find(|f| f.number == field::SPAN_TRACE_ID)
        .and_then(|f| f.bytes().ok())
        .unwrap_or_default()
}

struct SpanColumns {
    context: ContextColumns,
    /// `trace_id`, `span_id`, `parent_span_id`.
    ids: [IdColumn; 3],
    /// `name`, `kind`, `status_code`, `status_message`.
    strings: Vec<StringBuilder>,
    times: [TimestampNanosecondBuilder; 2],
    duration: Float64Builder,
    genai_strings: Vec<StringBuilder>,
    ints: Vec<Int64Builder>,
    /// Whether `ids` and `strings`, `times` and `duration`, `genai_strings`, `ints` are built.
    kept_strings: [bool; 7],
    kept_times: [bool; 3],
    kept_genai: [bool; 7],
    kept_ints: [bool; 4],
}

/// The columns of `SpanColumns::ids` and `strings`, `genai_strings` and `ints`, in order.
const SPAN_STRINGS: [&str; 7] = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "status_code",
    "status_message",
];
const SPAN_GENAI_STRINGS: [&str; 7] = [
    "operation",
    "tool_name",
    "model",
    "provider",
    "mcp_method",
    "server_address",
    "error_type",
];
const SPAN_INTS: [&str; 4] = ["input_tokens", "output_tokens", "http_status_code", "grpc_status_code"];

impl SpanColumns {
    fn new() -> SpanColumns {
        SpanColumns {
            context: ContextColumns::new(),
            ids: [IdColumn::new(), IdColumn::new(), IdColumn::new()],
            strings: (0..4).map(|_| StringBuilder::new()).collect(),
            times: [time_builder(), time_builder()],
            duration: Float64Builder::new(),
            genai_strings: (0..7).map(|_| StringBuilder::new()).collect(),
            ints: (0..4).map(|_| Int64Builder::new()).collect(),
            kept_strings: [true; 7],
            kept_times: [true; 3],
            kept_genai: [true; 7],
            kept_ints: [true; 4],
        }
    }

    fn keep(&mut self, kept: KeptColumns) {
        self.context.keep(kept, 0);
        self.kept_strings = kept.flags(0, SPAN_STRINGS);
        self.kept_times = kept.flags(0, ["start_time", "end_time", "duration_ms"]);
        self.kept_genai = kept.flags(0, SPAN_GENAI_STRINGS);
        self.kept_ints = kept.flags(0, SPAN_INTS);
    }

    fn append<'a>(
        &mut self,
        emitter: &Emitter<'_>,
        span: &'a [u8],
        attributes: &mut RecordAttributes<'a>,
    ) -> Result<usize, Malformed> {
        attributes.clear();
        let span = SpanRow::read(span, attributes)?;
        let [
            kept_trace,
            kept_span,
            kept_parent,
            kept_name,
            kept_kind,
            kept_status,
            kept_message,
        ] = self.kept_strings;
        // Checked before anything is appended, so that a malformed span leaves no partial row;
        // a column not built needs no check (it was 3 % of the conversion).
        let name = utf8_if(kept_name, span.name, field::SPAN_NAME)?;
        let status_message = utf8_if(kept_message, span.status_message, field::STATUS_MESSAGE)?;
        self.context.append(emitter, attributes);
        let kind = match span.kind {
            1 => "internal",
            2 => "server",
            3 => "client",
            4 => "producer",
            5 => "consumer",
            _ => "unspecified",
        };
        let status_code = match span.status_code {
            1 => "ok",
            2 => "error",
            _ => "unset",
        };
        let [trace_id, span_id, parent] = &mut self.ids;
        let [name_column, kind_column, status_column, message] = &mut self.strings[..] else {
            unreachable!("four string columns")
        };
        append_if(kept_trace, trace_id, |b| b.append(span.trace_id));
        append_if(kept_span, span_id, |b| b.append(span.span_id));
        append_if(kept_parent, parent, |b| b.append(span.parent_span_id));
        append_if(kept_name, name_column, |b| b.append_value(name));
        append_if(kept_kind, kind_column, |b| b.append_value(kind));
        append_if(kept_status, status_column, |b| b.append_value(status_code));
        append_if(kept_message, message, |b| append_non_empty(b, status_message));
        let [kept_start, kept_end, kept_duration] = self.kept_times;
        append_if(kept_start, &mut self.times[0], |b| b.append_value(span.start as i64));
        append_if(kept_end, &mut self.times[1], |b| b.append_value(span.end as i64));
        let duration_ms = span.end.saturating_sub(span.start) as f64 / 1e6;
        append_if(kept_duration, &mut self.duration, |b| b.append_value(duration_ms));
        // Slots 7..14 are the GenAI/MCP strings, 14..18 the integers (see `lifted_slot`).
        let lifted = &attributes.lifted[CONTEXT_SLOTS..];
        for ((builder, value), kept) in self.genai_strings.iter_mut().zip(&lifted[..7]).zip(self.kept_genai) {
            append_if(kept, builder, |b| append_text(b, *value));
        }
        for ((builder, value), kept) in self.ints.iter_mut().zip(&lifted[7..]).zip(self.kept_ints) {
            append_if(kept, builder, |b| append_int(b, *value));
        }
        Ok(1)
    }

    /// The columns of a batch, in the schema's order.
    fn finish(&mut self) -> Result<Vec<ArrayRef>, ArrowError> {
        let mut columns = self
            .ids
            .iter_mut()
            .map(IdColumn::finish)
            .collect::<Result<Vec<_>, _>>()?;
        columns.extend(self.strings[..2].iter_mut().map(FinishSized::finish_sized));
        for time in &mut self.times {
            columns.push(time.finish_sized());
        }
        columns.push(self.duration.finish_sized());
        columns.extend(self.strings[2..].iter_mut().map(FinishSized::finish_sized));
        columns.extend(self.context.finish_context());
        let mut g = self.genai_strings.iter_mut().map(FinishSized::finish_sized);
        let mut i = self.ints.iter_mut().map(FinishSized::finish_sized);
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
        Ok(columns)
    }
}

/// The kinds of metric data, by their field number in `Metric`, and the field number of
/// attributes in their data points.
const METRIC_DATA: [(u32, &str, u32); 5] = [
    (5, "gauge", 7),
    (7, "sum", 7),
    (9, "histogram", 9),
    (10, "exponential_histogram", 1),
    (11, "summary", 7),
];

/// One metric data point, whatever its type.
#[derive(Default)]
struct PointRow {
    time: u64,
    /// Gauge and sum values.
    value: Option<f64>,
    /// Histogram and summary counts and sums.
    count: Option<i64>,
    sum: Option<f64>,
}

impl PointRow {
    fn read<'a>(
        point: &'a [u8],
        kind: &str,
        attributes_field: u32,
        attributes: &mut RecordAttributes<'a>,
    ) -> Result<PointRow, Malformed> {
        let number = matches!(kind, "gauge" | "sum");
        let mut row = PointRow::default();
        for f in fields(point) {
            let f = f?;
            match f.number {
                n if n == attributes_field => attributes.push(&f, CONTEXT_SLOTS)?,
                field::POINT_TIME => row.time = f.fixed64()?,
                field::NUMBER_AS_DOUBLE if number => row.value = Some(f64::from_bits(f.fixed64()?)),
                field::NUMBER_AS_INT if number => row.value = Some(f.fixed64()? as i64 as f64),
                field::POINT_COUNT if !number => row.count = Some(f.fixed64()? as i64),
                field::POINT_SUM if !number => row.sum = Some(f64::from_bits(f.fixed64()?)),
                _ => {}
            }
        }
        // A summary's sum is not optional: absent on the wire means zero.
        if kind == "summary" {
            row.sum = row.sum.or(Some(0.0));
        }
        Ok(row)
    }
}

struct PointColumns {
    context: ContextColumns,
    time: TimestampNanosecondBuilder,
    strings: Vec<StringBuilder>,
    value: Float64Builder,
    count: Int64Builder,
    sum: Float64Builder,
    /// Whether each of the columns above is built, in `POINT_COLUMNS`' order.
    kept: [bool; 7],
}

const POINT_COLUMNS: [&str; 7] = ["time", "metric_name", "metric_type", "unit", "value", "count", "sum"];

impl PointColumns {
    fn new() -> PointColumns {
        PointColumns {
            context: ContextColumns::new(),
            time: time_builder(),
            strings: (0..3).map(|_| StringBuilder::new()).collect(),
            value: Float64Builder::new(),
            count: Int64Builder::new(),
            sum: Float64Builder::new(),
            kept: [true; 7],
        }
    }

    fn keep(&mut self, kept: KeptColumns) {
        self.context.keep(kept, 1);
        self.kept = kept.flags(1, POINT_COLUMNS);
    }

    /// Appends each data point of a `Metric`; returns how many. A malformed metric adds none.
    fn append(&mut self, emitter: &Emitter<'_>, metric: &[u8], tags: &TagNames) -> Result<usize, Malformed> {
        let (mut name, mut unit, mut data) = ("", "", None);
        for f in fields(metric) {
            let f = f?;
            match f.number {
                field::METRIC_NAME => name = f.str()?,
                field::METRIC_UNIT => unit = f.str()?,
                n => {
                    if let Some(kind) = METRIC_DATA.iter().find(|(number, _, _)| *number == n) {
                        data = Some((kind, f.bytes()?));
                    }
                }
            }
        }
        let Some((&(_, kind, attributes_field), data)) = data else {
            return Ok(0);
        };
        let mut rows = Vec::new();
        for f in fields(data) {
            let f = f?;
            if f.number == field::DATA_POINTS {
                let mut point_attributes = RecordAttributes::new(self.context.kept_attributes, tags);
                let row = PointRow::read(f.bytes()?, kind, attributes_field, &mut point_attributes)?;
                rows.push((row, point_attributes));
            }
        }
        let [
            kept_time,
            kept_name,
            kept_kind,
            kept_unit,
            kept_value,
            kept_count,
            kept_sum,
        ] = self.kept;
        for (row, point_attributes) in &rows {
            self.context.append(emitter, point_attributes);
            append_if(kept_time, &mut self.time, |b| b.append_value(row.time as i64));
            append_if(kept_name, &mut self.strings[0], |b| b.append_value(name));
            append_if(kept_kind, &mut self.strings[1], |b| b.append_value(kind));
            append_if(kept_unit, &mut self.strings[2], |b| append_non_empty(b, unit));
            append_if(kept_value, &mut self.value, |b| b.append_option(row.value));
            append_if(kept_count, &mut self.count, |b| b.append_option(row.count));
            append_if(kept_sum, &mut self.sum, |b| b.append_option(row.sum));
        }
        Ok(rows.len())
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        let mut columns = vec![self.time.finish_sized()];
        columns.extend(self.strings.iter_mut().map(FinishSized::finish_sized));
        columns.push(self.value.finish_sized());
        columns.push(self.count.finish_sized());
        columns.push(self.sum.finish_sized());
        columns.extend(self.context.finish_context());
        columns.push(self.context.finish_attributes());
        columns
    }
}

/// A log record's fields that have columns.
#[derive(Default)]
struct LogRow<'a> {
    time: u64,
    observed_time: u64,
    severity_number: u64,
    severity_text: &'a str,
    body: Option<&'a [u8]>,
    event_name: &'a str,
    trace_id: &'a [u8],
    span_id: &'a [u8],
}

impl<'a> LogRow<'a> {
    fn read(record: &'a [u8], attributes: &mut RecordAttributes<'a>) -> Result<LogRow<'a>, Malformed> {
        let mut row = LogRow::default();
        for f in fields(record) {
            let f = f?;
            match f.number {
                field::LOG_TIME => row.time = f.fixed64()?,
                field::LOG_OBSERVED_TIME => row.observed_time = f.fixed64()?,
                field::LOG_SEVERITY_NUMBER => row.severity_number = f.varint()?,
                field::LOG_SEVERITY_TEXT => row.severity_text = f.str()?,
                field::LOG_BODY => row.body = Some(f.bytes()?),
                field::LOG_ATTRIBUTES => attributes.push(&f, CONTEXT_SLOTS)?,
                field::LOG_TRACE_ID => row.trace_id = f.bytes()?,
                field::LOG_SPAN_ID => row.span_id = f.bytes()?,
                field::LOG_EVENT_NAME => row.event_name = f.str()?,
                _ => {}
            }
        }
        Ok(row)
    }
}

struct LogColumns {
    context: ContextColumns,
    time: TimestampNanosecondBuilder,
    severity: Int64Builder,
    /// `severity_text`, `body`, `event_name`.
    strings: Vec<StringBuilder>,
    /// `trace_id`, `span_id`.
    ids: [IdColumn; 2],
    /// Whether each of the columns above is built, in `LOG_COLUMNS`' order.
    kept: [bool; 7],
}

const LOG_COLUMNS: [&str; 7] = [
    "time",
    "severity_number",
    "severity_text",
    "body",
    "event_name",
    "trace_id",
    "span_id",
];

impl LogColumns {
    fn new() -> LogColumns {
        LogColumns {
            context: ContextColumns::new(),
            time: time_builder(),
            severity: Int64Builder::new(),
            strings: (0..3).map(|_| StringBuilder::new()).collect(),
            ids: [IdColumn::new(), IdColumn::new()],
            kept: [true; 7],
        }
    }

    fn keep(&mut self, kept: KeptColumns) {
        self.context.keep(kept, 2);
        self.kept = kept.flags(2, LOG_COLUMNS);
    }

    /// Appends a log record, except fleetpipe's own anomaly records; returns how many.
    fn append<'a>(
        &mut self,
        emitter: &Emitter<'_>,
        record: &'a [u8],
        attributes: &mut RecordAttributes<'a>,
    ) -> Result<usize, Malformed> {
        attributes.clear();
        let record = LogRow::read(record, attributes)?;
        if record.event_name == super::signal::ANOMALY_EVENT {
            return Ok(0);
        }
        self.context.append(emitter, attributes);
        let time = if record.time > 0 {
            record.time
        } else {
            record.observed_time
        };
        let [
            kept_time,
            kept_severity,
            kept_text,
            kept_body,
            kept_event,
            kept_trace,
            kept_span,
        ] = self.kept;
        append_if(kept_time, &mut self.time, |b| b.append_value(time as i64));
        append_if(kept_severity, &mut self.severity, |b| {
            b.append_value(record.severity_number as i64)
        });
        let [text, body, event] = &mut self.strings[..] else {
            unreachable!("three string columns")
        };
        let [trace_id, span_id] = &mut self.ids;
        append_if(kept_text, text, |b| append_non_empty(b, record.severity_text));
        append_if(kept_body, body, |b| append_text(b, record.body));
        append_if(kept_event, event, |b| append_non_empty(b, record.event_name));
        append_if(kept_trace, trace_id, |b| b.append(record.trace_id));
        append_if(kept_span, span_id, |b| b.append(record.span_id));
        Ok(1)
    }

    fn finish(&mut self) -> Result<Vec<ArrayRef>, ArrowError> {
        let mut columns = vec![self.time.finish_sized(), self.severity.finish_sized()];
        columns.extend(self.strings.iter_mut().map(FinishSized::finish_sized));
        columns.extend(
            self.ids
                .iter_mut()
                .map(IdColumn::finish)
                .collect::<Result<Vec<_>, _>>()?,
        );
        columns.extend(self.context.finish_context());
        columns.push(self.context.finish_attributes());
        Ok(columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::Payload;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Float64Type, Int64Type, TimestampNanosecondType};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValue};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics, Summary, SummaryDataPoint, metric::Data, number_data_point,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn string(key: &str, value: &str) -> KeyValue {
        kv(key, Value::StringValue(value.into()))
    }

    fn resource() -> Option<Resource> {
        Some(Resource {
            attributes: vec![
                string("service.name", "triage-svc"),
                string("operating_model.layer", "execution"),
            ],
            ..Default::default()
        })
    }

    /// A traces request of `spans` from the `resource()` service.
    fn traces(spans: Vec<Span>) -> Payload {
        Payload::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: resource(),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    fn window(payload: Payload) -> [RecordBatch; 3] {
        let mut builder = WindowBuilder::new(7);
        builder.add(&Request::from_payload(&payload)).expect("well-formed");
        builder.finish().expect("batches").map(|chunks| match &chunks[..] {
            [] => RecordBatch::new_empty(Arc::clone(&SPANS)),
            [batch] => batch.clone(),
            more => panic!("{} chunks for one request", more.len()),
        })
    }

    fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
        let array = batch.column_by_name(column).expect(column).as_string::<i32>();
        array.iter().map(|v| v.map(str::to_owned)).collect()
    }

    fn ints(batch: &RecordBatch, column: &str) -> Vec<Option<i64>> {
        let array = batch.column_by_name(column).expect(column).as_primitive::<Int64Type>();
        array.iter().collect()
    }

    fn floats(batch: &RecordBatch, column: &str) -> Vec<Option<f64>> {
        let array = batch
            .column_by_name(column)
            .expect(column)
            .as_primitive::<Float64Type>();
        array.iter().collect()
    }

    /// The `attributes` map of each row, as `key=value` texts.
    fn attribute_maps(batch: &RecordBatch) -> Vec<Vec<String>> {
        let maps = batch.column_by_name("attributes").expect("attributes").as_map();
        (0..maps.len())
            .map(|row| {
                let entries = maps.value(row);
                let keys = entries.column(0).as_string::<i32>();
                let values = entries.column(1).as_string::<i32>();
                (0..entries.len())
                    .map(|i| format!("{}={}", keys.value(i), values.value(i)))
                    .collect()
            })
            .collect()
    }

    /// Guarantees: a span's fields, lifted attributes (of any value type) and the rest of its
    /// attributes arrive in their columns as OTLP/JSON would write them.
    #[test]
    fn span_rows_read_from_the_wire() {
        let span = Span {
            trace_id: vec![0xab; 16],
            span_id: vec![0x01; 8],
            name: "execute_tool jira_search".into(),
            kind: 3,
            start_time_unix_nano: 1_000_000,
            end_time_unix_nano: 3_500_000,
            attributes: vec![
                string("gen_ai.tool.name", "jira_search"),
                string("integration.id", "work-tracking"),
                kv("integration.registered", Value::BoolValue(true)),
                kv("gen_ai.usage.input_tokens", Value::IntValue(1200)),
                kv("http.response.status_code", Value::StringValue("429".into())),
                kv("retries", Value::IntValue(-2)),
                kv("ratio", Value::DoubleValue(0.5)),
                kv("blob", Value::BytesValue(vec![1, 255])),
                kv(
                    "tags",
                    Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(Value::StringValue("a".into())),
                        }],
                    }),
                ),
            ],
            status: Some(Status {
                message: "tool failed".into(),
                code: 2,
            }),
            ..Default::default()
        };
        let [spans, _, _] = window(traces(vec![span]));
        assert_eq!(spans.num_rows(), 1);
        let one = |s: &str| Some(s.to_owned());
        assert_eq!(strings(&spans, "trace_id"), [one(&"ab".repeat(16))]);
        assert_eq!(strings(&spans, "span_id"), [one("0101010101010101")]);
        assert_eq!(strings(&spans, "parent_span_id"), [None]);
        assert_eq!(strings(&spans, "kind"), [one("client")]);
        assert_eq!(strings(&spans, "status_code"), [one("error")]);
        assert_eq!(strings(&spans, "status_message"), [one("tool failed")]);
        assert_eq!(floats(&spans, "duration_ms"), [Some(2.5)]);
        let start = spans
            .column_by_name("start_time")
            .expect("start")
            .as_primitive::<TimestampNanosecondType>();
        assert_eq!(start.value(0), 1_000_000);
        assert_eq!(
            strings(&spans, "agent"),
            [one("triage-svc")],
            "the service name stands for the agent"
        );
        assert_eq!(strings(&spans, "layer"), [one("execution")]);
        assert_eq!(strings(&spans, "tool_name"), [one("jira_search")]);
        assert_eq!(strings(&spans, "integration_id"), [one("work-tracking")]);
        assert_eq!(strings(&spans, "integration_name"), [None]);
        let registered = spans
            .column_by_name("integration_registered")
            .expect("registered")
            .as_boolean();
        assert!(registered.value(0));
        assert_eq!(ints(&spans, "input_tokens"), [Some(1200)]);
        assert_eq!(ints(&spans, "http_status_code"), [Some(429)], "numeric strings count");
        assert_eq!(ints(&spans, "output_tokens"), [None]);
        assert_eq!(
            attribute_maps(&spans),
            [vec!["retries=-2", "ratio=0.5", "blob=01ff", "tags=[a]"]],
            "lifted keys are left out of the map"
        );
    }

    /// Guarantees: every kind of metric data point becomes a row with its value, or count and
    /// sum, and lifted integration attributes.
    #[test]
    fn metric_points_of_every_kind() {
        let number = |value| NumberDataPoint {
            attributes: vec![string("integration.id", "work-tracking"), string("route", "/a")],
            time_unix_nano: 5,
            value: Some(value),
            ..Default::default()
        };
        let metric = |name: &str, data| Metric {
            name: name.into(),
            unit: "1".into(),
            data: Some(data),
            ..Default::default()
        };
        let metrics = vec![
            metric(
                "gauge",
                Data::Gauge(Gauge {
                    data_points: vec![number(number_data_point::Value::AsDouble(1.5))],
                }),
            ),
            metric(
                "sum",
                Data::Sum(opentelemetry_proto::tonic::metrics::v1::Sum {
                    data_points: vec![number(number_data_point::Value::AsInt(-3))],
                    ..Default::default()
                }),
            ),
            metric(
                "histogram",
                Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        count: 4,
                        sum: Some(10.0),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            ),
            metric(
                "exponential",
                Data::ExponentialHistogram(opentelemetry_proto::tonic::metrics::v1::ExponentialHistogram {
                    data_points: vec![ExponentialHistogramDataPoint {
                        count: 6,
                        sum: None,
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            ),
            metric(
                "summary",
                Data::Summary(Summary {
                    data_points: vec![SummaryDataPoint {
                        count: 2,
                        sum: 0.0,
                        ..Default::default()
                    }],
                }),
            ),
        ];
        let [_, points, _] = window(Payload::Metrics(ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: resource(),
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }));
        let some = |s: &[&str]| s.iter().map(|v| Some((*v).to_owned())).collect::<Vec<_>>();
        assert_eq!(
            strings(&points, "metric_type"),
            some(&["gauge", "sum", "histogram", "exponential_histogram", "summary"])
        );
        assert_eq!(floats(&points, "value"), [Some(1.5), Some(-3.0), None, None, None]);
        assert_eq!(ints(&points, "count"), [None, None, Some(4), Some(6), Some(2)]);
        assert_eq!(floats(&points, "sum"), [None, None, Some(10.0), None, Some(0.0)]);
        assert_eq!(strings(&points, "unit"), some(&["1"; 5]));
        assert_eq!(
            strings(&points, "integration_id"),
            [
                Some("work-tracking".to_owned()),
                Some("work-tracking".to_owned()),
                None,
                None,
                None
            ]
        );
        assert_eq!(attribute_maps(&points)[0], ["route=/a"]);
    }

    /// Guarantees: log records keep their time (observed time when unset), severity, body and
    /// ids; fleetpipe's own anomaly records are left out.
    #[test]
    fn log_rows_leave_out_anomaly_records() {
        let records = vec![
            LogRecord {
                observed_time_unix_nano: 9,
                severity_number: 17,
                severity_text: "ERROR".into(),
                body: Some(AnyValue {
                    value: Some(Value::StringValue("tool failed".into())),
                }),
                trace_id: vec![0x0f; 16],
                attributes: vec![string("integration.target", "pastebin.example.com")],
                ..Default::default()
            },
            LogRecord {
                event_name: super::super::signal::ANOMALY_EVENT.into(),
                ..Default::default()
            },
        ];
        let [_, _, logs] = window(Payload::Logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource(),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }));
        assert_eq!(logs.num_rows(), 1);
        let time = logs
            .column_by_name("time")
            .expect("time")
            .as_primitive::<TimestampNanosecondType>();
        assert_eq!(time.value(0), 9);
        assert_eq!(ints(&logs, "severity_number"), [Some(17)]);
        assert_eq!(strings(&logs, "body"), [Some("tool failed".to_owned())]);
        assert_eq!(strings(&logs, "trace_id"), [Some("0f".repeat(16))]);
        assert_eq!(strings(&logs, "span_id"), [None]);
        assert_eq!(
            strings(&logs, "integration_target"),
            [Some("pastebin.example.com".to_owned())]
        );
    }

    /// Guarantees: hex is lowercase, two digits a byte, at any length, written as text and
    /// into an id column (where an empty id is null).
    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        let hex = |bytes: &[u8]| {
            let mut out = String::new();
            write_hex(&mut out, bytes).expect("writes");
            out
        };
        let every_byte: Vec<u8> = (0..=255).collect();
        let formatted: String = every_byte.iter().map(|b| format!("{b:02x}")).collect();
        let cases: [(&[u8], &str); 4] = [
            (&[0x00, 0xab, 0x0f, 0xf0], "00ab0ff0"),
            (&[0xc3; 40], &"c3".repeat(40)),
            (&every_byte, &formatted),
            (&[], ""),
        ];
        let mut ids = IdColumn::new();
        for (bytes, expected) in cases {
            assert_eq!(hex(bytes), expected);
            ids.append(bytes);
        }
        let column = ids.finish().expect("hex is UTF-8");
        let column: Vec<Option<&str>> = column.as_string::<i32>().iter().collect();
        let expected: Vec<Option<&str>> = cases
            .iter()
            .map(|(_, text)| Some(*text).filter(|t| !t.is_empty()))
            .collect();
        assert_eq!(column, expected);
    }

    /// Guarantees: a span whose name is not UTF-8 is skipped and reported when the `name`
    /// column is built; the spans around it are kept. A window that does not build `name`
    /// keeps the span.
    #[test]
    fn malformed_span_is_skipped_whole() {
        let span = |name: &str| Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: name.into(),
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span("first"), span("BAD!"), span("last")],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let mut bytes = Payload::Traces(request).encode_protobuf().to_vec();
        let at = bytes.windows(4).position(|w| w == b"BAD!").expect("name");
        bytes[at] = 0xff;
        let request = Request::from_protobuf(Signal::Traces, bytes.into(), None)
            .expect("framing is valid")
            .0;
        let mut builder = WindowBuilder::new(0);
        assert!(matches!(
            builder.add(&request),
            Err(RowError::Malformed(Malformed::Utf8 { field: 5 }))
        ));
        let [spans, _, _] = builder.finish().expect("batches");
        let spans = &spans[0];
        assert_eq!(
            strings(spans, "name"),
            [Some("first".to_owned()), Some("last".to_owned())]
        );

        let mut kept = KeptColumns::WINDOW_START;
        kept.keep("spans", Some(&[SPANS.index_of("span_id").expect("span column")]));
        let mut builder = WindowBuilder::keeping(0, kept);
        builder.add(&request).expect("the name is not read");
        let [spans, _, _] = builder.finish().expect("batches");
        assert_eq!(
            strings(&spans[0], "span_id"),
            vec![Some("0202020202020202".to_owned()); 3]
        );
    }

    /// Guarantees: a window of more rows than a batch holds is split into full batches and a
    /// last partial one, and rows in later batches (built by builders renewed at each batch)
    /// keep every column, nulls and map entries included.
    #[test]
    fn window_larger_than_a_batch_is_split_without_losing_rows() {
        let span = |n: usize| Span {
            trace_id: vec![1; 16],
            span_id: (n as u64).to_be_bytes().to_vec(),
            name: format!("span {n}"),
            attributes: if n.is_multiple_of(2) {
                vec![
                    string("gen_ai.tool.name", "jira_search"),
                    string("ticket", &n.to_string()),
                ]
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        let total = 2 * CHUNK_ROWS + 3;
        let spans: Vec<Span> = (0..total).map(span).collect();
        let mut builder = WindowBuilder::new(0);
        for part in spans.chunks(1000) {
            builder
                .add(&Request::from_payload(&traces(part.to_vec())))
                .expect("well-formed");
        }
        let [batches, _, _] = builder.finish().expect("batches");
        let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes.iter().sum::<usize>(), total);
        assert!(sizes[..sizes.len() - 1].iter().all(|rows| *rows >= CHUNK_ROWS));
        let last = batches.last().expect("a batch");
        let rows = last.num_rows();
        let first_row = total - rows;
        let expected = |n: usize| Some(format!("span {n}"));
        assert_eq!(
            strings(last, "name"),
            (first_row..total).map(expected).collect::<Vec<_>>()
        );
        let tools: Vec<Option<String>> = (first_row..total)
            .map(|n| (n.is_multiple_of(2)).then(|| "jira_search".to_owned()))
            .collect();
        assert_eq!(strings(last, "tool_name"), tools);
        let maps: Vec<Vec<String>> = (first_row..total)
            .map(|n| {
                if n.is_multiple_of(2) {
                    vec![format!("ticket={n}")]
                } else {
                    Vec::new()
                }
            })
            .collect();
        assert_eq!(attribute_maps(last), maps);
        assert_eq!(strings(last, "service_name"), vec![Some("triage-svc".to_owned()); rows]);
    }

    /// Guarantees: a sampling window keeps every span of the traces the sampler keeps and no
    /// span of the others, in the order they came, and goes on sampling after it is closed
    /// into the next window; a span without a trace id is kept.
    #[test]
    fn sampling_keeps_whole_traces() {
        let sampler = TraceSampler::percentage(30.0);
        let trace_id = |trace: u64| {
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&trace.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
            id
        };
        // 200 traces of 3 spans, interleaved as a batch of concurrent traces arrives.
        let spans: Vec<Span> = (0..3u64)
            .flat_map(|step| (0..200u64).map(move |trace| (trace, step)))
            .map(|(trace, step)| Span {
                trace_id: trace_id(trace).to_vec(),
                name: format!("{trace}/{step}"),
                ..Default::default()
            })
            .chain([Span {
                name: "no trace id".into(),
                ..Default::default()
            }])
            .collect();
        let expected: Vec<Option<String>> = spans
            .iter()
            .filter(|span| sampler.keeps(&span.trace_id))
            .map(|span| Some(span.name.clone()))
            .collect();
        let kept_traces = (0..200).filter(|t| sampler.keeps(&trace_id(*t))).count();
        assert!(
            (40..=80).contains(&kept_traces),
            "{kept_traces} of 200 traces kept at 30%"
        );
        assert_eq!(expected.len(), 3 * kept_traces + 1);

        let request = Request::from_payload(&traces(spans));
        let mut builder = WindowBuilder::new(0).sampling(sampler);
        builder.add(&request).expect("well-formed");
        let [first, _, _] = builder.close(10, KeptColumns::ALL).expect("batches");
        builder.add(&request).expect("well-formed");
        let [second, _, _] = builder.finish().expect("batches");
        for batches in [first, second] {
            assert_eq!(strings(&batches[0], "name"), expected);
        }
    }

    /// Guarantees: a batch of requests of one trace each, and one of two traces, gives the
    /// rows of exactly the kept traces when requests whose traces are all left out are passed
    /// over unread.
    #[test]
    fn requests_of_left_out_traces_are_passed_over() {
        let sampler = TraceSampler::percentage(30.0);
        let trace_id = |trace: u64| [[0u8; 8], trace.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes()].concat();
        let span = |trace: u64, step: u64| Span {
            trace_id: trace_id(trace),
            span_id: vec![1; 8],
            name: format!("{trace}/{step}"),
            ..Default::default()
        };
        let request_of = |traces_in_request: &[u64]| {
            let spans = (0..2).flat_map(|step| traces_in_request.iter().map(move |&trace| span(trace, step)));
            let bytes = traces(spans.collect()).encode_protobuf();
            Request::from_protobuf(Signal::Traces, bytes, None).expect("valid").0
        };
        let kept = |trace: &u64| sampler.keeps(&trace_id(*trace));
        let (one_kept, one_left_out) = (
            (0..).find(kept).expect("a kept trace"),
            (0..).find(|t| !kept(t)).expect("a left-out trace"),
        );
        let requests: Vec<Vec<u64>> = std::iter::once(vec![one_left_out, one_kept])
            .chain((100..160).map(|trace| vec![trace]))
            .collect();
        let mut batch = request_of(&requests[0]);
        for traces_in_request in &requests[1..] {
            batch.merge(request_of(traces_in_request));
        }
        let expected: Vec<Option<String>> = requests
            .iter()
            .flat_map(|traces| (0..2).flat_map(move |step| traces.iter().map(move |&trace| (trace, step))))
            .filter(|(trace, _)| kept(trace))
            .map(|(trace, step)| Some(format!("{trace}/{step}")))
            .collect();
        let kept_requests = (100..160).filter(kept).count();
        assert!(
            (5..55).contains(&kept_requests),
            "{kept_requests} of 60 one-trace requests kept"
        );

        let mut builder = WindowBuilder::new(0).sampling(sampler);
        builder.add(&batch).expect("well-formed");
        let [spans, _, _] = builder.finish().expect("batches");
        assert_eq!(strings(&spans[0], "name"), expected);
    }

    /// Guarantees: closing a window hands over exactly its rows, and the builder goes on
    /// with the next window: its rows carry the new `window_start` and none of the old ones.
    #[test]
    fn closing_a_window_starts_the_next() {
        let request = |names: &[&str]| {
            let spans = names
                .iter()
                .map(|name| Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: (*name).into(),
                    ..Default::default()
                })
                .collect();
            Request::from_payload(&traces(spans))
        };
        let starts = |batch: &RecordBatch| -> Vec<i64> {
            let column = batch.column_by_name("window_start").expect("window_start");
            column.as_primitive::<TimestampNanosecondType>().values().to_vec()
        };
        let mut builder = WindowBuilder::new(10);
        builder.add(&request(&["a", "b"])).expect("well-formed");
        let [first, _, _] = builder.close(20, KeptColumns::ALL).expect("batches");
        assert_eq!((builder.window_start(), builder.rows), (20, 0));
        builder.add(&request(&["c"])).expect("well-formed");
        let [second, _, _] = builder.finish().expect("batches");
        assert_eq!(strings(&first[0], "name"), [Some("a".to_owned()), Some("b".to_owned())]);
        assert_eq!(starts(&first[0]), [10, 10]);
        assert_eq!(second.len(), 1);
        assert_eq!(strings(&second[0], "name"), [Some("c".to_owned())]);
        assert_eq!(starts(&second[0]), [20]);
    }

    /// Guarantees: a window keeping some columns builds exactly those and `window_start`; the
    /// others are named by `left_out`; the next window builds the columns `close` is given.
    #[test]
    fn window_builds_only_the_kept_columns() {
        let position = |name: &str| SPANS.index_of(name).expect("span column");
        let mut kept = KeptColumns::WINDOW_START;
        kept.keep("spans", Some(&[position("tool_name"), position("layer")]));
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "call".into(),
            attributes: vec![string("gen_ai.tool.name", "jira_search"), string("ticket", "7")],
            ..Default::default()
        };
        let request = Request::from_payload(&traces(vec![span.clone(), span]));
        let mut builder = WindowBuilder::keeping(5, kept);
        builder.add(&request).expect("well-formed");
        let [pruned, _, _] = builder.close(6, KeptColumns::ALL).expect("batches");
        let batch = &pruned[0];
        let names: Vec<&str> = batch.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["window_start", "layer", "tool_name"]);
        assert_eq!(strings(batch, "tool_name"), vec![Some("jira_search".to_owned()); 2]);
        assert_eq!(strings(batch, "layer"), vec![Some("execution".to_owned()); 2]);
        assert_eq!(
            kept.left_out("spans", Some(&[position("name"), position("tool_name")])),
            ["name"]
        );
        assert!(kept.left_out("integrations", None).is_empty());
        builder.add(&request).expect("well-formed");
        let [all, _, _] = builder.finish().expect("batches");
        assert_eq!(strings(&all[0], "name"), vec![Some("call".to_owned()); 2]);
        assert_eq!(attribute_maps(&all[0]), vec![vec!["ticket=7".to_owned()]; 2]);
    }

    /// Guarantees: each lifted key finds its own slot, and a key one byte off, wherever that
    /// byte is, finds none.
    #[test]
    fn lifted_keys_find_their_slots() {
        const LIFTED_KEYS: [&[u8]; LIFTED_SLOTS] = [
            b"integration.id",
            b"integration.name",
            b"integration.category",
            b"integration.kind",
            b"integration.connection",
            b"integration.registered",
            b"integration.target",
            b"gen_ai.operation.name",
            b"gen_ai.tool.name",
            b"gen_ai.request.model",
            b"gen_ai.provider.name",
            b"mcp.method.name",
            b"server.address",
            b"error.type",
            b"gen_ai.usage.input_tokens",
            b"gen_ai.usage.output_tokens",
            b"http.response.status_code",
            b"rpc.grpc.status_code",
        ];
        let tags = TagNames::default();
        let lifted_slot = |key: &[u8]| lifted_slot(key).or_else(|| tags.tag(key).map(tag_slot));
        for (slot, key) in LIFTED_KEYS.iter().enumerate() {
            assert_eq!(lifted_slot(key), Some(slot), "{}", String::from_utf8_lossy(key));
            for at in 0..key.len() {
                let mut near = key.to_vec();
                near[at] ^= 0x20;
                assert_eq!(lifted_slot(&near), None, "{}", String::from_utf8_lossy(&near));
            }
        }
        for other in [
            &b""[..],
            b"e",
            b"service.name",
            b"gen_ai.agent.name",
            b"integration.idd",
        ] {
            assert_eq!(lifted_slot(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    /// Guarantees: every record table fits the 64-bit column mask.
    #[test]
    fn record_tables_fit_the_column_mask() {
        for (index, table) in RECORD_TABLES.iter().enumerate() {
            assert!(record_schema(index).fields().len() <= 64, "{table}");
        }
    }
}
