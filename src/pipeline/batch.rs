//! The batch step: merges requests until a size or time bound, like the Collector's `batch`
//! processor. It runs as one task per pipeline, between the pipeline queue and the fan-out.
//!
//! Cancellation: the task ends when every sender of its queue is gone, after flushing what it
//! holds; it is never aborted, so nothing acknowledged is lost in it.

use std::any::Any;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::component::{ProcessorContext, ProcessorSettings, Settings, Step};
use super::{Ack, Fanout, Submission};
use crate::memory::Charge;
use crate::otlp::Request;

/// Settings of the `batch` processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Send once this many items (spans, data points, log records) are waiting.
    pub send_batch_size: usize,
    /// Send what is waiting after this long, even below `send_batch_size`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Items a batch holds at most (0: no cap); a request that would take a batch past it
    /// starts the next one. A single larger request is sent alone, as it came.
    pub send_batch_max_size: usize,
    /// Bytes (protobuf) a batch holds at most, below the destinations' limits (gRPC servers
    /// commonly refuse more than 64 MiB, or 4 MiB by default); as `send_batch_max_size`.
    pub send_batch_max_bytes: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            send_batch_size: 8192,
            timeout: Duration::from_millis(200),
            send_batch_max_size: 0,
            send_batch_max_bytes: 16 << 20,
        }
    }
}

impl BatchConfig {
    /// Whether `request` may join the batch `held` within the caps.
    fn fits(&self, held: &Request, request: &Request) -> bool {
        let items = held.item_count() + request.item_count();
        let bytes = held.encoded_len() + request.encoded_len();
        (self.send_batch_max_size == 0 || items <= self.send_batch_max_size) && bytes <= self.send_batch_max_bytes
    }
}

impl Settings for BatchConfig {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl ProcessorSettings for BatchConfig {
    fn build(&self, _: &ProcessorContext<'_>) -> Option<Step> {
        Some(Step::Batch(self.clone()))
    }
}

/// Moves requests from the pipeline queue to the exporters, batching when `batch` is set and
/// passing each request straight through otherwise.
pub async fn run(mut queue: mpsc::Receiver<Submission>, batch: Option<BatchConfig>, fanout: Fanout) {
    let Some(batch) = batch else {
        while let Some(Submission { request, ack, held }) = queue.recv().await {
            fanout.deliver(request, ack.into_iter().collect(), vec![held]).await;
        }
        return;
    };
    let mut pending: Option<Pending> = None;
    let mut deadline = Instant::now();
    loop {
        tokio::select! {
            received = queue.recv() => {
                let Some(Submission { request, ack, held }) = received else { break };
                match &mut pending {
                    Some(joined) if joined.request.signal() == request.signal() && batch.fits(&joined.request, &request) => {
                        joined.request.merge(request);
                        joined.acks.extend(ack);
                        joined.held.push(held);
                    }
                    _ => {
                        flush(&mut pending, &fanout).await;
                        deadline = Instant::now() + batch.timeout;
                        pending = Some(Pending { request, acks: ack.into_iter().collect(), held: vec![held] });
                    }
                }
                if pending.as_ref().is_some_and(|joined| joined.request.item_count() >= batch.send_batch_size) {
                    flush(&mut pending, &fanout).await;
                }
            }
            _ = tokio::time::sleep_until(deadline), if pending.is_some() => {
                flush(&mut pending, &fanout).await;
            }
        }
    }
    flush(&mut pending, &fanout).await;
}

/// The batch being built: the requests joined, their acknowledgements and memory charges.
struct Pending {
    request: Request,
    acks: Vec<Ack>,
    held: Vec<Charge>,
}

async fn flush(pending: &mut Option<Pending>, fanout: &Fanout) {
    if let Some(Pending { request, acks, held }) = pending.take() {
        fanout.deliver(request, acks, held).await;
    }
}
