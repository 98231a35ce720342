//! A consumer's bounded queue: what the fan-out puts a pipeline's batches on, and what an
//! exporter, analytics or any other consumer takes them from. In memory it is bounded in
//! batches and, optionally, in bytes; on disk (an exporter's `storage: disk`) by the bytes of
//! its segment files. Full, it either waits (pushing back towards the receivers) or drops the
//! batch for this consumer only, counted; a disk queue may drop its oldest batches instead.
//!
//! Cancellation: `enqueue` may be dropped while it waits; the batch is then not queued.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::govern::{Flow, Origin};
use crate::memory::{Charge, MemoryBudget, Part};
use crate::otlp::Request;
use crate::spool::queue::DiskQueue;
use crate::telemetry::metrics::{Metrics, QueueLabels, RedactionLabels};

/// A batch in a consumer's queue, holding its share of the queue's byte budget and its
/// charge to the process's memory budget until it has been sent or given up.
pub struct Queued {
    pub request: Arc<Request>,
    _budget: Option<OwnedSemaphorePermit>,
    _held: Charge,
}

/// What a full disk queue does with a new batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFull {
    /// Waits for room, pushing back to clients.
    Wait,
    /// Drops the new batch, counted as `queue_full`.
    DropNew,
    /// Drops the oldest batches waiting, counted as `oldest_dropped`, and takes the new one
    /// (waiting when the oldest are being sent and free no room yet).
    DropOldest,
}

/// The pipelines' side of a consumer (an exporter, analytics): puts batches on its queue.
#[derive(Clone)]
pub struct ConsumerQueue {
    name: Arc<str>,
    queue: mpsc::Sender<Queued>,
    /// Set for an exporter whose queue is on disk: batches go there instead of `queue`.
    disk: Option<Arc<Appender>>,
    block_on_overflow: bool,
    /// KiB of batches the queue and its consumers may hold; `None` for no byte bound.
    budget: Option<(Arc<Semaphore>, u32)>,
    /// The process's memory budget, and the part its batches are charged to.
    memory: (Arc<MemoryBudget>, Part),
    metrics: Arc<Metrics>,
    /// What the exporter may get of each batch, when it may not get everything.
    flow: Option<Arc<Flow>>,
}

impl ConsumerQueue {
    /// The same queue, with what is queued governed by `flow`.
    pub fn governed_by(self, flow: Option<Arc<Flow>>) -> ConsumerQueue {
        ConsumerQueue { flow, ..self }
    }

    /// Queues a batch of a pipeline, as much of it as the exporter may get.
    pub async fn enqueue(&self, request: Arc<Request>) {
        self.enqueue_from(request, Origin::Pipeline).await;
    }

    /// Queues analytics' findings, if the exporter may get findings.
    pub async fn enqueue_findings(&self, request: Arc<Request>) {
        self.enqueue_from(request, Origin::Findings).await;
    }

    async fn enqueue_from(&self, request: Arc<Request>, origin: Origin) {
        let Some(flow) = &self.flow else {
            return self.enqueue_governed(request).await;
        };
        let signal = request.signal();
        let governed = flow.govern(&request, origin);
        for (reason, items) in &governed.withheld {
            let labels = self.metrics.exporter_loss(&self.name, signal, reason);
            self.metrics
                .exporter_withheld
                .get_or_create(&labels)
                .inc_by(*items as u64);
        }
        for (action, count) in [("removed", governed.removed), ("hashed", governed.hashed)] {
            if count > 0 {
                let labels = RedactionLabels {
                    exporter: self.name.to_string(),
                    action,
                };
                self.metrics
                    .exporter_redacted
                    .get_or_create(&labels)
                    .inc_by(count as u64);
            }
        }
        if let Some(request) = governed.request {
            self.enqueue_governed(request).await;
        }
    }

