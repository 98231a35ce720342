//! Enriched OTLP records as Arrow rows: the tables' schemas (`spans`, `metric_points`,
//! `logs`, and analytics' `integrations`, `history`, `windows`), the builders that read rows
//! straight from a request's protobuf bytes, and trace sampling. Analytics' windows and the
//! archive's Parquet files share them: one definition of each table.
//!
//! Schemas are stable: detectors, report queries and ad-hoc queries are written against
//! them, and `fleetpipe query --schema` prints them.

mod attributes;
mod builder;
mod builders;
mod logs;
mod points;
pub mod sampling;
mod spans;
#[cfg(test)]
mod tests;

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;

pub use builder::{RowError, WindowBuilder};

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
            Field::new("response_model", DataType::Utf8, true),
            Field::new("cache_read_tokens", DataType::Int64, true),
            Field::new("cache_write_tokens", DataType::Int64, true),
            Field::new("reasoning_tokens", DataType::Int64, true),
            Field::new("conversation_id", DataType::Utf8, true),
            Field::new("agent_id", DataType::Utf8, true),
            Field::new("agent_name", DataType::Utf8, true),
            Field::new("agent_version", DataType::Utf8, true),
            Field::new("genai_spellings", DataType::Utf8, true),
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

    /// Whether the column `name` of `table` is built.
    fn keeps(self, table: usize, name: &str) -> bool {
        let position = record_schema(table)
            .index_of(name)
            .expect("column of the table's schema");
        self.has(table, position)
    }

    /// A batch of `table` of `window_start` and the kept ones of `columns`, each put at its
    /// place in the schema (those left out come from builders never appended to). Windows
    /// hold no null columns: a query reading one gets nulls made when it scans (see
    /// `window::widen`).
    fn batch(
        self,
        table: usize,
        window_start: ArrayRef,
        columns: Vec<builders::Named>,
    ) -> Result<RecordBatch, ArrowError> {
        let schema = record_schema(table);
        let mut kept = vec![(0, window_start)];
        for (name, column) in columns {
            let position = schema.index_of(name)?;
            if self.has(table, position) {
                kept.push((position, column));
            }
        }
        kept.sort_unstable_by_key(|(position, _)| *position);
        let positions: Vec<usize> = kept.iter().map(|(position, _)| *position).collect();
        let projected = schema.project(&positions)?;
        RecordBatch::try_new(
            Arc::new(projected),
            kept.into_iter().map(|(_, column)| column).collect(),
        )
    }
}
