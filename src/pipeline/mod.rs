//! The data path between receivers and exporters: processors, the bounded pipeline queue, the
//! batch step and the fan-out to exporter queues.
//!
//! A request is acknowledged once it is in a pipeline queue, or, for a pipeline with a disk
//! queue among its destinations, once it is in every destination queue of that pipeline (see
//! [`Ack`]). From there it is only ever delivered, counted as failed, or counted as dropped:
//! nothing disappears unaccounted.

pub mod batch;
pub mod component;
pub mod queue;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::memory::{Charge, MemoryBudget, Part};
use crate::otlp::wire::{self, Visitor};
use crate::otlp::{DecodeError, Rejected, Request, Signal};
use crate::spool::queue::DiskQueue;
use queue::ConsumerQueue;

/// A step applied to every request on the receiving task, in the same walk over the
/// request's bytes that checks them (see [`crate::otlp::wire`]). Processors run on the hot path: they must
/// not block or await.
pub trait Processor: Send + Sync {
    /// The processor's view of one request: it sees and edits the request's resources and records.
    fn visitor(&self) -> Box<dyn Visitor + '_>;
}

/// The receiving end's handle to one pipeline: runs its processors and queues the result.
#[derive(Clone)]
pub struct PipelineInput {
    name: Arc<str>,
    processors: Arc<[Arc<dyn Processor>]>,
    queue: mpsc::Sender<Submission>,
    /// The disk queues among its destinations. With any, the pipeline is durable: a client is
    /// acknowledged only once its request is in every destination queue.
    disks: Arc<[Arc<DiskQueue>]>,
    /// What the requests waiting in its queue and batch are charged to.
    memory: Arc<MemoryBudget>,
}

/// A request on its way through a pipeline, with the acknowledgement it owes, if any, and its
/// charge to the memory budget until its consumers' queues take it.
pub struct Submission {
    pub request: Request,
    pub ack: Option<Ack>,
    pub held: Charge,
}

/// A client's acknowledgement, owed once its request is in every destination queue of each
/// durable pipeline it went to: each such pipeline's fan-out calls [`Ack::queued`] after
/// queueing the batch holding it. Dropped unqueued (at shutdown), it is never given: the
/// client is told to retry.
#[derive(Clone)]
pub struct Ack(Arc<AckState>);

struct AckState {
    pipelines: AtomicUsize,
    given: Mutex<Option<oneshot::Sender<()>>>,
}

impl Ack {
    fn new(pipelines: usize) -> (Ack, oneshot::Receiver<()>) {
        let (given, taken) = oneshot::channel();
        let state = AckState {
            pipelines: AtomicUsize::new(pipelines),
            given: Mutex::new(Some(given)),
        };
        (Ack(Arc::new(state)), taken)
    }

    /// One pipeline has the request in all its destination queues.
    pub fn queued(&self) {
        if self.0.pipelines.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(given) = self.0.given.lock().unwrap_or_else(PoisonError::into_inner).take()
        {
            let _ = given.send(());
        }
    }
}

/// The pipeline queue is full: the client should retry later.
#[derive(Debug, Clone, thiserror::Error)]
#[error("pipeline {pipeline} is full")]
pub struct Overloaded {
    pub pipeline: Arc<str>,
}

/// Why a received request was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    /// Some pipeline had no room; `items` were refused.
    #[error("{overloaded}")]
    Overloaded { overloaded: Overloaded, items: usize },
}

/// What the pipelines took.
#[derive(Debug, Default)]
pub struct Submitted {
    pub items: usize,
    /// Records removed for ids no backend can store, reported through `partial_success`.
    pub rejected: Rejected,
    /// For durable pipelines: resolves once the request is in all their destination queues.
    pub queued: Option<oneshot::Receiver<()>>,
}

impl PipelineInput {
    /// `disks`: the disk queues among the pipeline's destinations (see [`Fanout::disk_queues`]).
    pub fn new(
        name: &str,
        processors: Vec<Arc<dyn Processor>>,
        queue: mpsc::Sender<Submission>,
        disks: Vec<Arc<DiskQueue>>,
        memory: &Arc<MemoryBudget>,
    ) -> PipelineInput {
        PipelineInput {
            name: name.into(),
            processors: processors.into(),
            queue,
            disks: disks.into(),
            memory: Arc::clone(memory),
        }
    }

