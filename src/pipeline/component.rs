//! What a component type gives the component table (`app/components.rs`): settings that check
//! themselves and know how to start. Receivers feed pipelines, processors run in them, and
//! exporters (any consumer of a pipeline's batches: a destination, analytics) take batches
//! from their [`ConsumerQueue`]. Each type implements one of these traits next to its own code;
//! the table names the types and parses their settings, so adding one is its folder and a row.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::queue::ConsumerQueue;
use super::{PipelineInput, Processor, batch::BatchConfig};
use crate::config::Problem;
use crate::memory::MemoryBudget;
use crate::otlp::Signal;
use crate::otlp::semconv::TagNames;
use crate::registry::RegistryHandle;
use crate::telemetry::metrics::Metrics;

/// A component could not start. Binding a port or reaching a destination is the
/// environment's (the user's to fix); the message says which component and why.
#[derive(Debug, thiserror::Error)]
#[error("{component}")]
pub struct StartError {
    /// The component's key path, e.g. `exporters.otlp/vendor`.
    pub component: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl StartError {
    pub fn new(component: String, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StartError {
        StartError {
            component,
            source: source.into(),
        }
    }
}

/// What every component's settings can say about themselves.
pub trait Settings: fmt::Debug + Send + Sync {
    /// The settings that cannot work, each at its key below the component.
    fn problems(&self) -> Vec<Problem> {
        Vec::new()
    }

    /// Settings that work but expose something (`fleetpipe validate` prints them, `run` logs
    /// them at every start), each at its key below the component.
    fn warnings(&self) -> Vec<Problem> {
        Vec::new()
    }

    /// The settings as their own type, for the commands that read one type's settings
    /// (`registry explain` reads the enrich processor's tag names).
    fn as_any(&self) -> &dyn Any;
}

/// What a receiver starts with.
pub struct ReceiverContext<'a> {
    pub name: &'a str,
    /// The pipelines it feeds, by the signal they carry.
    pub feeds: BTreeMap<Signal, Vec<PipelineInput>>,
    pub metrics: &'a Arc<Metrics>,
    /// The process's memory budget: request bodies are charged to it as they are read.
    pub memory: &'a Arc<MemoryBudget>,
    /// Cancelled when fleetpipe stops accepting data.
    pub shutdown: &'a CancellationToken,
    /// Where its serving tasks go; they end once in-flight requests are answered.
    pub tasks: &'a mut JoinSet<()>,
}

/// A receiver type's settings.
#[async_trait::async_trait]
pub trait ReceiverSettings: Settings {
    /// Binds the receiver's ports and starts serving; a port that cannot be bound stops
    /// start-up before any data is acknowledged.
    async fn start(&self, context: ReceiverContext<'_>) -> Result<(), StartError>;
}

/// What a processor is built with.
pub struct ProcessorContext<'a> {
    pub registry: Option<&'a Arc<RegistryHandle>>,
    pub metrics: &'a Arc<Metrics>,
}

/// A pipeline's step, as a processor's settings make it.
pub enum Step {
    /// Runs on the receiving task, in the walk that checks each request.
    Inline(Arc<dyn Processor>),
    /// The batch step between the pipeline queue and the fan-out; a pipeline's last step.
    Batch(BatchConfig),
}

/// A processor type's settings.
pub trait ProcessorSettings: Settings {
    /// Whether the processor needs the `registry:` section.
    fn needs_registry(&self) -> bool {
        false
    }

    /// The names of the tags the processor writes, when it writes registry tags.
    fn tag_names(&self) -> Option<TagNames> {
        None
    }

    /// The processor's step; `None` when what it needs is missing (validation refuses that).
    fn build(&self, context: &ProcessorContext<'_>) -> Option<Step>;
}

/// What an exporter starts with.
pub struct ExporterContext<'a> {
    pub name: &'a str,
    pub metrics: &'a Arc<Metrics>,
    /// The process's memory budget, which its memory queue and buffers draw from.
    pub memory: &'a Arc<MemoryBudget>,
    pub registry: Option<&'a Arc<RegistryHandle>>,
    /// The names under which the processors of the pipelines feeding it write registry tags.
    pub tags: TagNames,
    /// The queues of the `logs` pipelines' exporters, for an exporter that emits findings
    /// ([`ExporterSettings::emits_logs`]); empty for the others.
    pub logs_outputs: Vec<ConsumerQueue>,
    /// Cancelled at the shutdown deadline: pending deliveries give up and are counted.
    pub give_up: &'a CancellationToken,
    /// Where its worker tasks go; they end once its queue is closed and drained.
    pub workers: &'a mut JoinSet<()>,
    /// For a backend of the `loadbalancing` exporter: where a batch goes back, to be routed
    /// to another backend, once its destination has been unreachable this long.
    pub hand_back: Option<HandBack>,
}

/// See [`ExporterContext::hand_back`].
#[derive(Debug, Clone)]
pub struct HandBack {
    pub after: std::time::Duration,
    /// The exporter's name and the batch.
    pub to: tokio::sync::mpsc::UnboundedSender<(Arc<str>, Arc<crate::otlp::Request>)>,
}

/// A started exporter: the queue the fan-out feeds, and any HTTP routes it serves on the
/// metrics endpoint (analytics' `POST /query`).
pub struct StartedExporter {
    pub queue: ConsumerQueue,
    pub routes: Option<axum::Router>,
}

/// An exporter type's settings.
#[async_trait::async_trait]
pub trait ExporterSettings: Settings {
    /// Whether it sends records of its own through the `logs` pipelines' exporters (anomaly
    /// findings): it then starts after them.
    fn emits_logs(&self) -> bool {
        false
    }

    /// Whether it sends telemetry off this host to someone else's service (a vendor's OTLP
    /// endpoint, an object store): with a registry, such a data flow names its integration.
    fn leaves_the_host(&self) -> bool {
        false
    }

    /// Checks that read more than the settings (detector files), as `validate` runs them:
    /// what was checked, in a few words, or each problem as one line.
    async fn check(&self) -> Result<Option<String>, Vec<String>> {
        Ok(None)
    }

    fn start(&self, context: ExporterContext<'_>) -> Result<StartedExporter, StartError>;
}
