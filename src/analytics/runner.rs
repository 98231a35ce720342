//! The detector runner: loads the detector files (reloading changed ones), runs each when its
//! `every` is due after a closed window, and sends what it finds out as findings.
//!
//! Cancellation: it ends when the windowing task does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use tokio::sync::watch;

use super::config::{AnalyticsConfig, Columns};
use super::detector::{Detector, DetectorError, Prepared};
use super::history::Rollup;
use super::lifecycle::Lifecycle;
use super::now_nanos;
use super::pack;
use super::signals::FindingFiles;
use super::window::WindowStore;
use super::{findings, webhook};
use crate::otlp::{Payload, Request};
use crate::pipeline::queue::ConsumerQueue;
use crate::rows::KeptColumns;
use crate::telemetry::metrics::Metrics;

/// Parses and plans every detector in the folder, as start-up does; for `fleetpipe validate`.
pub async fn check(config: &AnalyticsConfig) -> Result<usize, Vec<DetectorError>> {
    let store = Arc::new(RwLock::new(WindowStore::default()));
    let (prepared, errors) = load_detectors(config, &store).await;
    if errors.is_empty() {
        Ok(prepared.len())
    } else {
        Err(errors)
    }
}

/// The columns windows build under `config` once its detectors are loaded (as
/// `cargo bench --bench analytics` measures them).
pub async fn kept_columns(config: &AnalyticsConfig) -> datafusion::error::Result<KeptColumns> {
    let store = Arc::new(RwLock::new(WindowStore::default()));
    let (prepared, _) = load_detectors(config, &store).await;
    Ok(columns_to_keep(
        config.columns,
        Rollup::new(config).await?.columns,
        &prepared,
    ))
}

/// Those `rollup` and the `detectors` read, unless `columns` says all.
pub(super) fn columns_to_keep<'a>(
    columns: Columns,
    rollup: KeptColumns,
    detectors: impl IntoIterator<Item = &'a Prepared>,
) -> KeptColumns {
    match columns {
        Columns::All => KeptColumns::ALL,
        Columns::Detectors => detectors
            .into_iter()
            .fold(rollup, |kept, detector| kept.union(detector.columns)),
    }
}

/// Reads every detector `config` names (see [`pack::folder`]); returns the planned detectors
/// and the files that failed.
pub(super) async fn load_detectors(
    config: &AnalyticsConfig,
    store: &Arc<RwLock<WindowStore>>,
) -> (Vec<Prepared>, Vec<DetectorError>) {
    let mut prepared = Vec::new();
    let mut errors = Vec::new();
    for (path, _) in detector_files(config) {
        match load_detector(&path, config, store).await {
            Ok(detector) => prepared.push(detector),
            Err(error) => errors.push(error),
        }
    }
    if let Some(folder) = pack::folder(config).filter(|f| !f.is_dir()) {
        errors.push(DetectorError {
            file: folder.display().to_string(),
            line: 0,
            message: "detector folder not found".into(),
        });
    }
    (prepared, errors)
}

/// The detector files `config` names, from its folder or the built-in pack.
fn detector_files(config: &AnalyticsConfig) -> BTreeMap<PathBuf, Fingerprint> {
    match pack::folder(config) {
        Some(folder) => sql_files(&folder),
        None => pack::files(),
    }
}

pub(super) async fn load_detector(
    path: &Path,
    config: &AnalyticsConfig,
    store: &Arc<RwLock<WindowStore>>,
) -> Result<Prepared, DetectorError> {
    let text = match pack::text(path) {
        Some(text) => text.to_owned(),
        None => std::fs::read_to_string(path).map_err(|e| DetectorError {
            file: path.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?,
    };
    let detector = Detector::parse(path, &text, config.window)?;
    Prepared::new(detector, store, config.memory_limit()).await
}

/// The `*.sql` files of a folder with a fingerprint (modification time and size).
pub(super) fn sql_files(folder: &Path) -> BTreeMap<PathBuf, Fingerprint> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .filter_map(|p| {
            let meta = std::fs::metadata(&p).ok()?;
            Some((p, (meta.modified().ok()?, meta.len())))
        })
        .collect()
}

/// Runs the detectors after each closed window, reloading changed files first.
pub(super) struct Detectors {
    pub(super) config: AnalyticsConfig,
    pub(super) store: Arc<RwLock<WindowStore>>,
    pub(super) outputs: Vec<ConsumerQueue>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) signals: Option<FindingFiles>,
    /// The anomalies open, across runs (and restarts, through the signal files).
    pub(super) lifecycle: Lifecycle,
    /// Loaded detectors by file.
    pub(super) loaded: BTreeMap<PathBuf, Loaded>,
    /// Files that failed to load, by fingerprint, so each failure is logged once.
    pub(super) failed: BTreeMap<PathBuf, Fingerprint>,
    /// Client for the webhooks.
    pub(super) http: reqwest::Client,
}

/// A file's modification time and size: a change to either reloads it.
pub(super) type Fingerprint = (SystemTime, u64);

pub(super) struct Loaded {
    pub(super) fingerprint: Fingerprint,
    pub(super) prepared: Prepared,
    /// End of the window the detector last ran after.
    pub(super) last_run: Option<i64>,
}

