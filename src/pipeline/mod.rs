//! The data path between receivers and exporters: processors, the bounded pipeline queue, the
//! batch step and the fan-out to exporter queues.
//!
//! A request is acknowledged once it is in a pipeline queue. From there it is only ever
//! delivered, counted as failed, or counted as dropped: nothing disappears unaccounted.

pub mod batch;
mod payload;
mod request;
pub mod wire;

use std::sync::Arc;

use tokio::sync::mpsc;

pub use payload::{DecodeError, ExportResponse, Payload, Rejected, Signal};
pub use request::Request;

use crate::export::ExporterHandle;

/// A step applied to every request on the receiving task, before it is queued. Processors run
/// on the hot path: they must not block or await.
pub trait Processor: Send + Sync {
    fn process(&self, request: &mut Request);
}

/// The receiving end's handle to one pipeline: runs its processors and queues the result.
#[derive(Clone)]
pub struct PipelineInput {
    name: Arc<str>,
    processors: Arc<[Arc<dyn Processor>]>,
    queue: mpsc::Sender<Request>,
}

/// The pipeline queue is full: the client should retry later.
#[derive(Debug, Clone, thiserror::Error)]
#[error("pipeline {pipeline} is full")]
pub struct Overloaded {
    pub pipeline: Arc<str>,
}

impl PipelineInput {
    pub fn new(name: &str, processors: Vec<Arc<dyn Processor>>, queue: mpsc::Sender<Request>) -> PipelineInput {
        PipelineInput {
            name: name.into(),
            processors: processors.into(),
            queue,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Hands a request to every pipeline of its signal, all or nothing: either every pipeline has
/// room and takes it (the client gets success), or none takes it (the client is told to retry).
pub fn submit(pipelines: &[PipelineInput], request: Request) -> Result<(), Overloaded> {
    let mut permits = Vec::with_capacity(pipelines.len());
    for pipeline in pipelines {
        match pipeline.queue.try_reserve() {
            Ok(permit) => permits.push((pipeline, permit)),
            Err(_) => {
                return Err(Overloaded {
                    pipeline: Arc::clone(&pipeline.name),
                });
            }
        }
    }
    let mut request = Some(request);
    let last = permits.len().saturating_sub(1);
    for (index, (pipeline, permit)) in permits.into_iter().enumerate() {
        let mut copy = if index == last { request.take() } else { request.clone() };
        if let Some(mut request) = copy.take() {
            for processor in pipeline.processors.iter() {
                processor.process(&mut request);
            }
            permit.send(request);
        }
    }
    Ok(())
}

/// Delivers each batch to every exporter of a pipeline, each through its own queue.
pub struct Fanout {
    exporters: Vec<ExporterHandle>,
}

impl Fanout {
    pub fn new(exporters: Vec<ExporterHandle>) -> Fanout {
        Fanout { exporters }
    }

    pub async fn deliver(&self, request: Request) {
        let shared = Arc::new(request);
        for exporter in &self.exporters {
            exporter.enqueue(Arc::clone(&shared)).await;
        }
    }
}
