//! The `service` section: pipelines, fleetpipe's own telemetry and shutdown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// How components are wired, and fleetpipe's own endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Pipelines keyed `traces`, `metrics`, `logs` or `<signal>/<name>`.
    pub pipelines: BTreeMap<String, PipelineConfig>,
    /// Logs and metrics about fleetpipe itself.
    pub telemetry: TelemetryConfig,
    /// The health endpoints `/healthz` and `/readyz`.
    pub health: HealthConfig,
    /// On SIGTERM/SIGINT, how long to keep flushing batches and draining exporter queues
    /// before exiting; what is still unsent then is reported and counted as dropped.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// The memory budget in MiB that request bodies, memory queues, analytics and the archive
    /// draw from; above 80 % of it receivers refuse new data with UNAVAILABLE / 503 and a retry
    /// hint. Default: 80 % of the cgroup's memory limit when there is one, else 1024.
    pub memory_limit_mib: Option<usize>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            pipelines: BTreeMap::new(),
            telemetry: TelemetryConfig::default(),
            health: HealthConfig::default(),
            shutdown_timeout: Duration::from_secs(30),
            memory_limit_mib: None,
        }
    }
}

/// One pipeline: receivers → processors (in order) → every exporter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Receivers feeding the pipeline.
    pub receivers: Vec<String>,
    /// Processors applied in order.
    #[serde(default)]
    pub processors: Vec<String>,
    /// Exporters that each receive everything the pipeline carries.
    pub exporters: Vec<String>,
    /// Requests waiting between the receivers and the batch step; when full, clients get
    /// UNAVAILABLE / 503 and retry.
    #[serde(default = "default_pipeline_queue")]
    pub queue_size: usize,
}

fn default_pipeline_queue() -> usize {
    256
}

/// fleetpipe's own logs and metrics.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    pub logs: LogsConfig,
    pub metrics: MetricsConfig,
}

/// fleetpipe's own logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Filter in `RUST_LOG` syntax (`info`, `fleetpipe=debug,warn`); `RUST_LOG` wins when set.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Output format of fleetpipe's own logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The Prometheus endpoint `GET /metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address to serve on (the Collector's 127.0.0.1:8888).
    pub endpoint: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            endpoint: SocketAddr::from(([127, 0, 0, 1], 8888)),
        }
    }
}

/// The health endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Address to serve on (the Collector's health_check port, 127.0.0.1:13133).
    pub endpoint: SocketAddr,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            endpoint: SocketAddr::from(([127, 0, 0, 1], 13133)),
        }
    }
}
