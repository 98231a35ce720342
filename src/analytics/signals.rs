//! Findings as Markdown signal files with YAML front matter, in the operating model's
//! `work/signals/` layout: one file per anomaly, updated while it lasts, marked resolved after.
//! The files are also the lifecycle's memory: a restart continues the anomalies they record
//! as active instead of opening them again.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use serde::Deserialize;

use super::detector::{Detector, Severity};
use super::findings::{Finding, display, sentence, timestamp};
use super::lifecycle::{State, Tracked};

/// The signal folder.
#[derive(Debug)]
pub(super) struct FindingFiles {
    folder: PathBuf,
}

impl FindingFiles {
    pub(super) fn new(folder: PathBuf) -> FindingFiles {
        FindingFiles { folder }
    }

    /// Records a run of `detector`: updates the file of each anomaly still open and marks
    /// those `announced` as resolved.
    pub(super) fn record<'a>(
        &self,
        detector: &Detector,
        open: impl Iterator<Item = &'a Tracked>,
        announced: &'a [Tracked],
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.folder)?;
        let resolved = announced.iter().filter(|t| t.state == State::Resolved);
        for tracked in open.chain(resolved) {
            let path = self.folder.join(file_name(&detector.name, &tracked.finding.key));
            write_atomically(&path, &render(detector, tracked))?;
        }
        Ok(())
    }

    /// The anomalies the files record as active, to continue after a restart; a file that
    /// cannot be read as a signal is left out.
    pub(super) fn restore(&self) -> Vec<Tracked> {
        let Ok(entries) = std::fs::read_dir(&self.folder) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                name.starts_with("fleetpipe-") && name.ends_with(".md")
            })
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .filter_map(|text| tracked_of(&text))
            .collect()
    }
}

/// The front matter fields a restart reads back.
#[derive(Deserialize)]
struct FrontMatter {
    detector: String,
    key: String,
    severity: String,
    status: String,
    state: Option<String>,
    first_seen: String,
    last_seen: String,
    runs: u64,
    notified_at: Option<String>,
    notified_value: Option<f64>,
    value: Option<serde_yaml::Value>,
    baseline: Option<serde_yaml::Value>,
    integration: Option<String>,
    layer: Option<String>,
    agent: Option<String>,
}

/// The active anomaly a signal file records.
fn tracked_of(text: &str) -> Option<Tracked> {
    let front: FrontMatter = serde_yaml::from_str(text.split("---\n").nth(1)?).ok()?;
    if front.status != "active" {
        return None;
    }
    let time = |text: &str| humantime::parse_rfc3339(text).ok();
    let number = |value: &Option<serde_yaml::Value>| value.as_ref()?.as_f64().map(Value::DoubleValue);
    let text_value = |value: &Option<String>| value.clone().map(Value::StringValue);
    let columns = [
        ("value", number(&front.value)),
        ("baseline", number(&front.baseline)),
        ("integration_id", text_value(&front.integration)),
        ("layer", text_value(&front.layer)),
        ("agent", text_value(&front.agent)),
    ];
    let columns = columns
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value?)))
        .collect();
    let last_seen = time(&front.last_seen)?;
    Some(Tracked {
        id: super::lifecycle::finding_id(&front.detector, &front.key),
        finding: Finding {
            columns,
            key: front.key,
        },
        detector: front.detector,
        severity: Severity::parse(&front.severity)?,
        state: front.state.as_deref().and_then(State::parse).unwrap_or(State::Open),
        first_seen: time(&front.first_seen)?,
        last_seen,
        runs: front.runs,
        quiet_runs: 0,
        notified_at: front.notified_at.as_deref().and_then(time).unwrap_or(last_seen),
        notified_value: front.notified_value,
    })
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

/// A YAML scalar: JSON string quoting is valid YAML and escapes everything that needs it.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn render(detector: &Detector, tracked: &Tracked) -> String {
    let f = &tracked.finding;
    let resolved_at = (tracked.state == State::Resolved).then_some(tracked.notified_at);
    let optional = |value: Option<String>| value.map_or("null".into(), |v| quoted(&v));
    let mut out = String::from("---\n");
    let mut field = |key: &str, value: String| {
        let _ = writeln!(out, "{key}: {value}");
    };
    field("type", quoted("signal"));
    field("source", quoted("fleetpipe"));
    field("id", quoted(&tracked.id));
    field("detector", quoted(&detector.name));
    field("severity", quoted(tracked.severity.as_str()));
    field(
        "status",
        quoted(if resolved_at.is_some() { "resolved" } else { "active" }),
    );
    field("state", quoted(tracked.state.as_str()));
    field("key", quoted(&f.key));
    field("integration", optional(f.text(&["integration.id", "integration_id"])));
    field("layer", optional(f.text(&["operating_model.layer", "layer"])));
    field("agent", optional(f.text(&["agent"])));
    field("first_seen", quoted(&timestamp(tracked.first_seen)));
    field("last_seen", quoted(&timestamp(tracked.last_seen)));
    field("notified_at", quoted(&timestamp(tracked.notified_at)));
    if let Some(at) = resolved_at {
        field("resolved_at", quoted(&timestamp(at)));
    }
    field("runs", tracked.runs.to_string());
    field("value", f.get(&["value"]).map_or("null".into(), number_or_text));
    field(
        "notified_value",
        tracked.notified_value.map_or("null".into(), |v| v.to_string()),
    );
    field("baseline", f.get(&["baseline"]).map_or("null".into(), number_or_text));
    out.push_str("---\n\n");
    let heading = if f.key.is_empty() { "fleet" } else { &f.key };
    let _ = writeln!(out, "# {}: {heading}\n", detector.name);
    let _ = writeln!(out, "{}.\n", sentence(detector, f));
    if let Some(at) = resolved_at {
        let _ = writeln!(
            out,
            "Resolved at {}: the detector's last runs no longer found it.\n",
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::analytics::lifecycle::{Lifecycle, Timing};

    /// Guarantees: an open anomaly written to its signal file is read back by a restart as
    /// the same anomaly (id, key, first sighting, runs, severity, last announcement).
    #[test]
    fn a_restart_reads_open_anomalies_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = FindingFiles::new(dir.path().to_owned());
        let detector = Detector::parse(
            Path::new("d.sql"),
            "-- name: d\n-- severity: high\nSELECT 1",
            Duration::from_secs(10),
        )
        .expect("detector");
        let finding = Finding {
            columns: vec![
                ("target".into(), Value::StringValue("pastebin.com".into())),
                ("value".into(), Value::DoubleValue(3.0)),
            ],
            key: "pastebin.com".into(),
        };
        let mut lifecycle = Lifecycle::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let timing = Timing {
            reminder_interval: Duration::from_secs(900),
            resolve_after: 2,
        };
        let announced = lifecycle.observe(&detector, timing, &[finding], now);
        files
            .record(&detector, lifecycle.of_detector("d"), &announced)
            .expect("written");
        let restored = files.restore();
        assert_eq!(restored.len(), 1);
        let (before, after) = (lifecycle.of_detector("d").next().expect("open"), &restored[0]);
        assert_eq!(
            (&after.id, &after.finding.key, after.runs),
            (&before.id, &before.finding.key, 1)
        );
        assert_eq!(
            (after.first_seen, after.notified_at, after.severity),
            (now, now, Severity::High)
        );
        assert_eq!((after.state, after.notified_value), (State::Open, Some(3.0)));
    }
}
