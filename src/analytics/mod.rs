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

mod config;
pub mod detector;
pub mod findings;
mod history;
pub mod lifecycle;
mod pack;
pub mod query;
mod runner;
mod signals;
mod webhook;
pub mod window;
mod windowing;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::config::Problem;
use crate::memory::{MemoryBudget, Part};
use crate::otlp::semconv::TagNames;
use crate::pipeline::component::{ExporterContext, ExporterSettings, Settings, StartError, StartedExporter};
use crate::pipeline::queue::ConsumerQueue;
use crate::registry::RegistryHandle;
use crate::rows::KeptColumns;
use crate::telemetry::metrics::Metrics;
use lifecycle::Lifecycle;
use runner::Detectors;
use signals::FindingFiles;
use window::WindowStore;
use windowing::Windowing;

pub use config::{AnalyticsConfig, Columns};
pub use history::Rollup;
pub use runner::{check, kept_columns};

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
            memory,
            registry,
            tags,
            logs_outputs,
            workers,
            ..
        } = context;
        let shared = Shared { metrics, memory };
        let (queue, service) = start(name, self, registry.cloned(), tags, logs_outputs, shared, workers);
        Ok(StartedExporter {
            queue,
            routes: Some(query::router(service)),
        })
    }
}

/// What analytics shares with the rest of the process.
pub struct Shared<'a> {
    pub metrics: &'a Arc<Metrics>,
    pub memory: &'a Arc<MemoryBudget>,
}

/// Starts analytics; returns the queue the pipelines feed and the ad-hoc query service.
/// The history rollup is planned once, before ingest and the detectors start.
pub fn start(
    name: &str,
    config: &AnalyticsConfig,
    registry: Option<Arc<RegistryHandle>>,
    tags: TagNames,
    outputs: Vec<ConsumerQueue>,
    shared: Shared<'_>,
    workers: &mut JoinSet<()>,
) -> (ConsumerQueue, query::QueryService) {
    let Shared { metrics, memory } = shared;
    let (tx, rx) = mpsc::channel(config.queue_size.max(1));
    let store = Arc::new(RwLock::new(WindowStore::default()));
    let (closed_tx, closed_rx) = watch::channel(0i64);
    let mut ingest = Windowing {
        config: config.clone(),
        store: Arc::clone(&store),
        registry,
        tags: Arc::new(tags),
        metrics: Arc::clone(metrics),
        closed: closed_tx,
        rollup: None,
        offered_spans: 0,
        percentage: config.sampling_percentage,
        kept_spans: 0.0,
        held: memory.charge(Part::Analytics, 0),
    };
    let signals = config.signals_path.clone().map(FindingFiles::new);
    let detectors = Detectors {
        config: config.clone(),
        store: Arc::clone(&store),
        outputs,
        metrics: Arc::clone(metrics),
        lifecycle: Lifecycle::restore(signals.iter().flat_map(FindingFiles::restore)),
        signals,
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
    let queue = ConsumerQueue::new(name, tx, false, None, (memory, Part::Analytics), metrics);
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
