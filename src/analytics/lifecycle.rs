//! A finding's lifecycle across detector runs: an anomaly is announced when it **opens**,
//! again when it **escalates** (its severity rises or its value doubles), as an **ongoing**
//! reminder every `reminder_interval` while it lasts, and once more when it **resolves** after
//! `resolve_after` runs that no longer find it. Runs in between announce nothing, so a vendor
//! alerting on the records alerts once per anomaly, not once per run.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::detector::{Detector, Severity};
use super::findings::Finding;

/// Where an anomaly is in its lifecycle, as the records and signal files say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Open,
    Escalated,
    Ongoing,
    Resolved,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Escalated => "escalated",
            State::Ongoing => "ongoing",
            State::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        [State::Open, State::Escalated, State::Ongoing, State::Resolved]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One anomaly followed across runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    /// Stable for the anomaly: from its detector and key.
    pub id: String,
    pub detector: String,
    /// What the last run that found it found.
    pub finding: Finding,
    pub severity: Severity,
    /// The state last announced.
    pub state: State,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
    /// Runs that found it.
    pub runs: u64,
    /// Runs since the last that found it.
    pub quiet_runs: u32,
    /// When it was last announced, and its value then.
    pub notified_at: SystemTime,
    pub notified_value: Option<f64>,
}

/// How often a detector's ongoing anomalies are announced again, and how many quiet runs
/// resolve one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub reminder_interval: Duration,
    pub resolve_after: u32,
}