    fn is_durable(&self) -> bool {
        !self.disks.is_empty()
    }

    /// Whether the pipeline cannot take a request now: its queue is full, or a disk queue of
    /// a destination is (a durable pipeline's client would wait for room).
    fn is_full(&self) -> bool {
        self.queue.capacity() == 0 || self.disks.iter().any(|disk| disk.is_full())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn overloaded(&self, items: usize) -> SubmitError {
        let overloaded = Overloaded {
            pipeline: Arc::clone(&self.name),
        };
        SubmitError::Overloaded { overloaded, items }
    }

    /// Checks a received body and applies the processors: the first in the checking walk,
    /// any others in a walk each.
    fn prepare(&self, signal: Signal, body: Bytes) -> Result<(Request, Rejected), DecodeError> {
        let Some((first, others)) = self.processors.split_first() else {
            return Request::from_protobuf(signal, body, None);
        };
        let (mut request, rejected) = Request::from_protobuf(signal, body, Some(&mut *first.visitor()))?;
        for processor in others {
            request
                .rewrite(&mut *processor.visitor())
                .map_err(|source| DecodeError::Wire { signal, source })?;
        }
        Ok((request, rejected))
    }
}

/// Hands a received request (protobuf bytes) to every pipeline of its signal, all or nothing:
/// either it is well-formed and every pipeline has room and takes it (the client gets
/// success), or none takes it (the client is told what is wrong, or to retry).
pub fn submit(pipelines: &[PipelineInput], signal: Signal, body: Bytes) -> Result<Submitted, SubmitError> {
    // A full pipeline is seen before the processors run, so that a refused request is neither
    // worked on nor counted by them (its client sends it again).
    if let Some(full) = pipelines.iter().find(|p| p.is_full()) {
        let scan = wire::scan(signal, &body).map_err(|source| DecodeError::Wire { signal, source })?;
        return Err(full.overloaded(scan.items));
    }
    let mut prepared = Vec::with_capacity(pipelines.len());
    for pipeline in pipelines {
        prepared.push(pipeline.prepare(signal, body.clone())?);
    }
    let mut submitted = prepared
        .first()
        .map(|(request, rejected)| Submitted {
            items: request.item_count(),
            rejected: rejected.clone(),
            queued: None,
        })
        .unwrap_or_default();
    let mut permits = Vec::with_capacity(pipelines.len());
    for pipeline in pipelines {
        match pipeline.queue.try_reserve() {
            Ok(permit) => permits.push(permit),
            Err(_) => return Err(pipeline.overloaded(submitted.items)),
        }
    }
    let durable = pipelines.iter().filter(|p| p.is_durable()).count();
    let ack = (durable > 0).then(|| {
        let (ack, queued) = Ack::new(durable);
        submitted.queued = Some(queued);
        ack
    });
    for (((request, _), permit), pipeline) in prepared.into_iter().zip(permits).zip(pipelines) {
        let ack = ack.clone().filter(|_| pipeline.is_durable());
        let held = pipeline.memory.charge(Part::Requests, request.encoded_len());
        permit.send(Submission { request, ack, held });
    }
    Ok(submitted)
}

/// Delivers each batch to every consumer of a pipeline, each through its own queue, sharing
/// one `Arc` of the batch between them.
pub struct Fanout {
    consumers: Vec<ConsumerQueue>,
}

impl Fanout {
    pub fn new(consumers: Vec<ConsumerQueue>) -> Fanout {
        Fanout { consumers }
    }

    /// The destinations' disk queues: with any, clients are acknowledged only once their
    /// requests are in every destination queue.
    pub fn disk_queues(&self) -> Vec<Arc<DiskQueue>> {
        self.consumers
            .iter()
            .filter_map(ConsumerQueue::disk_queue)
            .cloned()
            .collect()
    }

    /// Queues `request` for every consumer, then gives the `acks` of the requests in it; the
    /// charges of the requests in it are given back once the consumers' queues hold it.
    pub async fn deliver(&self, request: Request, acks: Vec<Ack>, _held: Vec<Charge>) {
        let shared = Arc::new(request);
        for consumer in &self.consumers {
            consumer.enqueue(Arc::clone(&shared)).await;
        }
        for ack in acks {
            ack.queued();
        }
    }
}
