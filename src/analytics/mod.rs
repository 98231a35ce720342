//! Anomaly detection: enriched telemetry becomes Arrow tables in rolling windows, the SQL
//! detectors in `queries/` run on DataFusion over them, and each finding goes out as an OTLP
//! log record and, when configured, as a signal file.
//!
//! Analytics is configured as an exporter (`exporters.analytics`) so that it receives the
//! pipeline's batches by the same fan-out as any destination: its queue never blocks, and
//! what arrives while it is behind is shed and counted
//! (`fleetpipe_exporter_dropped_items_total{exporter="analytics"}`), never stalling ingest.
//!
//! Cancellation: the ingest task ends when its queue closes; the detector task ends when the
//! ingest task does. Neither holds data anyone acknowledged.

pub mod detector;
pub mod findings;
pub mod query;
pub mod sampling;
pub mod tables;
mod webhook;
pub mod window;

use std::any::Any;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::record_batch::RecordBatch;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::config::Problem;
use crate::otlp::semconv::TagNames;
use crate::otlp::{Payload, Request, Signal};
use crate::pipeline::component::{ExporterContext, ExporterSettings, Settings, StartError, StartedExporter};
use crate::pipeline::queue::{ConsumerQueue, Queued};
use crate::registry::RegistryHandle;
use crate::telemetry::metrics::Metrics;
use detector::{Detector, DetectorError, PlannedQuery, Prepared};
use findings::FindingFiles;
use sampling::TraceSampler;
use tables::{KeptColumns, WindowBuilder};
use window::{ClosedWindow, WindowStore};

