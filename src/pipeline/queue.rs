//! A consumer's bounded queue: what the fan-out puts a pipeline's batches on, and what an
//! exporter, analytics or any other consumer takes them from. Bounded in batches and,
//! optionally, in bytes; full, it either waits (pushing back towards the receivers) or drops
//! the batch for this consumer only, counted.
//!
//! Cancellation: `enqueue` may be dropped while it waits; the batch is then not queued.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::otlp::Request;
use crate::telemetry::metrics::{Metrics, QueueLabels};

/// A batch in a consumer's queue, holding its share of the queue's byte budget until it
/// has been sent or given up.
pub struct Queued {
    pub request: Arc<Request>,
    _budget: Option<OwnedSemaphorePermit>,
}

/// The pipelines' side of a consumer (an exporter, analytics): puts batches on its queue.
#[derive(Clone)]
pub struct ConsumerQueue {
    name: Arc<str>,
    queue: mpsc::Sender<Queued>,
    block_on_overflow: bool,
    /// KiB of batches the queue and its consumers may hold; `None` for no byte bound.
    budget: Option<(Arc<Semaphore>, u32)>,
    metrics: Arc<Metrics>,
}

impl ConsumerQueue {
    /// The sending side of `queue`, named `name` in metrics and logs.
    pub fn new(
        name: &str,
        queue: mpsc::Sender<Queued>,
        block_on_overflow: bool,
        max_bytes: Option<usize>,
        metrics: &Arc<Metrics>,
    ) -> ConsumerQueue {
        let budget = max_bytes.map(|bytes| {
            let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX).max(1);
            (Arc::new(Semaphore::new(kib as usize)), kib)
        });
        metrics
            .exporter_queue_capacity
            .get_or_create(&QueueLabels {
                exporter: name.to_owned(),
            })
            .set(queue.max_capacity() as i64);
        ConsumerQueue {
            name: name.into(),
            queue,
            block_on_overflow,
            budget,
            metrics: Arc::clone(metrics),
        }
    }

    /// Queues a batch. A full queue waits when `block_on_overflow` is set; otherwise the batch
    /// is dropped for this exporter only, counted and logged.
    pub async fn enqueue(&self, request: Arc<Request>) {
        let queued = match self.reserve_bytes(&request).await {
            Some(budget) => {
                let queued = Queued {
                    request,
                    _budget: budget,
                };
                if self.block_on_overflow {
                    self.queue.send(queued).await.map_err(|e| e.0.request)
                } else {
                    self.queue.try_send(queued).map_err(|e| e.into_inner().request)
                }
            }
            None => Err(request),
        };
        if let Err(request) = queued {
            let signal = request.signal();
            let items = request.item_count() as u64;
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

    /// Takes the batch's bytes from the budget: waits for them when `block_on_overflow` is
    /// set, else `None` when they are not free. `Some(None)` when there is no budget.
    async fn reserve_bytes(&self, request: &Request) -> Option<Option<OwnedSemaphorePermit>> {
        let Some((budget, total)) = &self.budget else {
            return Some(None);
        };
        let kib = u32::try_from(request.encoded_len().div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, *total);
        let permit = if self.block_on_overflow {
            Arc::clone(budget).acquire_many_owned(kib).await.ok()
        } else {
            Arc::clone(budget).try_acquire_many_owned(kib).ok()
        };
        permit.map(Some)
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
