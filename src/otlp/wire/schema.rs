//! The parts of the OTLP messages (opentelemetry-proto v1.10.0, in `proto/`) that the data path
//! walks: from the export request down to the records and their attributes. Fields not named
//! here (events, links, scopes, exemplars, …) are carried as they are.

use super::RecordKind;
use crate::otlp::{Signal, fields};

/// What a message is to the walk.
#[derive(Debug, Clone, Copy)]
pub(super) enum Role {
    /// Only holds the levels below.
    Container,
    /// `ResourceSpans`, `ResourceMetrics`, `ResourceLogs`: holds a resource, which is added
    /// when the visitor tags a request that carries none.
    HoldsResource,
    Resource,
    Record(RecordKind),
}

pub(super) struct Level {
    /// Field number, field name (for error paths) and level of each message field walked into.
    pub children: &'static [(u32, &'static str, &'static Level)],
    pub role: Role,
    /// The field of `KeyValue` attributes, for resources and records.
    pub attributes: u32,
}

impl Level {
    pub(super) fn child(&self, number: u32) -> Option<(usize, &'static Level)> {
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
pub(super) const RESOURCE_FIELD: u32 = fields::resource_data::RESOURCE;
/// `Span.kind`.
pub(super) const SPAN_KIND: u32 = fields::span::KIND;

pub(super) static RESOURCE: Level = Level {
    children: &[],
    role: Role::Resource,
    attributes: fields::resource::ATTRIBUTES,
};

const fn holds_resource(children: &'static [(u32, &'static str, &'static Level)]) -> Level {
    Level {
        children,
        role: Role::HoldsResource,
        attributes: 0,
    }
}

static SPAN: Level = record(RecordKind::Span, fields::span::ATTRIBUTES);
static SCOPE_SPANS: Level = container(&[(fields::scope_data::RECORDS, "spans", &SPAN)]);
static RESOURCE_SPANS: Level = holds_resource(&[
    (RESOURCE_FIELD, "resource", &RESOURCE),
    (fields::resource_data::SCOPE_DATA, "scope_spans", &SCOPE_SPANS),
]);
static TRACES: Level = container(&[(fields::request::RESOURCE_DATA, "resource_spans", &RESOURCE_SPANS)]);

static LOG_RECORD: Level = record(RecordKind::LogRecord, fields::log_record::ATTRIBUTES);
static SCOPE_LOGS: Level = container(&[(fields::scope_data::RECORDS, "log_records", &LOG_RECORD)]);
static RESOURCE_LOGS: Level = holds_resource(&[
    (RESOURCE_FIELD, "resource", &RESOURCE),
    (fields::resource_data::SCOPE_DATA, "scope_logs", &SCOPE_LOGS),
]);
static LOGS: Level = container(&[(fields::request::RESOURCE_DATA, "resource_logs", &RESOURCE_LOGS)]);

static NUMBER_POINT: Level = record(RecordKind::DataPoint, fields::number_point::ATTRIBUTES);
static HISTOGRAM_POINT: Level = record(RecordKind::DataPoint, fields::histogram_point::ATTRIBUTES);
static EXPONENTIAL_POINT: Level = record(RecordKind::DataPoint, fields::exponential_histogram_point::ATTRIBUTES);
static SUMMARY_POINT: Level = record(RecordKind::DataPoint, fields::summary_point::ATTRIBUTES);
const DATA_POINTS: u32 = fields::metric_data::DATA_POINTS;
static GAUGE: Level = container(&[(DATA_POINTS, "data_points", &NUMBER_POINT)]);
static SUM: Level = container(&[(DATA_POINTS, "data_points", &NUMBER_POINT)]);
static HISTOGRAM: Level = container(&[(DATA_POINTS, "data_points", &HISTOGRAM_POINT)]);
static EXPONENTIAL_HISTOGRAM: Level = container(&[(DATA_POINTS, "data_points", &EXPONENTIAL_POINT)]);
static SUMMARY: Level = container(&[(DATA_POINTS, "data_points", &SUMMARY_POINT)]);
static METRIC: Level = container(&[
    (fields::metric::GAUGE, "gauge", &GAUGE),
    (fields::metric::SUM, "sum", &SUM),
    (fields::metric::HISTOGRAM, "histogram", &HISTOGRAM),
    (
        fields::metric::EXPONENTIAL_HISTOGRAM,
        "exponential_histogram",
        &EXPONENTIAL_HISTOGRAM,
    ),
    (fields::metric::SUMMARY, "summary", &SUMMARY),
]);
static SCOPE_METRICS: Level = container(&[(fields::scope_data::RECORDS, "metrics", &METRIC)]);
static RESOURCE_METRICS: Level = holds_resource(&[
    (RESOURCE_FIELD, "resource", &RESOURCE),
    (fields::resource_data::SCOPE_DATA, "scope_metrics", &SCOPE_METRICS),
]);
static METRICS: Level = container(&[(fields::request::RESOURCE_DATA, "resource_metrics", &RESOURCE_METRICS)]);

/// The export request of a signal.
pub(super) fn request(signal: Signal) -> &'static Level {
    match signal {
        Signal::Traces => &TRACES,
        Signal::Metrics => &METRICS,
        Signal::Logs => &LOGS,
    }
}

pub(super) fn trace_id_field(kind: RecordKind) -> Option<u32> {
    match kind {
        RecordKind::Span => Some(fields::span::TRACE_ID),
        RecordKind::LogRecord => Some(fields::log_record::TRACE_ID),
        RecordKind::DataPoint => None,
    }
}

pub(super) fn span_id_field(kind: RecordKind) -> Option<u32> {
    match kind {
        RecordKind::Span => Some(fields::span::SPAN_ID),
        RecordKind::LogRecord => Some(fields::log_record::SPAN_ID),
        RecordKind::DataPoint => None,
    }
}

/// Spans need both ids; log records may leave them out but not give them another length.
pub(super) fn ids_valid(kind: RecordKind, (trace_id, span_id): (usize, usize)) -> bool {
    match kind {
        RecordKind::Span => trace_id == 16 && span_id == 8,
        RecordKind::LogRecord => matches!(trace_id, 0 | 16) && matches!(span_id, 0 | 8),
        RecordKind::DataPoint => true,
    }
}
