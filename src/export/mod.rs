//! Exporters: each has its own bounded queue and consumers, so a slow or dead destination
//! never stalls the others, and retries by the OTLP specification's rules.
//!
//! Cancellation: a worker ends when its queue's senders are gone and it has sent (or counted
//! as failed) everything queued. The `give_up` token, fired at the shutdown deadline, makes
//! every pending and future attempt count its batch as failed instead of waiting.

mod component;
pub mod config;
mod disk;
mod error;
mod insecure;
pub mod kafka;
mod local;
mod otlp_grpc;
mod otlp_http;
mod retry;

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use error::ExportError;

use crate::compression::{self, Encoding};
use crate::memory::Part;
use crate::otlp::{Rejected, Request};
use crate::pipeline::component::{ExporterContext, HandBack, StartError, StartedExporter};
use crate::pipeline::queue::{ConsumerQueue, DiskFull, Queued};
use crate::spool::queue::DiskQueue;
use crate::telemetry::metrics::{Metrics, QueueLabels};
use config::{QueueConfig, RetryConfig};
use kafka::KafkaSender;
use local::{DebugSender, FileSender};
use otlp_grpc::OtlpGrpcSender;
use otlp_http::OtlpHttpSender;

/// Makes ring the process-wide rustls provider, which both TLS users (tonic and reqwest) take.
/// ring keeps the build free of aws-lc's C toolchain; calling this twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How one exporter reaches its destination.
enum Destination {
    Grpc(OtlpGrpcSender),
    Http(Box<OtlpHttpSender>),
    Debug(DebugSender),
    File(FileSender),
    Kafka(Box<KafkaSender>),
}

impl Destination {
    async fn send(&self, request: &Request, body: &Bytes) -> Result<Option<Rejected>, ExportError> {
        match self {
            Destination::Grpc(sender) => sender.send(request.signal(), body.clone()).await,
            Destination::Http(sender) => sender.send(request.signal(), body.clone()).await,
            Destination::Debug(sender) => {
                sender.send(&request.decode()?);
                Ok(None)
            }
            Destination::File(sender) => sender.send(&request.decode()?).await.map(|()| None),
            Destination::Kafka(sender) => sender.send(request).await,
        }
    }

    /// How the destination wants the bytes of a batch; `None` for those that make their own
    /// (the local ones from the decoded batch, Kafka's from its split).
    fn body_format(&self) -> Option<BodyFormat> {
        match self {
            Destination::Grpc(sender) => Some(sender.body_format()),
            Destination::Http(sender) => Some(sender.body_format()),
            Destination::Debug(_) | Destination::File(_) | Destination::Kafka(_) => None,
        }
    }
}

/// The bytes an OTLP destination is sent: compressed as configured, and framed as a gRPC
/// message for `otlp`.
#[derive(Debug, Clone, Copy)]
pub struct BodyFormat {
    pub encoding: Encoding,
    pub level: u32,
    pub grpc_framed: bool,
}

/// Batches above this many bytes are compressed on the blocking pool so that the runtime's
/// threads keep receiving meanwhile; smaller ones cost less than the hand-off.
const INLINE_ENCODE_BYTES: usize = 256 * 1024;

impl BodyFormat {
    /// The format an OTLP exporter's settings ask for.
    pub fn of(config: &config::OtlpExporterConfig, grpc_framed: bool) -> BodyFormat {
        BodyFormat {
            encoding: config.compression.encoding(),
            level: config.compression_params.level_or_default(),
            grpc_framed,
        }
    }

    pub fn encode(self, request: &Request) -> std::io::Result<Bytes> {
        let prefix = if self.grpc_framed { GRPC_PREFIX } else { 0 };
        let mut out = Vec::with_capacity(prefix + request.encoded_len());
        out.resize(prefix, 0);
        compression::compress(self.encoding, self.level, request.parts(), &mut out)?;
        if self.grpc_framed {
            let length = u32::try_from(out.len() - prefix).map_err(std::io::Error::other)?;
            out[0] = u8::from(self.encoding != Encoding::Identity);
            out[1..prefix].copy_from_slice(&length.to_be_bytes());
        }
        Ok(Bytes::from(out))
    }