/// The stable id of the anomaly `key` of `detector`: 16 hex digits of a SHA-256.
pub fn finding_id(detector: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{detector}\n{key}").as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The anomalies of every detector, by detector and key.
#[derive(Debug, Default)]
pub struct Lifecycle {
    tracked: BTreeMap<(String, String), Tracked>,
}

impl Lifecycle {
    /// Continues the anomalies a previous process was following.
    pub fn restore(tracked: impl IntoIterator<Item = Tracked>) -> Lifecycle {
        let tracked = tracked
            .into_iter()
            .map(|t| ((t.detector.clone(), t.finding.key.clone()), t))
            .collect();
        Lifecycle { tracked }
    }

    /// Takes one run of `detector` into account; returns what is to be announced: each
    /// anomaly that opened, escalated, is due a reminder or resolved, in its new state.
    pub fn observe(
        &mut self,
        detector: &Detector,
        timing: Timing,
        findings: &[Finding],
        now: SystemTime,
    ) -> Vec<Tracked> {
        let mut announced = Vec::new();
        for finding in findings {
            let severity = severity_of(detector, finding);
            let value = value_of(finding);
            let id = (detector.name.clone(), finding.key.clone());
            let Some(tracked) = self.tracked.get_mut(&id) else {
                let tracked = Tracked {
                    id: finding_id(&detector.name, &finding.key),
                    detector: detector.name.clone(),
                    finding: finding.clone(),
                    severity,
                    state: State::Open,
                    first_seen: now,
                    last_seen: now,
                    runs: 1,
                    quiet_runs: 0,
                    notified_at: now,
                    notified_value: value,
                };
                announced.push(tracked.clone());
                self.tracked.insert(id, tracked);
                continue;
            };
            tracked.finding = finding.clone();
            tracked.last_seen = now;
            tracked.runs += 1;
            tracked.quiet_runs = 0;
            let doubled = matches!((value, tracked.notified_value), (Some(v), Some(n)) if n > 0.0 && v >= 2.0 * n);
            let state = if severity > tracked.severity || doubled {
                State::Escalated
            } else if now.duration_since(tracked.notified_at).unwrap_or_default() >= timing.reminder_interval {
                State::Ongoing
            } else {
                continue;
            };
            tracked.severity = tracked.severity.max(severity);
            tracked.state = state;
            tracked.notified_at = now;
            tracked.notified_value = value;
            announced.push(tracked.clone());
        }
        let quiet: Vec<(String, String)> = self
            .tracked
            .iter_mut()
            .filter(|((name, _), t)| *name == detector.name && t.last_seen != now)
            .filter_map(|(id, t)| {
                t.quiet_runs += 1;
                (t.quiet_runs >= timing.resolve_after).then(|| id.clone())
            })
            .collect();
        for id in quiet {
            if let Some(mut tracked) = self.tracked.remove(&id) {
                tracked.state = State::Resolved;
                tracked.notified_at = now;
                announced.push(tracked);
            }
        }
        announced
    }

    /// The anomalies of `detector` still open.
    pub fn of_detector<'a>(&'a self, detector: &'a str) -> impl Iterator<Item = &'a Tracked> {
        self.tracked.values().filter(move |t| t.detector == detector)
    }

    /// Open anomalies by detector and severity.
    pub fn open_counts(&self) -> BTreeMap<(String, Severity), i64> {
        let mut counts = BTreeMap::new();
        for tracked in self.tracked.values() {
            *counts.entry((tracked.detector.clone(), tracked.severity)).or_default() += 1;
        }
        counts
    }
}

/// A `severity` column of the finding, else the detector's.
fn severity_of(detector: &Detector, finding: &Finding) -> Severity {
    finding
        .text(&["severity"])
        .and_then(|s| Severity::parse(&s))
        .unwrap_or(detector.severity)
}

fn value_of(finding: &Finding) -> Option<f64> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    match finding.get(&["value"])? {
        Value::IntValue(i) => Some(*i as f64),
        Value::DoubleValue(d) => Some(*d),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    use super::*;

    fn detector() -> Detector {
        let text = "-- name: shadow\n-- severity: medium\nSELECT 1";
        Detector::parse(std::path::Path::new("shadow.sql"), text, Duration::from_secs(10)).expect("detector")
    }

    fn finding(key: &str, value: i64, severity: Option<&str>) -> Finding {
        let mut columns = vec![("value".to_owned(), Value::IntValue(value))];
        if let Some(severity) = severity {
            columns.push(("severity".into(), Value::StringValue(severity.into())));
        }
        Finding {
            columns,
            key: key.into(),
        }
    }

    const TIMING: Timing = Timing {
        reminder_interval: Duration::from_secs(60),
        resolve_after: 2,
    };

    /// Runs 10 s apart; the states announced at each.
    fn states(runs: &[Vec<Finding>]) -> Vec<Vec<(String, &'static str)>> {
        let mut lifecycle = Lifecycle::default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        runs.iter()
            .enumerate()
            .map(|(i, found)| {
                let now = start + Duration::from_secs(10 * i as u64);
                let announced = lifecycle.observe(&detector(), TIMING, found, now);
                announced
                    .into_iter()
                    .map(|t| (t.finding.key, t.state.as_str()))
                    .collect()
            })
            .collect()
    }

    /// Guarantees: an anomaly found by ten runs in a row is announced when it opens and, with a
    /// 60 s reminder, at the 7th run; nothing else until it resolves after two quiet runs.
    #[test]
    fn ongoing_anomaly_is_announced_open_reminded_resolved() {
        let mut runs: Vec<Vec<Finding>> = (0..10).map(|_| vec![finding("a", 5, None)]).collect();
        runs.extend([vec![], vec![], vec![]]);
        let announced = states(&runs);
        let expected: Vec<Vec<(String, &str)>> = (0..13)
            .map(|run| match run {
                0 => vec![("a".into(), "open")],
                6 => vec![("a".into(), "ongoing")],
                11 => vec![("a".into(), "resolved")],
                _ => vec![],
            })
            .collect();
        assert_eq!(announced, expected);
    }

    /// Guarantees: a doubled value or a higher severity escalates; a smaller rise does not;
    /// one quiet run between findings does not resolve.
    #[test]
    fn escalates_on_doubling_or_severity() {
        let runs = vec![
            vec![finding("a", 5, None)],
            vec![finding("a", 9, None)],
            vec![finding("a", 10, None)],
            vec![],
            vec![finding("a", 10, Some("critical"))],
            vec![finding("a", 10, Some("critical"))],
        ];
        let announced = states(&runs);
        assert_eq!(
            announced,
            vec![
                vec![("a".into(), "open")],
                vec![],
                vec![("a".into(), "escalated")],
                vec![],
                vec![("a".into(), "escalated")],
                vec![],
            ]
        );
    }

    /// Guarantees: the id is stable for a detector and key, and differs between keys.
    #[test]
    fn ids_are_stable() {
        assert_eq!(finding_id("shadow", "a"), finding_id("shadow", "a"));
        assert_ne!(finding_id("shadow", "a"), finding_id("shadow", "b"));
        assert_eq!(finding_id("shadow", "a").len(), 16);
    }
}
