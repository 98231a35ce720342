//! The `archive` exporter: every enriched span, metric data point and log record it receives,
//! as Parquet files in a Hive-partitioned folder (`table=spans/date=2026-12-05/hour=09/`),
//! with the analytics tables' schemas. It is the source of the fleet report and of ad-hoc
//! queries, and any engine that reads Parquet reads it as it is.
//!
//! Forwarding never waits for it: its queue sheds and counts what arrives while it is behind,
//! unless `block_on_overflow` is set. It is not sampled.
//!
//! Cancellation: the writer task ends when its queue closes, after closing every open file.
//! A file is written under a hidden temporary name and renamed when closed, so a reader never
//! sees half a file; a start removes the temporary files a killed process left.

mod files;
mod read;
mod remote;

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::config::Problem;
use crate::memory::Part;
use crate::otlp::Signal;
use crate::pipeline::component::{ExporterContext, ExporterSettings, Settings, StartError, StartedExporter};
use crate::pipeline::queue::{ConsumerQueue, Queued};
use crate::rows::{KeptColumns, WindowBuilder};
use crate::telemetry::metrics::Metrics;
use files::{Files, TABLES};
pub use read::{Columns, Period, session};
pub use remote::ObjectStoreSettings;
use remote::Uploader;

/// Why the archive could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The folder or a file could not be created, opened or renamed: the disk, the path or
    /// its permissions (the environment's to fix).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written (the disk filling up mid-write) or is not Parquet of the
    /// table's schema (written by something else).
    #[error("{path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// The object store refused or could not be reached: its address, the credentials, the
    /// network.
    #[error("{location}: {source}")]
    ObjectStore {
        location: String,
        #[source]
        source: object_store::Error,
    },
    /// A query over the archive failed: the user's SQL, or our bug.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

/// Settings of the `archive` exporter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// Folder of the archive, created when missing; or `s3://bucket/prefix` in object
    /// storage (see `object_store`).
    pub path: PathBuf,
    /// How the object store of an `s3://` path is reached, and where files wait to go.
    pub object_store: ObjectStoreSettings,
    /// A file is closed, and becomes visible, once it holds this many MiB…
    pub max_file_mib: u64,
    /// …or once it has been open this long.
    #[serde(with = "humantime_serde")]
    pub max_file_age: Duration,
    /// Files older than this are deleted; `0s` keeps them.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// The archive's size at most, in MiB; past it the oldest files are deleted; 0: no limit.
    pub max_total_mib: u64,
    /// Batches waiting to be written; past it input is shed (counted), unless
    /// `block_on_overflow` is set.
    pub queue_size: usize,
    /// When the queue is full, wait (pushing back to clients) instead of shedding.
    pub block_on_overflow: bool,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            path: PathBuf::from("fleetpipe-data/archive"),
            object_store: ObjectStoreSettings::default(),
            max_file_mib: 64,
            max_file_age: Duration::from_secs(60),
            retention: Duration::from_secs(7 * 24 * 3600),
            max_total_mib: 10 * 1024,
            queue_size: 64,
            block_on_overflow: false,
        }
    }
}

