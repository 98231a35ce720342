//! What a finding becomes: an OTLP log record (`fleetpipe.anomaly`) for the exporters, and a
//! Markdown signal file with YAML front matter in the operating model's `work/signals/`
//! layout: one file per ongoing anomaly, updated while it lasts, marked resolved after.

use std::fmt::Write as _;
use std::time::SystemTime;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::detector::Detector;
use super::lifecycle::Tracked;
use crate::otlp::semconv::ANOMALY_EVENT;

/// One result row of a detector run.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Column name → value, in the query's column order.
    pub columns: Vec<(String, Value)>,
    /// The values that identify this anomaly across runs.
    pub key: String,
}

impl Finding {
    /// The value of the first of `names` the finding has.
    pub(super) fn get(&self, names: &[&str]) -> Option<&Value> {
        names
            .iter()
            .find_map(|n| self.columns.iter().find(|(c, _)| c == n).map(|(_, v)| v))
    }

    /// [`Finding::get`] as text.
    pub(super) fn text(&self, names: &[&str]) -> Option<String> {
        self.get(names).map(display)
    }
}

/// The rows of a run as findings, keyed by the detector's `key` columns (all text columns when
/// it names none).
pub fn findings(detector: &Detector, batches: &[RecordBatch]) -> Vec<Finding> {
    let mut found = Vec::new();
    let options = FormatOptions::default();
    for batch in batches {
        let schema = batch.schema();
        for row in 0..batch.num_rows() {
            let columns: Vec<(String, Value)> = schema
                .fields()
                .iter()
                .zip(batch.columns())
                .filter(|(_, column)| !column.is_null(row))
                .map(|(field, column)| {
                    let value = match field.data_type() {
                        DataType::Int64 => Value::IntValue(column.as_primitive::<Int64Type>().value(row)),
                        DataType::Float64 => Value::DoubleValue(column.as_primitive::<Float64Type>().value(row)),
                        DataType::Boolean => Value::BoolValue(column.as_boolean().value(row)),
                        _ => Value::StringValue(
                            ArrayFormatter::try_new(column.as_ref(), &options)
                                .map(|f| f.value(row).to_string())
                                .unwrap_or_default(),
                        ),
                    };
                    (field.name().clone(), value)
                })
                .collect();
            let key_columns: Vec<&str> = match &detector.key {
                Some(key) => key.iter().map(String::as_str).collect(),
                None => columns
                    .iter()
                    .filter(|(_, v)| matches!(v, Value::StringValue(_)))
                    .map(|(c, _)| c.as_str())
                    .collect(),
            };
            let key = key_columns
                .iter()
                .map(|k| {
                    columns
                        .iter()
                        .find(|(c, _)| c == k)
                        .map(|(_, v)| display(v))
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("/");
            found.push(Finding { columns, key });
        }
    }
    found
}

pub(super) fn display(value: &Value) -> String {
    match value {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) => format!("{d:.4}").trim_end_matches('0').trim_end_matches('.').to_owned(),
        Value::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// One sentence saying what was seen.
pub(super) fn sentence(detector: &Detector, finding: &Finding) -> String {
    let mut text = format!("{} found", detector.name);
    if !finding.key.is_empty() {
        let _ = write!(text, " for {}", finding.key);
    }
    if let Some(value) = finding.text(&["value"]) {
        let _ = write!(text, ": value {value}");
        if let Some(baseline) = finding.text(&["baseline"]) {
            let _ = write!(text, " against a baseline of {baseline}");
        }
    }
    if !detector.description.is_empty() {
        let _ = write!(text, ". {}", detector.description);
    }
    text
}

/// The announcements of one run as one OTLP logs request: each record says the anomaly's
/// id, state and first sighting beside the detector's columns.
pub fn log_records(detector: &Detector, announced: &[Tracked], now_nanos: u64) -> ExportLogsServiceRequest {
    let string = |key: &str, value: &str| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    };
    let records = announced
        .iter()
        .map(|tracked| {
            let finding = &tracked.finding;
            let mut attributes = vec![
                string("fleetpipe.detector", &detector.name),
                string("fleetpipe.severity", tracked.severity.as_str()),
                string("fleetpipe.key", &finding.key),
                string("fleetpipe.finding.id", &tracked.id),
                string("fleetpipe.finding.state", tracked.state.as_str()),
                string("fleetpipe.finding.first_seen", &timestamp(tracked.first_seen)),
            ];
            attributes.extend(finding.columns.iter().map(|(k, v)| KeyValue {
                key: k.clone(),
                value: Some(AnyValue { value: Some(v.clone()) }),
                ..Default::default()
            }));
            LogRecord {
                time_unix_nano: now_nanos,
                observed_time_unix_nano: now_nanos,
                severity_number: tracked.severity.otlp_number(),
                severity_text: tracked.severity.as_str().to_uppercase(),
                body: Some(AnyValue {
                    value: Some(Value::StringValue(announcement(detector, tracked))),
                }),
                attributes,
                event_name: ANOMALY_EVENT.into(),
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", "fleetpipe"),
                    string("service.instance.id", crate::telemetry::instance_id()),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "fleetpipe.analytics".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// The sentence of a finding, headed by its state: `Open: …`, `Resolved: …`.
pub(super) fn announcement(detector: &Detector, tracked: &Tracked) -> String {
    let state = tracked.state.as_str();
    let mut heading = state[..1].to_uppercase();
    heading.push_str(&state[1..]);
    format!("{heading}: {}", sentence(detector, &tracked.finding))
}

/// A time as RFC 3339, to the second.
pub(super) fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}
