//! fleetpipe's own counters, served in Prometheus text format on `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::otlp::Signal;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiverLabels {
    pub receiver: String,
    pub transport: &'static str,
    pub signal: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    pub receiver: String,
    pub transport: &'static str,
    pub signal: &'static str,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExporterLabels {
    pub exporter: String,
    pub signal: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExporterLossLabels {
    pub exporter: String,
    pub signal: &'static str,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub exporter: String,
}

/// Attributes redacted for one exporter: `removed` or `hashed`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RedactionLabels {
    pub exporter: String,
    pub action: &'static str,
}

/// Every counter fleetpipe keeps about itself. Cheap to share: families are `Arc`s inside.
#[derive(Debug, Default)]
pub struct Metrics {
    registry: Registry,
    /// Items (spans, data points, log records) accepted and acknowledged to the client.
    pub receiver_accepted: Family<ReceiverLabels, Counter>,
    /// Items refused, by reason (`invalid`, `overloaded`, `unsupported`, `partial`).
    pub receiver_refused_items: Family<RefusalLabels, Counter>,
    /// Requests refused before their items could be counted (malformed, too large, …).
    pub receiver_refused_requests: Family<RefusalLabels, Counter>,
    /// Kafka messages that were not valid requests, sent to the dead-letter topic.
    pub receiver_dead_letters: Family<Vec<(String, String)>, Counter>,
    /// Items the destination acknowledged.
    pub exporter_sent: Family<ExporterLabels, Counter>,
    /// Items given up on: `permanent` (the destination refused them), `retries_exhausted`,
    /// `shutdown` (still unsent at the drain deadline).
    pub exporter_failed: Family<ExporterLossLabels, Counter>,
    /// Items not queued for one exporter because its queue was full.
    pub exporter_dropped: Family<ExporterLossLabels, Counter>,
    /// Items an exporter's data flow does not allow, by reason (`signal`, `layer`,
    /// `integration`, `unregistered`, `malformed`).
    pub exporter_withheld: Family<ExporterLossLabels, Counter>,
    /// Attributes removed or hashed by an exporter's redaction.
    pub exporter_redacted: Family<RedactionLabels, Counter>,
    /// Items rejected by the destination through `partial_success`.
    pub exporter_rejected: Family<ExporterLabels, Counter>,
    /// Retried attempts.
    pub exporter_retries: Family<ExporterLabels, Counter>,
    /// Batches waiting in each exporter's queue.
    pub exporter_queue_size: Family<QueueLabels, Gauge>,
    /// Capacity of each exporter's queue.
    pub exporter_queue_capacity: Family<QueueLabels, Gauge>,
    /// 1, labelled with the registry's version (content hash) and path.
    pub registry_info: Family<Vec<(String, String)>, Gauge>,
    /// When the registry in use was loaded, in Unix seconds.
    pub registry_loaded_at: Gauge,
    /// Integrations in the registry in use.
    pub registry_integrations: Gauge,
    /// Reload attempts by outcome (`ok`, `failed`).
    pub registry_reloads: Family<Vec<(String, String)>, Counter>,
    /// Outbound calls to tools or hosts the registry does not know, by target.
    pub shadow_calls: Family<Vec<(String, String)>, Counter>,
    /// Bytes held by analytics windows and history.
    pub analytics_memory_bytes: Gauge,
    /// Share of traces the analytics window being built keeps.
    pub analytics_sampling_percentage: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Records of an exporter's disk queue found corrupt or torn at start, moved to quarantine.
    pub disk_queue_quarantined: Family<QueueLabels, Counter>,
    /// Anomaly findings by detector and severity.
    pub findings: Family<Vec<(String, String)>, Counter>,
    /// Anomalies open now (announced and not yet resolved), by detector and severity.
    pub findings_open: Family<Vec<(String, String)>, Gauge>,
    /// Detector files that failed to load and runs that failed or timed out.
    pub detector_errors: Family<Vec<(String, String)>, Counter>,
    /// Duration of each detector's last run.
    pub detector_run_seconds: Family<Vec<(String, String)>, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut m = Metrics::default();
        let r = &mut m.registry;
        let p = "fleetpipe";
        r.register(
            format!("{p}_receiver_accepted_items"),
            "Items accepted and acknowledged",
            m.receiver_accepted.clone(),
        );
        r.register(
            format!("{p}_receiver_refused_items"),
            "Items refused, by reason",
            m.receiver_refused_items.clone(),
        );
        r.register(
            format!("{p}_receiver_refused_requests"),
            "Requests refused, by reason",
            m.receiver_refused_requests.clone(),
        );
        r.register(
            format!("{p}_receiver_dead_letter_messages"),
            "Kafka messages that were not valid requests, sent to the dead-letter topic",
            m.receiver_dead_letters.clone(),
        );
        r.register(
            format!("{p}_exporter_sent_items"),
            "Items acknowledged by the destination",
            m.exporter_sent.clone(),
        );
        r.register(
            format!("{p}_exporter_send_failed_items"),
            "Items given up on, by reason",
            m.exporter_failed.clone(),
        );
        r.register(
            format!("{p}_exporter_dropped_items"),
            "Items not queued because the queue was full",
            m.exporter_dropped.clone(),
        );
        r.register(
            format!("{p}_exporter_withheld_items"),
            "Items the exporter's data flow does not allow, by reason",
            m.exporter_withheld.clone(),
        );
        r.register(
            format!("{p}_exporter_redacted_attributes"),
            "Attributes removed or hashed before queuing for the exporter",
            m.exporter_redacted.clone(),
        );
        r.register(
            format!("{p}_exporter_rejected_items"),
            "Items the destination rejected via partial_success",
            m.exporter_rejected.clone(),
        );
        r.register(
            format!("{p}_exporter_retries"),
            "Retried export attempts",
            m.exporter_retries.clone(),
        );
        r.register(
            format!("{p}_exporter_queue_size"),
            "Batches waiting in the exporter queue",
            m.exporter_queue_size.clone(),
        );
        r.register(
            format!("{p}_exporter_queue_capacity"),
            "Capacity of the exporter queue",
            m.exporter_queue_capacity.clone(),
        );
        r.register(
            format!("{p}_registry_info"),
            "The integration registry in use",
            m.registry_info.clone(),
        );
        r.register(
            format!("{p}_registry_loaded_timestamp_seconds"),
            "When the registry in use was loaded",
            m.registry_loaded_at.clone(),
        );
        r.register(
            format!("{p}_registry_integrations"),
            "Integrations in the registry in use",
            m.registry_integrations.clone(),
        );
        r.register(
            format!("{p}_registry_reloads"),
            "Loads of a changed registry file, and on SIGHUP, by outcome",
            m.registry_reloads.clone(),
        );
        r.register(
            format!("{p}_shadow_integration_calls"),
            "Calls to unregistered tools or hosts, by target",
            m.shadow_calls.clone(),
        );
        r.register(
            format!("{p}_analytics_memory_bytes"),
            "Bytes held by analytics windows and history",
            m.analytics_memory_bytes.clone(),
        );
        r.register(
            format!("{p}_analytics_sampling_percentage"),
            "Percentage of traces the analytics window being built keeps",
            m.analytics_sampling_percentage.clone(),
        );
        r.register(
            format!("{p}_anomaly_findings"),
            "Anomaly findings by detector and severity",
            m.findings.clone(),
        );
        r.register(
            format!("{p}_disk_queue_quarantined_records"),
            "Records of an exporter's disk queue found corrupt or torn at start and moved to quarantine",
            m.disk_queue_quarantined.clone(),
        );
        r.register(
            format!("{p}_findings_open"),
            "Anomalies open now (announced, not yet resolved) by detector and severity",
            m.findings_open.clone(),
        );
        r.register(
            format!("{p}_detector_errors"),
            "Detector load failures and failed or timed-out runs",
            m.detector_errors.clone(),
        );
        r.register(
            format!("{p}_detector_run_seconds"),
            "Duration of each detector's last run",
            m.detector_run_seconds.clone(),
        );
        m
    }

    /// Where components with gauges of their own (the memory budget) register them.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn exporter(&self, exporter: &str, signal: Signal) -> ExporterLabels {
        ExporterLabels {
            exporter: exporter.to_owned(),
            signal: signal.as_str(),
        }
    }

    pub fn exporter_loss(&self, exporter: &str, signal: Signal, reason: &'static str) -> ExporterLossLabels {
        ExporterLossLabels {
            exporter: exporter.to_owned(),
            signal: signal.as_str(),
            reason,
        }
    }
}
