//! Exporters: each has its own bounded queue and consumers, so a slow or dead destination
//! never stalls the others, and retries by the OTLP specification's rules.
//!
//! Cancellation: a worker ends when its queue's senders are gone and it has sent (or counted
//! as failed) everything queued. The `give_up` token, fired at the shutdown deadline, makes
//! every pending and future attempt count its batch as failed instead of waiting.

pub mod config;
mod error;
mod local;
mod otlp_grpc;
mod otlp_http;
mod retry;

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use error::ExportError;

use crate::config::ExporterConfig;
use crate::pipeline::{Payload, Rejected};
use crate::telemetry::metrics::{Metrics, QueueLabels};
use config::{QueueConfig, RetryConfig};
use local::{DebugSender, FileSender};
use otlp_grpc::OtlpGrpcSender;
use otlp_http::OtlpHttpSender;

/// Makes ring the process-wide rustls provider, which both TLS users (tonic and reqwest) take.
/// ring keeps the build free of aws-lc's C toolchain; calling this twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The pipelines' side of an exporter: puts batches on its queue.
#[derive(Clone)]
pub struct ExporterHandle {
    name: Arc<str>,
    queue: mpsc::Sender<Arc<Payload>>,
    block_on_overflow: bool,
    metrics: Arc<Metrics>,
}

impl ExporterHandle {
    /// A handle on `queue`, for consumers other than the network exporters (analytics).
    pub fn new(
        name: &str,
        queue: mpsc::Sender<Arc<Payload>>,
        block_on_overflow: bool,
        metrics: &Arc<Metrics>,
    ) -> ExporterHandle {
        metrics
            .exporter_queue_capacity
            .get_or_create(&QueueLabels {
                exporter: name.to_owned(),
            })
            .set(queue.max_capacity() as i64);
        ExporterHandle {
            name: name.into(),
            queue,
            block_on_overflow,
            metrics: Arc::clone(metrics),
        }
    }

    /// Queues a batch. A full queue waits when `block_on_overflow` is set; otherwise the batch
    /// is dropped for this exporter only, counted and logged.
    pub async fn enqueue(&self, payload: Arc<Payload>) {
        let queued = if self.block_on_overflow {
            self.queue.send(payload).await.map_err(|e| e.0)
        } else {
            self.queue.try_send(payload).map_err(|e| e.into_inner())
        };
        if let Err(payload) = queued {
            let signal = payload.signal();
            let items = payload.item_count() as u64;
            self.metrics
                .exporter_dropped
                .get_or_create(&self.metrics.exporter_loss(&self.name, signal, "queue_full"))
                .inc_by(items);
            tracing::warn!(exporter = %self.name, %signal, items, "Exporter queue is full; batch dropped for this exporter.");
        }
        self.metrics
            .exporter_queue_size
            .get_or_create(&self.queue_labels())
            .set(self.depth());
    }

    fn depth(&self) -> i64 {
        (self.queue.max_capacity() - self.queue.capacity()) as i64
    }

    fn queue_labels(&self) -> QueueLabels {
        QueueLabels {
            exporter: self.name.to_string(),
        }
    }
}

/// How one exporter reaches its destination.
enum Destination {
    Grpc(OtlpGrpcSender),
    Http(Box<OtlpHttpSender>),
    Debug(DebugSender),
    File(FileSender),
}

impl Destination {
    async fn send(&self, payload: &Payload, body: &bytes::Bytes) -> Result<Option<Rejected>, ExportError> {
        match self {
            Destination::Grpc(sender) => sender.send(payload, body.clone()).await,
            Destination::Http(sender) => sender.send(payload, body.clone()).await,
            Destination::Debug(sender) => {
                sender.send(payload);
                Ok(None)
            }
            Destination::File(sender) => sender.send(payload).await.map(|()| None),
        }
    }

    /// Only the OTLP destinations need the protobuf encoding.
    fn needs_protobuf(&self) -> bool {
        matches!(self, Destination::Grpc(_) | Destination::Http(_))
    }
}

struct Exporter {
    name: Arc<str>,
    destination: Destination,
    retry: RetryConfig,
    metrics: Arc<Metrics>,
    give_up: CancellationToken,
}

