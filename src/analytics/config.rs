//! Settings of the `analytics` exporter and their checks.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::lifecycle::Timing;
use crate::rows::sampling;

/// Settings of the `analytics` exporter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// Folder of detector files (`*.sql`), watched for changes. When unset: `./queries` if
    /// there is such a folder, else the detector pack built into fleetpipe.
    pub queries: Option<PathBuf>,
    /// Length of a tumbling window.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How long closed windows stay queryable.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How long the per-window rollups in `history` are kept for baselines.
    #[serde(with = "humantime_serde")]
    pub history_retention: Duration,
    /// Memory DataFusion may use for one query, in MiB.
    pub memory_limit_mib: usize,
    /// Memory the closed windows may hold, in MiB; past it the oldest go before `retention`
    /// says (the newest window always stays). At 100k spans/s a 10 s window of the shipped
    /// detectors' columns is ~260 MiB with every span, a tenth of it under the default
    /// `max_spans_per_second`.
    pub max_windows_mib: usize,
    /// Which columns of `spans`, `metric_points` and `logs` windows build.
    pub columns: Columns,
    /// Percentage of traces whose spans windows keep (OpenTelemetry consistent probability
    /// sampling by trace id); 100 keeps every span.
    pub sampling_percentage: f64,
    /// Spans a second windows keep at most: when the last window was offered more, the next
    /// keeps the share of traces that fits (below `sampling_percentage`); 0 keeps every
    /// offered span. Bounds analytics' CPU and memory whatever the fleet's rate.
    pub max_spans_per_second: u64,
    /// Batches waiting for analytics; beyond it input is shed and counted.
    pub queue_size: usize,
    /// Longest a detector run may take.
    #[serde(with = "humantime_serde")]
    pub run_timeout: Duration,
    /// Folder for signal files (the operating model's `work/signals/`); none when unset.
    pub signals_path: Option<PathBuf>,
    /// JSON webhooks for chat or ITSM, each with a minimum severity.
    pub webhooks: Vec<super::webhook::WebhookConfig>,
    /// How often an anomaly that lasts is announced again (a detector's
    /// `-- reminder_interval:` overrides it).
    #[serde(with = "humantime_serde")]
    pub reminder_interval: Duration,
    /// Runs in a row that no longer find an anomaly before it is announced resolved (a
    /// detector's `-- resolve_after:` overrides it).
    pub resolve_after: u32,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            queries: None,
            window: Duration::from_secs(10),
            retention: Duration::from_secs(300),
            history_retention: Duration::from_secs(3600),
            memory_limit_mib: 256,
            max_windows_mib: 1024,
            columns: Columns::Detectors,
            sampling_percentage: 100.0,
            max_spans_per_second: 10_000,
            queue_size: 64,
            run_timeout: Duration::from_secs(5),
            signals_path: None,
            webhooks: Vec::new(),
            reminder_interval: Duration::from_secs(15 * 60),
            resolve_after: 2,
        }
    }
}

/// Which record-table columns windows build: each costs CPU on every record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Columns {
    /// Those the loaded detectors and the `history` rollup read; the others are null (an
    /// ad-hoc query reading them is told so).
    Detectors,
    /// Every column, for ad-hoc queries over all of them.
    All,
}

impl AnalyticsConfig {
    pub(super) fn memory_limit(&self) -> usize {
        self.memory_limit_mib.saturating_mul(1024 * 1024)
    }

    /// The settings that cannot work, as `(key, why)`.
    pub(super) fn invalid_settings(&self) -> Vec<(&'static str, &'static str)> {
        let checks = [
            (self.window.is_zero(), "window", "must be longer than 0s"),
            (self.queue_size == 0, "queue_size", "must be at least 1"),
            (self.resolve_after == 0, "resolve_after", "must be at least 1"),
            (
                !(self.sampling_percentage > 0.0 && self.sampling_percentage <= 100.0),
                "sampling_percentage",
                "must be above 0 and at most 100",
            ),
        ];
        checks
            .into_iter()
            .filter(|(failed, _, _)| *failed)
            .map(|(_, key, why)| (key, why))
            .collect()
    }

    /// The lifecycle timing of `detector`'s anomalies: its own, else these settings'.
    pub(super) fn timing(&self, detector: &super::detector::Detector) -> Timing {
        Timing {
            reminder_interval: detector.reminder_interval.unwrap_or(self.reminder_interval),
            resolve_after: detector.resolve_after.unwrap_or(self.resolve_after),
        }
    }

    /// The share of traces the window after one offered `offered_spans` keeps.
    pub(super) fn next_percentage(&self, offered_spans: usize) -> f64 {
        sampling::percentage_within(
            self.sampling_percentage,
            self.max_spans_per_second,
            offered_spans,
            self.window,
        )
    }
}
