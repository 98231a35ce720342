//! Settings of the exporters: `otlp`, `otlp_http`, `debug` and `file`, and their checks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Problem;
pub use crate::config::client_tls::{ClientIdentity, TlsConfig};
use url::Url;

/// Settings of the OTLP exporters: `otlp` (gRPC) and `otlp_http` (protobuf over HTTP).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpExporterConfig {
    /// Where to send. For `otlp`, e.g. `https://otlp.vendor.example:4317`; for `otlp_http` the
    /// base URL to which `/v1/traces`, `/v1/metrics` and `/v1/logs` are appended.
    pub endpoint: Url,
    /// `otlp_http` only: full URL for traces, overriding `endpoint` + `/v1/traces`.
    #[serde(default)]
    pub traces_endpoint: Option<Url>,
    /// `otlp_http` only: full URL for metrics, overriding `endpoint` + `/v1/metrics`.
    #[serde(default)]
    pub metrics_endpoint: Option<Url>,
    /// `otlp_http` only: full URL for logs, overriding `endpoint` + `/v1/logs`.
    #[serde(default)]
    pub logs_endpoint: Option<Url>,
    /// Extra request headers (gRPC metadata), e.g. an API key: `${env:VENDOR_KEY}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request compression: `gzip` (default), `zstd` or `none`.
    #[serde(default)]
    pub compression: Compression,
    /// Settings of the compression, as the Collector's `compression_params`.
    #[serde(default)]
    pub compression_params: CompressionParams,
    /// Time allowed for one attempt.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// TLS settings for `https` endpoints.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Retry of failed attempts that the OTLP specification calls retryable.
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
    /// The exporter's own bounded queue.
    #[serde(default)]
    pub sending_queue: QueueConfig,
}

/// The `otlp` exporter: OTLP over gRPC.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct OtlpGrpcExporterConfig(pub OtlpExporterConfig);

/// The `otlp_http` exporter: OTLP protobuf over HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct OtlpHttpExporterConfig(pub OtlpExporterConfig);

impl OtlpExporterConfig {
    /// The settings that work but expose the data.
    pub fn warnings(&self) -> Vec<Problem> {
        let mut warnings = Vec::new();
        if self.tls.insecure_skip_verify {
            warnings.push(Problem::new(
                "tls.insecure_skip_verify",
                "the destination's certificate is not checked: whoever is on the network path can read and change the data",
            ));
        }
        warnings
    }

    /// The settings that cannot work.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !matches!(self.endpoint.scheme(), "http" | "https") {
            problems.push(Problem::new("endpoint", "not an http:// or https:// URL"));
        }
        if let Err(message) = self.tls.identity() {
            problems.push(Problem::new("tls", message));
        }
        if let Some(level) = self.compression_params.level
            && !self.compression.levels().contains(&level)
        {
            let levels = self.compression.levels();
            problems.push(Problem::new(
                "compression_params.level",
                format!(
                    "{level} is not a level of {} compression ({}..={})",
                    self.compression.encoding().header_value().unwrap_or("no"),
                    levels.start(),
                    levels.end()
                ),
            ));
        }
        problems.extend(queue_and_retry_problems(&self.sending_queue, &self.retry_on_failure));
        problems
    }
}

/// Queue and retry settings that cannot work, as every exporter with a sending queue has them.
pub fn queue_and_retry_problems(queue: &QueueConfig, retry: &RetryConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    if queue.queue_size == 0 || queue.num_consumers == 0 || queue.max_megabytes == 0 {
        problems.push(Problem::new(
            "sending_queue",
            "queue_size, num_consumers and max_megabytes must be at least 1",
        ));
    }
    if queue.when_full == WhenFull::DropOldest && queue.storage != Storage::Disk {
        problems.push(Problem::new(
            "sending_queue.when_full",
            "drop_oldest needs `storage: disk` (a memory queue drops the new batch: `drop`)",
        ));
    }
    if queue.storage == Storage::Disk && queue.fsync == FsyncPolicy::Interval && queue.fsync_interval.is_zero() {
        problems.push(Problem::new(
            "sending_queue.fsync_interval",
            "must be longer than 0s (or `fsync: always`)",
        ));
    }
    if !(0.0..=1.0).contains(&retry.randomization_factor) || retry.multiplier < 1.0 {
        problems.push(Problem::new(
            "retry_on_failure",
            "randomization_factor must be within 0..=1 and multiplier at least 1",
        ));
    }
    problems
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Request compression of an exporter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    None,
}

impl Compression {
    pub fn encoding(self) -> crate::compression::Encoding {
        match self {
            Compression::Gzip => crate::compression::Encoding::Gzip,
            Compression::Zstd => crate::compression::Encoding::Zstd,
            Compression::None => crate::compression::Encoding::Identity,
        }
    }

    /// The levels the algorithm offers.
    pub fn levels(self) -> std::ops::RangeInclusive<u32> {
        match self {
            Compression::Gzip => 1..=9,
            Compression::Zstd => 1..=22,
            Compression::None => 0..=0,
        }
    }
}

/// `compression_params` of an exporter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompressionParams {
    /// Compression level: gzip 1..=9, zstd 1..=22. Default 1, the fastest: at the request
    /// sizes of a pipeline hop, higher levels cost several times the CPU for a few percent
    /// fewer bytes.
    pub level: Option<u32>,
}