    async fn encode_off_runtime(self, request: &Arc<Request>) -> std::io::Result<Bytes> {
        if request.encoded_len() <= INLINE_ENCODE_BYTES {
            return self.encode(request);
        }
        let request = Arc::clone(request);
        tokio::task::spawn_blocking(move || self.encode(&request))
            .await
            .map_err(std::io::Error::other)?
    }
}

/// A gRPC message's prefix: compressed flag and big-endian length.
const GRPC_PREFIX: usize = 5;

struct Exporter {
    name: Arc<str>,
    destination: Destination,
    retry: RetryConfig,
    metrics: Arc<Metrics>,
    give_up: CancellationToken,
    /// Whether a batch the shutdown deadline interrupts stays queued (on disk) rather than
    /// counting as failed.
    kept_at_shutdown: bool,
    hand_back: Option<HandBack>,
}

/// How one batch's delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Delivered, refused for good or out of retries: counted, and done with.
    Settled,
    /// Interrupted by the shutdown deadline, and kept for the next start.
    Kept,
}

/// Starts the worker that sends what its queue receives to `destination`; returns the queue.
/// The worker ends once every sender is dropped and the queue is empty (or, on disk, at the
/// shutdown deadline, leaving the rest for the next start).
fn start(
    context: ExporterContext<'_>,
    destination: Destination,
    retry: RetryConfig,
    queue: &QueueConfig,
) -> Result<StartedExporter, StartError> {
    let block = queue.when_full == config::WhenFull::Block;
    let exporter = Arc::new(Exporter {
        name: Arc::from(context.name),
        destination,
        retry,
        metrics: Arc::clone(context.metrics),
        give_up: context.give_up.clone(),
        kept_at_shutdown: queue.storage == config::Storage::Disk,
        hand_back: context.hand_back.clone(),
    });
    let handle = match queue.storage {
        config::Storage::Memory => {
            let (tx, rx) = mpsc::channel(queue.queue_size);
            let max_bytes = usize::try_from(queue.max_megabytes.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
            context.workers.spawn(run_worker(exporter, rx, queue.num_consumers));
            ConsumerQueue::new(
                context.name,
                tx,
                block,
                Some(max_bytes),
                (context.memory, Part::Queues),
                context.metrics,
            )
        }
        config::Storage::Disk => {
            let spool = queue.spool_config(context.name);
            let fsync = spool.fsync;
            let (disk, recovery) = DiskQueue::open(spool)
                .map_err(|e| StartError::new(format!("exporters.{}.sending_queue", context.name), e))?;
            if recovery.records > 0 || recovery.quarantined > 0 {
                tracing::info!(exporter = %context.name, records = recovery.records, quarantined = recovery.quarantined, "Disk queue: delivering what the last run left.");
            }
            context
                .metrics
                .disk_queue_quarantined
                .get_or_create(&QueueLabels {
                    exporter: context.name.to_owned(),
                })
                .inc_by(recovery.quarantined);
            context.workers.spawn(Arc::clone(&disk).sync_on_time(fsync));
            context
                .workers
                .spawn(disk::run_worker(exporter, Arc::clone(&disk), queue.num_consumers));
            let when_full = match queue.when_full {
                config::WhenFull::Block => DiskFull::Wait,
                config::WhenFull::Drop => DiskFull::DropNew,
                config::WhenFull::DropOldest => DiskFull::DropOldest,
            };
            ConsumerQueue::on_disk(context.name, &disk, when_full, context.memory, context.metrics)
        }
    };
    Ok(StartedExporter {
        queue: handle,
        routes: None,
    })
}

async fn run_worker(exporter: Arc<Exporter>, mut queue: mpsc::Receiver<Queued>, consumers: usize) {
    let slots = Arc::new(Semaphore::new(consumers));
    let mut in_flight = JoinSet::new();
    let labels = QueueLabels {
        exporter: exporter.name.to_string(),
    };
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let Some(queued) = queue.recv().await else { break };
        exporter
            .metrics
            .exporter_queue_size
            .get_or_create(&labels)
            .set(queue.len() as i64);
        let exporter = Arc::clone(&exporter);
        in_flight.spawn(async move {
            let _ = exporter.deliver(&queued.request).await;
            drop(queued);
            drop(slot);
        });
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
    exporter.metrics.exporter_queue_size.get_or_create(&labels).set(0);
}

impl Exporter {
    /// Sends one batch until it is delivered, refused for good, out of retries, or the
    /// shutdown deadline passes; every outcome is counted (a batch kept on disk as kept).
    async fn deliver(&self, request: &Arc<Request>) -> Outcome {
        let signal = request.signal();
        let items = request.item_count() as u64;
        let body = match self.destination.body_format() {
            Some(format) => match format.encode_off_runtime(request).await {
                Ok(body) => body,
                Err(error) => {
                    tracing::error!(exporter = %self.name, %signal, items, %error, "Cannot compress a batch; dropped.");
                    self.count_failed(request, "encoding");
                    return Outcome::Settled;
                }
            },
            None => Bytes::new(),
        };
        let mut backoff = retry::Backoff::new(&self.retry);
        let first_attempt = tokio::time::Instant::now();
        loop {
            if self.give_up.is_cancelled() {
                return self.interrupted(request);
            }
            let attempt = tokio::select! {
                biased;
                _ = self.give_up.cancelled() => return self.interrupted(request),
                attempt = self.destination.send(request, &body) => attempt,
            };
            let error = match attempt {
                Ok(rejected) => {
                    self.count_sent(request, rejected);
                    return Outcome::Settled;
                }
                Err(error) => error,
            };
            // A batch refused for its size, or for what one client's request in it holds, is
            // sent in halves of the requests it joined (and halves of those): only the request
            // at fault is lost, not the other clients' data.
            let whole_batch_refused = error.is_too_large() || error.may_be_one_requests_content();
            if whole_batch_refused && let Some((first, second)) = request.split() {
                tracing::warn!(exporter = %self.name, %signal, items, error = %error, "Destination refused a batch of several requests; sending it in two halves.");
                let first = Box::pin(self.deliver(&Arc::new(first))).await;
                let second = Box::pin(self.deliver(&Arc::new(second))).await;
                return if first == Outcome::Kept || second == Outcome::Kept {
                    Outcome::Kept
                } else {
                    Outcome::Settled
                };
            }
            if let Some(hand_back) = &self.hand_back
                && error.is_retryable()
                && first_attempt.elapsed() >= hand_back.after
                && hand_back.to.send((Arc::clone(&self.name), Arc::clone(request))).is_ok()
            {
                tracing::warn!(exporter = %self.name, %signal, items, error = %error, "Backend unreachable; its batch goes to another.");
                return Outcome::Settled;
            }
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
                self.count_failed(request, reason);
                return Outcome::Settled;
            };
            tracing::warn!(exporter = %self.name, %signal, error = %error, retry_in = ?wait, "Export failed; retrying.");
            self.metrics
                .exporter_retries
                .get_or_create(&self.metrics.exporter(&self.name, signal))
                .inc();
            tokio::select! {
                biased;
                _ = self.give_up.cancelled() => return self.interrupted(request),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// The shutdown deadline stopped a batch: on disk it stays for the next start, otherwise
    /// it counts as failed.
    fn interrupted(&self, request: &Request) -> Outcome {
        if self.kept_at_shutdown {
            return Outcome::Kept;
        }
        self.count_failed(request, "shutdown");
        Outcome::Settled
    }

    fn count_sent(&self, request: &Request, rejected: Option<Rejected>) {
        let signal = request.signal();
        let items = request.item_count() as u64;
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

    fn count_failed(&self, request: &Request, reason: &'static str) {
        let labels = self.metrics.exporter_loss(&self.name, request.signal(), reason);
        self.metrics
            .exporter_failed
            .get_or_create(&labels)
            .inc_by(request.item_count() as u64);
    }
}
