//! The parts of the OTLP messages (opentelemetry-proto v1.10.0, in `proto/`) that the data path
//! walks: from the export request down to the records and their attributes. Fields not named
//! here (events, links, scopes, exemplars, …) are carried as they are.

use super::RecordKind;
use crate::otlp::Signal;

/// What a message is to the walk.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    /// Only holds the levels below.
    Container,
    /// `ResourceSpans`, `ResourceMetrics`, `ResourceLogs`: holds a resource, which is added
    /// when the visitor tags a request that carries none.
    HoldsResource,
    Resource,
    Record(RecordKind),
}

pub struct Level {
    /// Field number, field name (for error paths) and level of each message field walked into.
    pub children: &'static [(u32, &'static str, &'static Level)],
    pub role: Role,
    /// The field of `KeyValue` attributes, for resources and records.
    pub attributes: u32,
}

impl Level {
    pub fn child(&self, number: u32) -> Option<(usize, &'static Level)> {
        self.children
            .iter()
            .position(|(n, _, _)| *n == number)
            .map(|i| (i, self.children[i].2))
    }
}

const fn container(children: &'static [(u32, &'static str, &'static Level)]) -> Level {
    Level {
        children,
        role: Role::Container,
        attributes: 0,
    }
}

const fn record(kind: RecordKind, attributes: u32) -> Level {
    Level {
        children: &[],
        role: Role::Record(kind),
        attributes,
    }
}

/// `resource` in `ResourceSpans`, `ResourceMetrics` and `ResourceLogs`.
pub const RESOURCE_FIELD: u32 = 1;
/// `Span.kind`.
pub const SPAN_KIND: u32 = 6;

pub static RESOURCE: Level = Level {
    children: &[],
    role: Role::Resource,
    attributes: 1,
};

const fn holds_resource(children: &'static [(u32, &'static str, &'static Level)]) -> Level {
    Level {
        children,
        role: Role::HoldsResource,
        attributes: 0,
    }
}

static SPAN: Level = record(RecordKind::Span, 9);
static SCOPE_SPANS: Level = container(&[(2, "spans", &SPAN)]);
static RESOURCE_SPANS: Level = holds_resource(&[
    (RESOURCE_FIELD, "resource", &RESOURCE),
    (2, "scope_spans", &SCOPE_SPANS),
]);
static TRACES: Level = container(&[(1, "resource_spans", &RESOURCE_SPANS)]);

static LOG_RECORD: Level = record(RecordKind::LogRecord, 6);
static SCOPE_LOGS: Level = container(&[(2, "log_records", &LOG_RECORD)]);
static RESOURCE_LOGS: Level =
    holds_resource(&[(RESOURCE_FIELD, "resource", &RESOURCE), (2, "scope_logs", &SCOPE_LOGS)]);
static LOGS: Level = container(&[(1, "resource_logs", &RESOURCE_LOGS)]);

static NUMBER_POINT: Level = record(RecordKind::DataPoint, 7);
static HISTOGRAM_POINT: Level = record(RecordKind::DataPoint, 9);
static EXPONENTIAL_POINT: Level = record(RecordKind::DataPoint, 1);
static SUMMARY_POINT: Level = record(RecordKind::DataPoint, 7);
static GAUGE: Level = container(&[(1, "data_points", &NUMBER_POINT)]);
static SUM: Level = container(&[(1, "data_points", &NUMBER_POINT)]);
static HISTOGRAM: Level = container(&[(1, "data_points", &HISTOGRAM_POINT)]);
static EXPONENTIAL_HISTOGRAM: Level = container(&[(1, "data_points", &EXPONENTIAL_POINT)]);
static SUMMARY: Level = container(&[(1, "data_points", &SUMMARY_POINT)]);
static METRIC: Level = container(&[
    (5, "gauge", &GAUGE),
    (7, "sum", &SUM),
    (9, "histogram", &HISTOGRAM),
    (10, "exponential_histogram", &EXPONENTIAL_HISTOGRAM),
    (11, "summary", &SUMMARY),
]);
static SCOPE_METRICS: Level = container(&[(2, "metrics", &METRIC)]);
static RESOURCE_METRICS: Level = holds_resource(&[
    (RESOURCE_FIELD, "resource", &RESOURCE),
    (2, "scope_metrics", &SCOPE_METRICS),
]);
static METRICS: Level = container(&[(1, "resource_metrics", &RESOURCE_METRICS)]);

/// The export request of a signal.
pub fn request(signal: Signal) -> &'static Level {
    match signal {
        Signal::Traces => &TRACES,
        Signal::Metrics => &METRICS,
        Signal::Logs => &LOGS,
    }
}

pub fn trace_id_field(kind: RecordKind) -> Option<u32> {
    match kind {
        RecordKind::Span => Some(1),
        RecordKind::LogRecord => Some(9),
        RecordKind::DataPoint => None,
    }
}

pub fn span_id_field(kind: RecordKind) -> Option<u32> {
    match kind {
        RecordKind::Span => Some(2),
        RecordKind::LogRecord => Some(10),
        RecordKind::DataPoint => None,
    }
}

/// Spans need both ids; log records may leave them out but not give them another length.
pub fn ids_valid(kind: RecordKind, (trace_id, span_id): (usize, usize)) -> bool {
    match kind {
        RecordKind::Span => trace_id == 16 && span_id == 8,
        RecordKind::LogRecord => matches!(trace_id, 0 | 16) && matches!(span_id, 0 | 8),
        RecordKind::DataPoint => true,
    }
}