impl CompressionParams {
    pub fn level_or_default(&self) -> u32 {
        self.level.unwrap_or(1)
    }
}

/// Exponential backoff with jitter between attempts, as the Collector's `retry_on_failure`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retry at all.
    pub enabled: bool,
    /// Wait before the first retry.
    #[serde(with = "humantime_serde")]
    pub initial_interval: Duration,
    /// Longest wait between two attempts.
    #[serde(with = "humantime_serde")]
    pub max_interval: Duration,
    /// Give up and count the data as failed after this long (0s: never).
    #[serde(with = "humantime_serde")]
    pub max_elapsed_time: Duration,
    /// Growth of the wait after each attempt.
    pub multiplier: f64,
    /// Random spread of each wait, as a fraction of it (0 to 1).
    pub randomization_factor: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: true,
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
            multiplier: 1.5,
            randomization_factor: 0.5,
        }
    }
}

/// The exporter's bounded queue, consumers and batching.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Batches held while the destination is slow or down (memory storage).
    pub queue_size: usize,
    /// Batches sent concurrently.
    pub num_consumers: usize,
    /// Megabytes the queue may hold: of protobuf in memory, or of segment files on disk. Past
    /// it the queue is full, so a destination that is down cannot grow fleetpipe without bound.
    pub max_megabytes: u64,
    /// When the queue is full: `block` waits, pushing back to clients (UNAVAILABLE / 503 with
    /// a retry hint), so nothing acknowledged is dropped; `drop` drops the new batch for this
    /// exporter only (counted in `fleetpipe_exporter_dropped_items_total`), so a dead vendor
    /// never stalls the others; `drop_oldest` (disk queues) drops the oldest batches waiting
    /// instead, counted as `oldest_dropped`.
    pub when_full: WhenFull,
    /// `memory`, or `disk`: batches are appended to segment files in `directory` and survive a
    /// crash or restart.
    pub storage: Storage,
    /// The disk queue's folder; default `fleetpipe-data/queues/<exporter name>`.
    pub directory: Option<PathBuf>,
    /// When a disk queue's appends reach the disk: `always` (before the batch counts as
    /// queued) or `interval` (every `fsync_interval`).
    pub fsync: FsyncPolicy,
    #[serde(with = "humantime_serde")]
    pub fsync_interval: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            queue_size: 1000,
            num_consumers: 10,
            max_megabytes: 256,
            when_full: WhenFull::Block,
            storage: Storage::Memory,
            directory: None,
            fsync: FsyncPolicy::Interval,
            fsync_interval: Duration::from_millis(100),
        }
    }
}

impl QueueConfig {
    /// The spool settings of a `storage: disk` queue of exporter `name`.
    pub fn spool_config(&self, name: &str) -> crate::spool::SpoolConfig {
        let folder: String = name
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        crate::spool::SpoolConfig {
            directory: self
                .directory
                .clone()
                .unwrap_or_else(|| PathBuf::from("fleetpipe-data/queues").join(folder)),
            max_bytes: self.max_megabytes.saturating_mul(1 << 20),
            segment_bytes: SEGMENT_BYTES
                .min(self.max_megabytes.saturating_mul(1 << 20) / 4)
                .max(1 << 16),
            fsync: match self.fsync {
                FsyncPolicy::Always => crate::spool::Fsync::Always,
                FsyncPolicy::Interval => crate::spool::Fsync::Interval(self.fsync_interval),
            },
        }
    }
}

/// Size at which a disk queue starts a new segment file: segments are deleted whole, so
/// smaller ones free disk sooner, larger ones mean fewer files.
const SEGMENT_BYTES: u64 = 16 << 20;

/// What a full queue does with a new batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Waits for room, pushing back to clients.
    #[default]
    Block,
    /// Drops the new batch.
    Drop,
    /// Drops the oldest batches waiting in a disk queue to take the new one (a live view of
    /// an outage rather than its beginning).
    DropOldest,
}

/// Where an exporter's queue holds its batches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    #[default]
    Memory,
    Disk,
}

/// When a disk queue's appends reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    Always,
    #[default]
    Interval,
}

/// The `debug` exporter: prints what arrives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DebugExporterConfig {
    /// `basic`: one line per batch; `detailed`: the batch as OTLP/JSON.
    pub verbosity: Verbosity,
}

/// How much the `debug` exporter prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    #[default]
    Basic,
    Detailed,
}

/// The `file` exporter: OTLP/JSON lines, one export request per line, rotated by size.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileExporterConfig {
    /// File to append to; its folder is created.
    pub path: PathBuf,
    /// Size-based rotation.
    #[serde(default)]
    pub rotation: RotationConfig,
}

/// Rotation of the `file` exporter's output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RotationConfig {
    /// Rotate once the file reaches this size.
    pub max_megabytes: u64,
    /// Rotated files kept as `path.1` … `path.N`; older ones are deleted.
    pub max_backups: usize,
}

impl Default for RotationConfig {
    fn default() -> Self {
        RotationConfig {
            max_megabytes: 100,
            max_backups: 3,
        }
    }
}