/// Builds an exporter and starts its worker. The worker ends once every handle is dropped and
/// its queue is empty.
pub fn start(
    name: &str,
    config: &ExporterConfig,
    metrics: &Arc<Metrics>,
    give_up: &CancellationToken,
    workers: &mut JoinSet<()>,
) -> Result<ExporterHandle, ExportError> {
    let local_queue = QueueConfig::default();
    let (destination, retry, queue) = match config {
        ExporterConfig::Otlp(c) => (
            Destination::Grpc(OtlpGrpcSender::new(c)?),
            c.retry_on_failure.clone(),
            c.sending_queue.clone(),
        ),
        ExporterConfig::OtlpHttp(c) => (
            Destination::Http(Box::new(OtlpHttpSender::new(c)?)),
            c.retry_on_failure.clone(),
            c.sending_queue.clone(),
        ),
        ExporterConfig::Debug(c) => (
            Destination::Debug(DebugSender::new(name, c)),
            RetryConfig::default(),
            local_queue,
        ),
        ExporterConfig::File(c) => (
            Destination::File(FileSender::new(c)),
            RetryConfig::default(),
            local_queue,
        ),
        // Our bug if reached: analytics has its own consumer (`analytics::start`).
        ExporterConfig::Analytics(_) => return Err(ExportError::Setup("analytics is not a network exporter".into())),
    };
    let (tx, rx) = mpsc::channel(queue.queue_size);
    let handle = ExporterHandle::new(name, tx, queue.block_on_overflow, metrics);
    let exporter = Arc::new(Exporter {
        name: Arc::clone(&handle.name),
        destination,
        retry,
        metrics: Arc::clone(metrics),
        give_up: give_up.clone(),
    });
    workers.spawn(run_worker(exporter, rx, queue.num_consumers));
    Ok(handle)
}

async fn run_worker(exporter: Arc<Exporter>, mut queue: mpsc::Receiver<Arc<Payload>>, consumers: usize) {
    let slots = Arc::new(Semaphore::new(consumers));
    let mut in_flight = JoinSet::new();
    let labels = QueueLabels {
        exporter: exporter.name.to_string(),
    };
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let Some(payload) = queue.recv().await else { break };
        exporter
            .metrics
            .exporter_queue_size
            .get_or_create(&labels)
            .set(queue.len() as i64);
        let exporter = Arc::clone(&exporter);
        in_flight.spawn(async move {
            exporter.deliver(&payload).await;
            drop(slot);
        });
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
    exporter.metrics.exporter_queue_size.get_or_create(&labels).set(0);
}

impl Exporter {
    /// Sends one batch until it is delivered, refused for good, out of retries, or the
    /// shutdown deadline passes; every outcome is counted.
    async fn deliver(&self, payload: &Payload) {
        let signal = payload.signal();
        let items = payload.item_count() as u64;
        let body = if self.destination.needs_protobuf() {
            payload.encode_protobuf()
        } else {
            bytes::Bytes::new()
        };
        let mut backoff = retry::Backoff::new(&self.retry);
        loop {
            if self.give_up.is_cancelled() {
                return self.count_failed(payload, "shutdown");
            }
            let attempt = tokio::select! {
                biased;
                _ = self.give_up.cancelled() => return self.count_failed(payload, "shutdown"),
                attempt = self.destination.send(payload, &body) => attempt,
            };
            let error = match attempt {
                Ok(rejected) => return self.count_sent(payload, rejected),
                Err(error) => error,
            };
            let wait = if error.is_retryable() {
                backoff.next_wait(error.retry_after())
            } else {
                None
            };
            let Some(wait) = wait else {
                let reason = if error.is_retryable() {
                    "retries_exhausted"
                } else {
                    "permanent"
                };
                tracing::error!(exporter = %self.name, %signal, items, error = %error, reason, "Export failed; batch dropped.");
                return self.count_failed(payload, reason);
            };
            tracing::warn!(exporter = %self.name, %signal, error = %error, retry_in = ?wait, "Export failed; retrying.");
            self.metrics
                .exporter_retries
                .get_or_create(&self.metrics.exporter(&self.name, signal))
                .inc();
            tokio::select! {
                biased;
                _ = self.give_up.cancelled() => return self.count_failed(payload, "shutdown"),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn count_sent(&self, payload: &Payload, rejected: Option<Rejected>) {
        let signal = payload.signal();
        let items = payload.item_count() as u64;
        let labels = self.metrics.exporter(&self.name, signal);
        let rejected_items = rejected.as_ref().map_or(0, |r| r.count.max(0) as u64);
        if let Some(rejected) = rejected {
            tracing::warn!(exporter = %self.name, %signal, rejected = rejected.count, message = %rejected.message, "Destination rejected part of a batch.");
            self.metrics
                .exporter_rejected
                .get_or_create(&labels)
                .inc_by(rejected_items);
        }
        self.metrics
            .exporter_sent
            .get_or_create(&labels)
            .inc_by(items.saturating_sub(rejected_items));
    }

    fn count_failed(&self, payload: &Payload, reason: &'static str) {
        let labels = self.metrics.exporter_loss(&self.name, payload.signal(), reason);
        self.metrics
            .exporter_failed
            .get_or_create(&labels)
            .inc_by(payload.item_count() as u64);
    }
}