    /// The sending side of `queue`, named `name` in metrics and logs, whose batches are
    /// charged to `memory` as `part`.
    pub fn new(
        name: &str,
        queue: mpsc::Sender<Queued>,
        block_on_overflow: bool,
        max_bytes: Option<usize>,
        memory: (&Arc<MemoryBudget>, Part),
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
            disk: None,
            block_on_overflow,
            budget,
            memory: (Arc::clone(memory.0), memory.1),
            metrics: Arc::clone(metrics),
            flow: None,
        }
    }

    /// The sending side of an exporter's disk queue; it is closed once every clone is gone.
    pub fn on_disk(
        name: &str,
        disk: &Arc<DiskQueue>,
        when_full: DiskFull,
        memory: &Arc<MemoryBudget>,
        metrics: &Arc<Metrics>,
    ) -> ConsumerQueue {
        // The memory queue stays empty: a channel nobody reads, closed at once.
        let (queue, _) = mpsc::channel(1);
        ConsumerQueue {
            name: name.into(),
            queue,
            disk: Some(Arc::new(Appender(Arc::clone(disk), when_full))),
            block_on_overflow: when_full == DiskFull::Wait,
            budget: None,
            memory: (Arc::clone(memory), Part::Queues),
            metrics: Arc::clone(metrics),
            flow: None,
        }
    }

    /// The disk queue the batches go to, if they go to one.
    pub fn disk_queue(&self) -> Option<&Arc<DiskQueue>> {
        self.disk.as_ref().map(|appender| &appender.0)
    }

    /// Queues a batch the exporter may get. A full queue waits when `block_on_overflow` is
    /// set; otherwise the batch is dropped for this exporter only, counted and logged.
    async fn enqueue_governed(&self, request: Arc<Request>) {
        if let Some(disk) = &self.disk {
            return self.append(disk, request).await;
        }
        let queued = match self.reserve_bytes(&request).await {
            Some(budget) => {
                let held = self.memory.0.charge(self.memory.1, request.encoded_len());
                let queued = Queued {
                    request,
                    _budget: budget,
                    _held: held,
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
            self.count_dropped(&request, "queue_full");
        }
        self.metrics
            .exporter_queue_size
            .get_or_create(&self.queue_labels())
            .set(self.depth());
    }

    /// Appends a batch to the disk queue; full, it waits or drops as `DiskFull` says, and a
    /// batch the disk cannot take (an I/O error) is dropped, counted and logged.
    async fn append(&self, appender: &Appender, request: Arc<Request>) {
        let Appender(disk, when_full) = appender;
        let mut appended = disk.append(&request, self.block_on_overflow).await;
        if *when_full == DiskFull::DropOldest && matches!(appended, Err(crate::spool::SpoolError::Full { .. })) {
            self.drop_oldest(disk, &request).await;
            appended = disk.append(&request, true).await;
        }
        match appended {
            Ok(()) => {}
            Err(crate::spool::SpoolError::Full { .. }) => self.count_dropped(&request, "queue_full"),
            Err(error @ crate::spool::SpoolError::TooLarge { .. }) => {
                tracing::error!(exporter = %self.name, %error, "Disk queue cannot take a batch.");
                self.count_dropped(&request, "too_large");
            }
            Err(error) => {
                tracing::error!(exporter = %self.name, %error, "Disk queue cannot take a batch.");
                self.count_dropped(&request, "disk_error");
            }
        }
        let (records, _) = disk.depth();
        self.metrics
            .exporter_queue_size
            .get_or_create(&self.queue_labels())
            .set(records as i64);
    }

    /// Drops the oldest batches waiting on `disk` to make room for `request`, counted.
    async fn drop_oldest(&self, disk: &Arc<DiskQueue>, request: &Request) {
        let bytes = request.encoded_len() as u64 + 1;
        match disk.drop_oldest(bytes).await {
            Ok(dropped) => {
                for record in dropped {
                    self.count_loss(record.signal, record.items as usize, "oldest_dropped");
                }
            }
            Err(error) => tracing::error!(exporter = %self.name, %error, "Disk queue cannot drop its oldest batches."),
        }
    }

    fn count_dropped(&self, request: &Request, reason: &'static str) {
        self.count_loss(request.signal(), request.item_count(), reason);
    }

    fn count_loss(&self, signal: crate::otlp::Signal, items: usize, reason: &'static str) {
        let items = items as u64;
        self.metrics
            .exporter_dropped
            .get_or_create(&self.metrics.exporter_loss(&self.name, signal, reason))
            .inc_by(items);
        tracing::warn!(exporter = %self.name, %signal, items, reason, "Exporter queue dropped a batch for this exporter.");
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

/// Closes a disk queue when the last sender is gone, as dropping the last `mpsc::Sender`
/// closes a channel.
struct Appender(Arc<DiskQueue>, DiskFull);

impl Drop for Appender {
    fn drop(&mut self) {
        self.0.close();
    }
}