impl Detectors {
    /// `rollup` is the columns the history rollup reads.
    pub(super) async fn run(mut self, mut closed: watch::Receiver<i64>, rollup: KeptColumns) {
        self.reload().await;
        self.keep_columns(rollup);
        while closed.changed().await.is_ok() {
            let window_end = *closed.borrow_and_update();
            self.reload().await;
            self.keep_columns(rollup);
            let due: Vec<PathBuf> = self
                .loaded
                .iter()
                .filter(|(_, loaded)| {
                    let every = loaded.prepared.detector.every.as_nanos() as i64;
                    loaded.last_run.is_none_or(|last| window_end - last >= every)
                })
                .map(|(path, _)| path.clone())
                .collect();
            for path in due {
                self.run_one(&path, window_end).await;
            }
        }
    }

    /// Loads new and changed detector files, forgets deleted ones; a broken file is logged
    /// once and skipped while the others keep running.
    pub(super) async fn reload(&mut self) {
        let files = detector_files(&self.config);
        self.loaded.retain(|path, _| files.contains_key(path));
        self.failed.retain(|path, _| files.contains_key(path));
        for (path, fingerprint) in files {
            let unchanged = self.loaded.get(&path).is_some_and(|l| l.fingerprint == fingerprint)
                || self.failed.get(&path) == Some(&fingerprint);
            if unchanged {
                continue;
            }
            match load_detector(&path, &self.config, &self.store).await {
                Ok(prepared) => {
                    tracing::info!(detector = %prepared.detector.name, file = %path.display(), "Detector loaded.");
                    self.failed.remove(&path);
                    self.loaded.insert(
                        path,
                        Loaded {
                            fingerprint,
                            prepared,
                            last_run: None,
                        },
                    );
                }
                Err(error) => {
                    tracing::error!(%error, "Detector skipped.");
                    self.metrics
                        .detector_errors
                        .get_or_create(&vec![("detector".to_owned(), path.display().to_string())])
                        .inc();
                    self.loaded.remove(&path);
                    self.failed.insert(path, fingerprint);
                }
            }
        }
    }

    /// Tells the ingest task which columns the next window builds: those `rollup` and the
    /// loaded detectors read, unless the configuration keeps all.
    pub(super) fn keep_columns(&self, rollup: KeptColumns) {
        let loaded = self.loaded.values().map(|loaded| &loaded.prepared);
        let kept = columns_to_keep(self.config.columns, rollup, loaded);
        self.store.write().unwrap_or_else(|e| e.into_inner()).kept = kept;
    }

    /// Counts a run's findings, and sets the open anomalies of every detector.
    fn count(&self, detector: &super::detector::Detector, found: usize) {
        if found > 0 {
            let labels = vec![
                ("detector".to_owned(), detector.name.clone()),
                ("severity".to_owned(), detector.severity.as_str().to_owned()),
            ];
            self.metrics.findings.get_or_create(&labels).inc_by(found as u64);
        }
        self.metrics.findings_open.clear();
        for ((name, severity), open) in self.lifecycle.open_counts() {
            let labels = vec![
                ("detector".to_owned(), name),
                ("severity".to_owned(), severity.as_str().to_owned()),
            ];
            self.metrics.findings_open.get_or_create(&labels).set(open);
        }
    }

    pub(super) async fn run_one(&mut self, path: &Path, window_end: i64) {
        let Some(Loaded { prepared, last_run, .. }) = self.loaded.get_mut(path) else {
            return;
        };
        *last_run = Some(window_end);
        let detector = prepared.detector.clone();
        let labels = vec![("detector".to_owned(), detector.name.clone())];
        let started = std::time::Instant::now();
        let batches = match tokio::time::timeout(self.config.run_timeout, prepared.run()).await {
            Ok(Ok(batches)) => batches,
            Ok(Err(error)) => {
                tracing::error!(detector = %detector.name, %error, "Detector run failed.");
                self.metrics.detector_errors.get_or_create(&labels).inc();
                return;
            }
            Err(_) => {
                tracing::error!(detector = %detector.name, timeout = ?self.config.run_timeout, "Detector run timed out.");
                self.metrics.detector_errors.get_or_create(&labels).inc();
                return;
            }
        };
        self.metrics
            .detector_run_seconds
            .get_or_create(&labels)
            .set(started.elapsed().as_secs_f64());
        let findings = findings::findings(&detector, &batches);
        let timing = self.config.timing(&detector);
        let announced = self.lifecycle.observe(&detector, timing, &findings, SystemTime::now());
        if let Some(signals) = &self.signals
            && let Err(error) = signals.record(&detector, self.lifecycle.of_detector(&detector.name), &announced)
        {
            tracing::error!(detector = %detector.name, %error, "Could not write signal files.");
        }
        self.count(&detector, findings.len());
        if announced.is_empty() {
            return;
        }
        for hook in &self.config.webhooks {
            let wanted: Vec<_> = announced.iter().filter(|t| hook.wants(t.severity)).cloned().collect();
            if !wanted.is_empty() {
                let body = webhook::body(&detector, &wanted);
                tokio::spawn(webhook::post(self.http.clone(), hook.clone(), body));
            }
        }
        let request = findings::log_records(&detector, &announced, now_nanos() as u64);
        let request = Arc::new(Request::from_payload(&Payload::Logs(request)));
        for output in &self.outputs {
            output.enqueue_findings(Arc::clone(&request)).await;
        }
    }
}