/// Settings of the `analytics` exporter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// Folder of detector files (`*.sql`), watched for changes.
    pub queries: PathBuf,
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
    pub webhooks: Vec<webhook::WebhookConfig>,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            queries: PathBuf::from("queries"),
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
    fn memory_limit(&self) -> usize {
        self.memory_limit_mib.saturating_mul(1024 * 1024)
    }

    /// The settings that cannot work, as `(key, why)`.
    fn invalid_settings(&self) -> Vec<(&'static str, &'static str)> {
        let checks = [
            (self.window.is_zero(), "window", "must be longer than 0s"),
            (self.queue_size == 0, "queue_size", "must be at least 1"),
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

    /// The share of traces the window after one offered `offered_spans` keeps.
    fn next_percentage(&self, offered_spans: usize) -> f64 {
        sampling::percentage_within(
            self.sampling_percentage,
            self.max_spans_per_second,
            offered_spans,
            self.window,
        )
    }
}

/// Parses and plans every detector in the folder, as start-up does; for `fleetpipe validate`.
pub async fn check(config: &AnalyticsConfig) -> Result<usize, Vec<DetectorError>> {
    let store = Arc::new(RwLock::new(WindowStore::default()));
    let (prepared, errors) = load_detectors(&config.queries, config, &store).await;
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
    let (prepared, _) = load_detectors(&config.queries, config, &store).await;
    Ok(columns_to_keep(
        config.columns,
        Rollup::new(config).await?.columns,
        &prepared,
    ))
}

/// Those `rollup` and the `detectors` read, unless `columns` says all.
fn columns_to_keep<'a>(
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

impl Settings for AnalyticsConfig {
    fn problems(&self) -> Vec<Problem> {
        self.invalid_settings()
            .into_iter()
            .map(|(key, why)| Problem::new(key, why))
            .collect()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[async_trait::async_trait]
impl ExporterSettings for AnalyticsConfig {
    fn emits_logs(&self) -> bool {
        true
    }

    /// Parses and plans every detector in the folder, as the running detectors do.
    async fn check(&self) -> Result<Option<String>, Vec<String>> {
        match check(self).await {
            Ok(planned) => Ok(Some(format!("{planned} detector(s) planned"))),
            Err(errors) => Err(errors.iter().map(ToString::to_string).collect()),
        }
    }

    fn start(&self, context: ExporterContext<'_>) -> Result<StartedExporter, StartError> {
        if context.logs_outputs.is_empty() {
            tracing::warn!(exporter = %context.name, "No logs pipeline with an exporter: anomaly findings go only to signal files.");
        }
        let ExporterContext {
            name,
            metrics,
            registry,
            tags,
            logs_outputs,
            workers,
            ..
        } = context;
        let (queue, service) = start(name, self, registry.cloned(), tags, logs_outputs, metrics, workers);
        Ok(StartedExporter {
            queue,
            routes: Some(query::router(service)),
        })
    }
}

/// Starts analytics; returns the queue the pipelines feed and the ad-hoc query service.
/// The history rollup is planned once, before ingest and the detectors start.
pub fn start(
    name: &str,
    config: &AnalyticsConfig,
    registry: Option<Arc<RegistryHandle>>,
    tags: TagNames,
    outputs: Vec<ConsumerQueue>,
    metrics: &Arc<Metrics>,
    workers: &mut JoinSet<()>,
) -> (ConsumerQueue, query::QueryService) {
    let (tx, rx) = mpsc::channel(config.queue_size.max(1));
    let store = Arc::new(RwLock::new(WindowStore::default()));
    let (closed_tx, closed_rx) = watch::channel(0i64);
    let mut ingest = Ingest {
        config: config.clone(),
        store: Arc::clone(&store),
        registry,
        tags: Arc::new(tags),
        metrics: Arc::clone(metrics),
        closed: closed_tx,
        rollup: None,
        offered_spans: 0,
        percentage: config.sampling_percentage,
    };
    let detectors = Detectors {
        config: config.clone(),
        store: Arc::clone(&store),
        outputs,
        metrics: Arc::clone(metrics),
        signals: config.signals_path.clone().map(FindingFiles::new),
        loaded: BTreeMap::new(),
        failed: BTreeMap::new(),
        http: reqwest::Client::new(),
    };
    let planning = config.clone();
    workers.spawn(async move {
        ingest.rollup = Rollup::new(&planning)
            .await
            .inspect_err(|error| {
                tracing::error!(%error, "Could not plan the history rollup; windows close without it and build every column.")
            })
            .ok();
        let rollup_columns = ingest.rollup.as_ref().map_or(KeptColumns::ALL, |r| r.columns);
        tokio::join!(ingest.run(rx), detectors.run(closed_rx, rollup_columns));
    });
    let queue = ConsumerQueue::new(name, tx, false, None, metrics);
    (
        queue,
        query::QueryService::new(store, config.retention, config.memory_limit()),
    )
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Turns incoming batches into window rows and closes windows on time.
struct Ingest {
    config: AnalyticsConfig,
    store: Arc<RwLock<WindowStore>>,
    registry: Option<Arc<RegistryHandle>>,
    /// The names of the registry tags the records carry.
    tags: Arc<TagNames>,
    metrics: Arc<Metrics>,
    closed: watch::Sender<i64>,
    /// Planned when analytics starts; without it windows close without history.
    rollup: Option<Rollup>,
    /// Spans offered to the window being built, kept or not: they set the next one's share.
    offered_spans: usize,
    /// The share of traces the window being built keeps.
    percentage: f64,
}

impl Ingest {
    async fn run(mut self, mut queue: mpsc::Receiver<Queued>) {
        let window = self.config.window.as_nanos().max(1) as i64;
        let start_of = |t: i64| t - t.rem_euclid(window);
        let mut builder = WindowBuilder::keeping(start_of(now_nanos()), self.kept())
            .tagged(Arc::clone(&self.tags))
            .sampling(TraceSampler::percentage(self.percentage));
        self.metrics.analytics_sampling_percentage.set(self.percentage);
        let mut ticker = tokio::time::interval((self.config.window / 10).max(Duration::from_millis(10)));
        loop {
            tokio::select! {
                received = queue.recv() => match received {
                    Some(queued) => {
                        builder = self.roll(builder, start_of(now_nanos()), window).await;
                        if queued.request.signal() == Signal::Traces {
                            self.offered_spans += queued.request.item_count();
                        }
                        if let Err(error) = builder.add(&queued.request) {
                            tracing::warn!(%error, "Analytics left out records of a batch.");
                        }
                    }
                    None => break,
                },
                _ = ticker.tick() => builder = self.roll(builder, start_of(now_nanos()), window).await,
            }
        }
    }

    fn kept(&self) -> KeptColumns {
        self.store.read().unwrap_or_else(|e| e.into_inner()).kept
    }

    /// Closes the current window when the clock has moved past it; the next one builds the
    /// columns the detectors now read and keeps the share of traces that the closed one's
    /// offered spans call for.
    async fn roll(&mut self, mut builder: WindowBuilder, current: i64, window: i64) -> WindowBuilder {
        if builder.window_start() == current {
            return builder;
        }
        let start = builder.window_start();
        let sampling_percentage = self.percentage;
        self.percentage = self.config.next_percentage(std::mem::take(&mut self.offered_spans));
        self.metrics.analytics_sampling_percentage.set(self.percentage);
        match builder.close(current, self.kept()) {
            Ok(batches) => {
                self.close(ClosedWindow {
                    start,
                    end: start + window,
                    batches,
                    sampling_percentage,
                })
                .await
            }
            Err(error) => tracing::error!(%error, "Could not build the analytics window; it is skipped."),
        }
        builder.sampling(TraceSampler::percentage(self.percentage))
    }

    async fn close(&self, closed: ClosedWindow) {
        let end = closed.end;
        let rollup = match &self.rollup {
            Some(rollup) => rollup.of(&closed).await,
            None => None,
        };
        let integrations = self.registry.as_ref().map(|r| integrations_batch(&r.current()));
        {
            let mut store = self.store.write().unwrap_or_else(|e| e.into_inner());
            if let Some(rollup) = rollup {
                store.history.push_back((closed.start, rollup));
            }
            store.windows.push_back(closed);
            if let Some(Ok(integrations)) = integrations {
                store.integrations = Some(integrations);
            }
            store.evict(
                end - self.config.retention.as_nanos() as i64,
                end - self.config.history_retention.as_nanos() as i64,
                self.config.max_windows_mib.saturating_mul(1024 * 1024),
            );
            self.metrics.analytics_memory_bytes.set(store.memory_bytes() as i64);
        }
        let _ = self.closed.send(end);
    }
}

/// Per-window rollups for baselines: spans, errors, throttling, p95 latency and tokens per
/// agent, layer, integration and tool.
const HISTORY_SQL: &str = "
SELECT window_start, agent, layer, integration_id, tool_name,
       CAST(count(*) AS BIGINT) AS spans,
       CAST(count(*) AS BIGINT) AS kept_spans,
       CAST(sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END) AS BIGINT) AS errors,
       CAST(sum(CASE WHEN http_status_code = 429 OR grpc_status_code = 8 OR error_type IN ('429', 'RESOURCE_EXHAUSTED', 'rate_limited') THEN 1 ELSE 0 END) AS BIGINT) AS throttled,
       CAST(approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS DOUBLE) AS p95_duration_ms,
       CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
       CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens
FROM spans
GROUP BY window_start, agent, layer, integration_id, tool_name";

/// The columns of `HISTORY_SQL` that count spans or tokens, scaled when a window sampled;
/// `kept_spans` is not: it is the sample the estimates rest on, what a detector's minimum of
/// evidence should count.
const HISTORY_COUNTS: [&str; 5] = ["spans", "errors", "throttled", "input_tokens", "output_tokens"];

/// The history rollup, planned once like a detector; each run reads the window being closed.
pub struct Rollup {
    /// The window being rolled up, for the length of a run.
    closing: Arc<RwLock<WindowStore>>,
    query: PlannedQuery,
    /// The columns of `spans` the rollup reads.
    pub columns: KeptColumns,
}

impl Rollup {
    pub async fn new(config: &AnalyticsConfig) -> datafusion::error::Result<Rollup> {
        let closing = Arc::new(RwLock::new(WindowStore::default()));
        let (query, columns) = PlannedQuery::new(&closing, config.window, HISTORY_SQL, config.memory_limit()).await?;
        tracing::info!("History rollup planned.");
        Ok(Rollup {
            closing,
            query,
            columns,
        })
    }

    /// The rows `closed` adds to `history`; `None`, logged, when the rollup fails.
    pub async fn of(&self, closed: &ClosedWindow) -> Option<RecordBatch> {
        let hold = |windows: Vec<ClosedWindow>| {
            self.closing.write().unwrap_or_else(|e| e.into_inner()).windows = windows.into();
        };
        hold(vec![closed.clone()]);
        let result = self
            .query
            .run()
            .await
            .and_then(|batches| Ok(datafusion::arrow::compute::concat_batches(&tables::HISTORY, &batches)?))
            .and_then(|rollup| Ok(estimated_counts(rollup, closed.sampling_percentage)?));
        hold(Vec::new());
        result
            .inspect_err(|error| tracing::error!(%error, "Could not roll up the analytics window into history."))
            .ok()
    }
}

/// The rollup's counts of a window that kept `percentage` % of traces, scaled to estimates of
/// all its spans: windows kept at different shares then compare as baselines.
fn estimated_counts(rollup: RecordBatch, percentage: f64) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    if percentage >= 100.0 {
        return Ok(rollup);
    }
    let factor = 100.0 / percentage;
    let schema = rollup.schema();
    let columns = schema
        .fields()
        .iter()
        .zip(rollup.columns())
        .map(|(field, column)| match column.as_primitive_opt::<Int64Type>() {
            Some(counts) if HISTORY_COUNTS.contains(&field.name().as_str()) => {
                Arc::new(counts.unary::<_, Int64Type>(|count| (count as f64 * factor).round() as i64)) as ArrayRef
            }
            _ => Arc::clone(column),
        })
        .collect();
    RecordBatch::try_new(schema, columns)
}

fn integrations_batch(
    registry: &crate::registry::Registry,
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let column = |f: &dyn Fn(&crate::registry::Integration) -> Option<String>| -> ArrayRef {
        Arc::new(registry.integrations.iter().map(f).collect::<StringArray>())
    };
    RecordBatch::try_new(
        tables::INTEGRATIONS.clone(),
        vec![
            column(&|i| Some(i.id.clone())),
            column(&|i| Some(i.name.clone())),
            column(&|i| Some(i.category.clone())),
            column(&|i| Some(i.kind.clone())),
            column(&|i| Some(i.connection.as_str().to_owned())),
            column(&|i| Some(i.layers.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(","))),
            column(&|i| i.governance.as_ref().and_then(|g| g.owner.clone())),
        ],
    )
}

/// Reads every `*.sql` in `folder`; returns the planned detectors and the files that failed.
async fn load_detectors(
    folder: &Path,
    config: &AnalyticsConfig,
    store: &Arc<RwLock<WindowStore>>,
) -> (Vec<Prepared>, Vec<DetectorError>) {
    let mut prepared = Vec::new();
    let mut errors = Vec::new();
    for (path, _) in sql_files(folder) {
        match load_detector(&path, config, store).await {
            Ok(detector) => prepared.push(detector),
            Err(error) => errors.push(error),
        }
    }
    if !folder.is_dir() {
        errors.push(DetectorError {
            file: folder.display().to_string(),
            line: 0,
            message: "detector folder not found".into(),
        });
    }
    (prepared, errors)
}

async fn load_detector(
    path: &Path,
    config: &AnalyticsConfig,
    store: &Arc<RwLock<WindowStore>>,
) -> Result<Prepared, DetectorError> {
    let text = std::fs::read_to_string(path).map_err(|e| DetectorError {
        file: path.display().to_string(),
        line: 0,
        message: e.to_string(),
    })?;
    let detector = Detector::parse(path, &text, config.window)?;
    Prepared::new(detector, store, config.memory_limit()).await
}

/// The `*.sql` files of a folder with a fingerprint (modification time and size).
fn sql_files(folder: &Path) -> BTreeMap<PathBuf, Fingerprint> {
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
struct Detectors {
    config: AnalyticsConfig,
    store: Arc<RwLock<WindowStore>>,
    outputs: Vec<ConsumerQueue>,
    metrics: Arc<Metrics>,
    signals: Option<FindingFiles>,
    /// Loaded detectors by file.
    loaded: BTreeMap<PathBuf, Loaded>,
    /// Files that failed to load, by fingerprint, so each failure is logged once.
    failed: BTreeMap<PathBuf, Fingerprint>,
    /// Client for the webhooks.
    http: reqwest::Client,
}

/// A file's modification time and size: a change to either reloads it.
type Fingerprint = (SystemTime, u64);

struct Loaded {
    fingerprint: Fingerprint,
    prepared: Prepared,
    /// End of the window the detector last ran after.
    last_run: Option<i64>,
}

impl Detectors {
    /// `rollup` is the columns the history rollup reads.
    async fn run(mut self, mut closed: watch::Receiver<i64>, rollup: KeptColumns) {
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
    async fn reload(&mut self) {
        let files = sql_files(&self.config.queries);
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
    fn keep_columns(&self, rollup: KeptColumns) {
        let loaded = self.loaded.values().map(|loaded| &loaded.prepared);
        let kept = columns_to_keep(self.config.columns, rollup, loaded);
        self.store.write().unwrap_or_else(|e| e.into_inner()).kept = kept;
    }

    async fn run_one(&mut self, path: &Path, window_end: i64) {
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
        if let Some(signals) = &mut self.signals
            && let Err(error) = signals.record(&detector, &findings, SystemTime::now())
        {
            tracing::error!(detector = %detector.name, %error, "Could not write signal files.");
        }
        if findings.is_empty() {
            return;
        }
        let severity_labels = vec![
            ("detector".to_owned(), detector.name.clone()),
            ("severity".to_owned(), detector.severity.as_str().to_owned()),
        ];
        self.metrics
            .findings
            .get_or_create(&severity_labels)
            .inc_by(findings.len() as u64);
        for hook in self.config.webhooks.iter().filter(|h| h.wants(detector.severity)) {
            let body = webhook::body(&detector, &findings);
            tokio::spawn(webhook::post(self.http.clone(), hook.clone(), body));
        }
        let request = findings::log_records(&detector, &findings, now_nanos() as u64);
        let request = Arc::new(Request::from_payload(&Payload::Logs(request)));
        for output in &self.outputs {
            output.enqueue(Arc::clone(&request)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float64Array, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn rollup(spans: i64, errors: i64, tokens: i64, p95: f64) -> RecordBatch {
        let count = |n: i64| Arc::new(Int64Array::from(vec![n])) as ArrayRef;
        let schema = Arc::new(Schema::new(vec![
            Field::new("spans", DataType::Int64, false),
            Field::new("errors", DataType::Int64, false),
            Field::new("p95_duration_ms", DataType::Float64, true),
            Field::new("input_tokens", DataType::Int64, false),
        ]));
        let p95 = Arc::new(Float64Array::from(vec![p95])) as ArrayRef;
        RecordBatch::try_new(schema, vec![count(spans), count(errors), p95, count(tokens)]).expect("rollup")
    }

    /// Guarantees: a sampled window's counts and tokens are scaled by 100 / percentage, its
    /// percentiles are not, and a window that kept every trace is left as it is.
    #[test]
    fn sampled_rollups_estimate_every_span() {
        assert_eq!(
            estimated_counts(rollup(30, 3, 1_000, 12.5), 25.0).expect("scaled"),
            rollup(120, 12, 4_000, 12.5)
        );
        assert_eq!(
            estimated_counts(rollup(7, 1, 10, 3.0), 30.0).expect("scaled"),
            rollup(23, 3, 33, 3.0)
        );
        assert_eq!(
            estimated_counts(rollup(30, 3, 1_000, 12.5), 100.0).expect("kept"),
            rollup(30, 3, 1_000, 12.5)
        );
    }
}