impl Settings for ArchiveConfig {
    fn problems(&self) -> Vec<Problem> {
        let checks = [
            (self.max_file_mib == 0, "max_file_mib", "must be at least 1"),
            (self.max_file_age.is_zero(), "max_file_age", "must be longer than 0s"),
            (self.queue_size == 0, "queue_size", "must be at least 1"),
        ];
        let mut problems: Vec<Problem> = checks
            .into_iter()
            .filter(|(failed, _, _)| *failed)
            .map(|(_, key, why)| Problem::new(key, why))
            .collect();
        problems.extend(remote::problems(&self.path, &self.object_store));
        problems
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl ExporterSettings for ArchiveConfig {
    fn leaves_the_host(&self) -> bool {
        remote::in_object_storage(&self.path)
    }

    fn start(&self, context: ExporterContext<'_>) -> Result<StartedExporter, StartError> {
        let key = || format!("exporters.{}", context.name);
        let uploader = Uploader::new(&self.path, &self.object_store).map_err(|e| StartError::new(key(), e))?;
        let root = uploader.as_ref().map_or(self.path.as_path(), Uploader::staging);
        let files = Files::open(self, root).map_err(|e| StartError::new(key(), e))?;
        let (tx, rx) = mpsc::channel(self.queue_size);
        let flush_every = (self.max_file_age / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        let (done, writer_done) = oneshot::channel();
        if let Some(uploader) = uploader {
            context
                .workers
                .spawn(uploader.run(context.name.to_owned(), flush_every, writer_done));
        }
        let writer = Writer {
            name: context.name.to_owned(),
            builder: WindowBuilder::new(0)
                .tagged(Arc::new(context.tags.clone()))
                .with_findings(),
            files: Some(files),
            done: Some(done),
            metrics: Arc::clone(context.metrics),
            flush_every,
        };
        context.workers.spawn(writer.run(rx));
        Ok(StartedExporter {
            queue: ConsumerQueue::new(
                context.name,
                tx,
                self.block_on_overflow,
                None,
                (context.memory, Part::Archive),
                context.metrics,
            ),
            routes: None,
        })
    }
}

/// Rows held before they are written, at most: written in larger batches, Parquet's pages
/// compress better; held longer, they cost memory.
const FLUSH_ROWS: usize = 32 * 1024;

/// Turns batches into rows and writes them to the archive's files.
struct Writer {
    name: String,
    builder: WindowBuilder,
    /// Away while a blocking task writes them; gone if that task panicked (logged).
    files: Option<Files>,
    /// Tells the uploads, when the archive is in object storage, that every file is closed.
    done: Option<oneshot::Sender<()>>,
    metrics: Arc<Metrics>,
    flush_every: Duration,
}

impl Writer {
    async fn run(mut self, mut queue: mpsc::Receiver<Queued>) {
        let mut ticker = tokio::time::interval(self.flush_every);
        loop {
            tokio::select! {
                received = queue.recv() => match received {
                    Some(queued) => {
                        if let Err(error) = self.builder.add(&queued.request) {
                            tracing::warn!(exporter = %self.name, %error, "The archive left out records of a batch.");
                        }
                        if self.builder.rows >= FLUSH_ROWS {
                            self.flush().await;
                        }
                    }
                    None => break,
                },
                _ = ticker.tick() => self.flush().await,
            }
        }
        self.flush().await;
        if let Some(files) = self.files.take() {
            let closed = tokio::task::spawn_blocking(move || files.close_all()).await;
            match closed {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(exporter = %self.name, %error, "Could not close an archive file."),
                Err(error) => tracing::error!(exporter = %self.name, %error, "The archive's writer failed."),
            }
        }
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }

    /// Writes the rows held, and closes the files that are due, off the runtime's threads.
    async fn flush(&mut self) {
        if self.builder.rows == 0 && self.files.as_ref().is_none_or(Files::nothing_open) {
            return;
        }
        let batches = match self.builder.close(0, KeptColumns::ALL) {
            Ok(batches) => batches,
            Err(error) => {
                tracing::error!(exporter = %self.name, %error, "Could not build the archive's rows; they are left out.");
                return;
            }
        };
        let Some(mut files) = self.files.take() else {
            return;
        };
        let written = tokio::task::spawn_blocking(move || {
            let outcome = files.write(batches);
            (files, outcome)
        })
        .await;
        let Ok((files, outcome)) = written.inspect_err(
            |error| tracing::error!(exporter = %self.name, %error, "The archive's writer failed; the archive stops."),
        ) else {
            return;
        };
        self.files = Some(files);
        for (table, outcome) in TABLES.iter().zip(outcome) {
            if let Err((rows, error)) = outcome {
                tracing::error!(exporter = %self.name, table, rows, %error, "Could not write to the archive; rows dropped.");
                self.metrics
                    .exporter_failed
                    .get_or_create(&self.metrics.exporter_loss(&self.name, table_signal(table), "write"))
                    .inc_by(rows as u64);
            }
        }
    }
}

/// The signal whose records a table holds.
fn table_signal(table: &str) -> Signal {
    match table {
        "spans" => Signal::Traces,
        "metric_points" => Signal::Metrics,
        _ => Signal::Logs,
    }
}
