//! What a finding becomes: an OTLP log record (`fleetpipe.anomaly`) for the exporters, and a
//! Markdown signal file with YAML front matter in the operating model's `work/signals/`
//! layout: one file per ongoing anomaly, updated while it lasts, marked resolved after.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
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
    fn get(&self, names: &[&str]) -> Option<&Value> {
        names
            .iter()
            .find_map(|n| self.columns.iter().find(|(c, _)| c == n).map(|(_, v)| v))
    }

    fn text(&self, names: &[&str]) -> Option<String> {
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

fn display(value: &Value) -> String {
    match value {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) => format!("{d:.4}").trim_end_matches('0').trim_end_matches('.').to_owned(),
        Value::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// One sentence saying what was seen.
fn sentence(detector: &Detector, finding: &Finding) -> String {
    let mut text = format!("{} fired", detector.name);
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

/// The findings of one run as one OTLP logs request.
pub fn log_records(detector: &Detector, findings: &[Finding], now_nanos: u64) -> ExportLogsServiceRequest {
    let string = |key: &str, value: &str| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    };
    let records = findings
        .iter()
        .map(|finding| {
            let mut attributes = vec![
                string("fleetpipe.detector", &detector.name),
                string("fleetpipe.severity", detector.severity.as_str()),
                string("fleetpipe.key", &finding.key),
            ];
            attributes.extend(finding.columns.iter().map(|(k, v)| KeyValue {
                key: k.clone(),
                value: Some(AnyValue { value: Some(v.clone()) }),
                ..Default::default()
            }));
            LogRecord {
                time_unix_nano: now_nanos,
                observed_time_unix_nano: now_nanos,
                severity_number: detector.severity.otlp_number(),
                severity_text: detector.severity.as_str().to_uppercase(),
                body: Some(AnyValue {
                    value: Some(Value::StringValue(sentence(detector, finding))),
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
                attributes: vec![string("service.name", "fleetpipe")],
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

/// An anomaly that is (or was) ongoing, and its file.
#[derive(Debug, Clone)]
struct Ongoing {
    first_seen: SystemTime,
    last_seen: SystemTime,
    runs: u64,
    path: PathBuf,
    finding: Finding,
}

/// The signal files of all detectors, one per detector and key.
#[derive(Debug)]
pub struct FindingFiles {
    folder: PathBuf,
    ongoing: BTreeMap<(String, String), Ongoing>,
}

impl FindingFiles {
    pub fn new(folder: PathBuf) -> FindingFiles {
        FindingFiles {
            folder,
            ongoing: BTreeMap::new(),
        }
    }

    /// Records a run: writes or updates the file of each finding and marks the detector's
    /// anomalies that were not found again as resolved.
    pub fn record(&mut self, detector: &Detector, findings: &[Finding], now: SystemTime) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.folder)?;
        let mut seen = Vec::new();
        for finding in findings {
            let id = (detector.name.clone(), finding.key.clone());
            let path = self.folder.join(file_name(&detector.name, &finding.key));
            let entry = self.ongoing.entry(id.clone()).or_insert_with(|| Ongoing {
                first_seen: now,
                last_seen: now,
                runs: 0,
                path,
                finding: finding.clone(),
            });
            entry.last_seen = now;
            entry.runs += 1;
            entry.finding = finding.clone();
            write_atomically(&entry.path, &render(detector, entry, None))?;
            seen.push(id);
        }
        let resolved: Vec<(String, String)> = self
            .ongoing
            .keys()
            .filter(|(name, _)| *name == detector.name)
            .filter(|id| !seen.contains(id))
            .cloned()
            .collect();
        for id in resolved {
            if let Some(entry) = self.ongoing.remove(&id) {
                write_atomically(&entry.path, &render(detector, &entry, Some(now)))?;
            }
        }
        Ok(())
    }
}

/// `fleetpipe-<detector>-<key>.md`, with the key reduced to a safe slug.
fn file_name(detector: &str, key: &str) -> String {
    let slug = |text: &str| {
        let mut out = String::new();
        for c in text.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        out.trim_matches('-').chars().take(80).collect::<String>()
    };
    let key = slug(key);
    if key.is_empty() {
        format!("fleetpipe-{}.md", slug(detector))
    } else {
        format!("fleetpipe-{}-{key}.md", slug(detector))
    }
}

fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A YAML scalar: JSON string quoting is valid YAML and escapes everything that needs it.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn render(detector: &Detector, entry: &Ongoing, resolved_at: Option<SystemTime>) -> String {
    let f = &entry.finding;
    let mut out = String::from("---\n");
    let mut field = |key: &str, value: String| {
        let _ = writeln!(out, "{key}: {value}");
    };
    field("type", quoted("signal"));
    field("source", quoted("fleetpipe"));
    field("detector", quoted(&detector.name));
    field("severity", quoted(detector.severity.as_str()));
    field(
        "status",
        quoted(if resolved_at.is_some() { "resolved" } else { "active" }),
    );
    field("key", quoted(&f.key));
    field(
        "integration",
        f.text(&["integration.id", "integration_id"])
            .map_or("null".into(), |v| quoted(&v)),
    );
    field(
        "layer",
        f.text(&["operating_model.layer", "layer"])
            .map_or("null".into(), |v| quoted(&v)),
    );
    field("agent", f.text(&["agent"]).map_or("null".into(), |v| quoted(&v)));
    field("first_seen", quoted(&timestamp(entry.first_seen)));
    field("last_seen", quoted(&timestamp(entry.last_seen)));
    if let Some(at) = resolved_at {
        field("resolved_at", quoted(&timestamp(at)));
    }
    field("runs", entry.runs.to_string());
    field("value", f.get(&["value"]).map_or("null".into(), number_or_text));
    field("baseline", f.get(&["baseline"]).map_or("null".into(), number_or_text));
    out.push_str("---\n\n");
    let _ = writeln!(
        out,
        "# {}: {}\n",
        detector.name,
        if f.key.is_empty() { "fleet" } else { &f.key }
    );
    let _ = writeln!(out, "{}.\n", sentence(detector, f));
    if let Some(at) = resolved_at {
        let _ = writeln!(
            out,
            "Resolved at {}: the detector's last run no longer found it.\n",
            timestamp(at)
        );
    }
    let _ = writeln!(
        out,
        "Detector file: `{}`. To look at the live data behind it:\n",
        detector.file.display()
    );
    let _ = writeln!(out, "```sh\nfleetpipe query --file {}\n```", detector.file.display());
    out
}

fn number_or_text(value: &Value) -> String {
    match value {
        Value::IntValue(_) | Value::DoubleValue(_) => display(value),
        other => quoted(&display(other)),
    }
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let temporary = path.with_extension("md.tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(temporary, path)
}
