//! `fleetpipe run`: builds the pipelines from a validated configuration, serves until a
//! termination signal, then drains within the configured deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::components::Config;
use crate::config::component_type;
use crate::export;
use crate::govern::Flow;
use crate::memory::MemoryBudget;
use crate::otlp::Signal;
use crate::pipeline::batch::{self, BatchConfig};
use crate::pipeline::component::{ExporterContext, ProcessorContext, ReceiverContext, Step};
use crate::pipeline::queue::ConsumerQueue;
use crate::pipeline::{Fanout, PipelineInput, Processor};
use crate::registry::RegistryHandle;
use crate::server::{self, ServerLimits};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::{self, Health};

pub(super) async fn run(config: Config) -> anyhow::Result<()> {
    telemetry::init_logging(&config.service.telemetry.logs);
    export::install_crypto_provider();
    let memory = MemoryBudget::new(MemoryBudget::limit_for(config.service.memory_limit_mib));
    let mut metrics = Metrics::new();
    memory.register(metrics.registry_mut());
    let metrics = Arc::new(metrics);
    tracing::info!(
        limit_mib = memory.limit() >> 20,
        "Memory budget set: new data is refused with a retry hint above 80 % of it."
    );
    let health = Arc::new(Health::default());
    let shutdown = CancellationToken::new();
    let give_up = CancellationToken::new();
    let endpoints_shutdown = CancellationToken::new();

    let registry = match &config.registry {
        Some(registry_config) => {
            let handle = RegistryHandle::load(registry_config, &metrics)?;
            let current = handle.current();
            if current.is_missing() {
                tracing::warn!(path = %current.path.display(), "No operating model here: no integration is registered, so every outbound call shows as shadow and layers are unknown. Put the operating model's CONFIG.yaml there, or set `registry.path` to it (`fleetpipe config default` prints the configuration); it is loaded as soon as it appears.");
            } else {
                tracing::info!(path = %current.path.display(), version = %current.version, integrations = current.integrations.len(), "Integration registry loaded.");
            }
            tokio::spawn(Arc::clone(&handle).watch(endpoints_shutdown.clone()));
            Some(handle)
        }
        None => None,
    };

    let current = registry.as_ref().map(|handle| handle.current());
    let (allowed, warnings) = super::flows::entries(&config, current.as_deref())?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    for line in super::flows::explain(&config, &allowed)? {
        tracing::info!("Data flow of {line}");
    }
    let flows = super::flows::build(&config, &allowed)?;
    let mut exporter_workers = JoinSet::new();
    let Exporters {
        queues: exporters,
        mut routes,
    } = start_exporters(
        &config,
        registry.as_ref(),
        (&metrics, &memory),
        (&give_up, &flows),
        &mut exporter_workers,
    )?;
    routes.extend(
        registry
            .as_ref()
            .map(|r| crate::registry::shadow::router(Arc::clone(r))),
    );
    let mut batchers = JoinSet::new();
    let stages = Stages {
        config: &config,
        registry: registry.as_ref(),
        metrics: &metrics,
        memory: &memory,
    };
    let inputs = start_pipelines(&stages, &exporters, &mut batchers);
    drop(exporters);

    let mut receivers = JoinSet::new();
    for (name, receiver) in &config.receivers {
        let feeds = pipelines_fed_by(&config, name, &inputs);
        if feeds.is_empty() {
            continue;
        }
        let context = ReceiverContext {
            name,
            feeds,
            metrics: &metrics,
            memory: &memory,
            shutdown: &shutdown,
            tasks: &mut receivers,
        };
        receiver.start(context).await?;
    }
    drop(inputs);

    let mut endpoints = JoinSet::new();
    let health_listener = server::bind(config.service.health.endpoint)
        .await
        .context("service.health.endpoint")?;
    let metrics_listener = server::bind(config.service.telemetry.metrics.endpoint)
        .await
        .context("service.telemetry.metrics.endpoint")?;
    let limits = ServerLimits::default();
    endpoints.spawn(server::serve(
        health_listener,
        telemetry::health_router(Arc::clone(&health)),
        limits,
        None,
        endpoints_shutdown.clone(),
    ));
    endpoints.spawn(server::serve(
        metrics_listener,
        telemetry::metrics_router(Arc::clone(&metrics), routes),
        limits,
        None,
        endpoints_shutdown.clone(),
    ));
    health.set_ready(true);
    tracing::info!(
        health = %config.service.health.endpoint,
        metrics = %config.service.telemetry.metrics.endpoint,
        "fleetpipe is ready."
    );

    wait_for_termination().await;
    tracing::info!(deadline = ?config.service.shutdown_timeout, "Shutting down: no new data is accepted; draining.");
    health.set_ready(false);
    shutdown.cancel();
    let deadline = tokio::spawn({
        let give_up = give_up.clone();
        let timeout = config.service.shutdown_timeout;
        async move {
            tokio::time::sleep(timeout).await;
            give_up.cancel();
        }
    });
    while receivers.join_next().await.is_some() {}
    while batchers.join_next().await.is_some() {}
    while exporter_workers.join_next().await.is_some() {}
    deadline.abort();
    report_unsent(&config, &metrics);
    endpoints_shutdown.cancel();
    while endpoints.join_next().await.is_some() {}
    Ok(())
}

/// Every exporter a pipeline uses, and the routes they serve on the metrics endpoint.
struct Exporters {
    queues: BTreeMap<String, ConsumerQueue>,
    routes: Vec<axum::Router>,
}

/// Starts every exporter that a pipeline uses. Those that emit logs of their own (analytics'
/// findings) start last, fed the queues of the `logs` pipelines' exporters.
fn start_exporters(
    config: &Config,
    registry: Option<&Arc<RegistryHandle>>,
    (metrics, memory): (&Arc<Metrics>, &Arc<MemoryBudget>),
    (give_up, flows): (&CancellationToken, &BTreeMap<String, Arc<Flow>>),
    workers: &mut JoinSet<()>,
) -> anyhow::Result<Exporters> {
    let used: BTreeSet<&String> = config.service.pipelines.values().flat_map(|p| &p.exporters).collect();
    let (emitting, plain): (Vec<&String>, Vec<&String>) =
        used.into_iter().partition(|name| config.exporters[*name].emits_logs());
    let mut started = Exporters {
        queues: BTreeMap::new(),
        routes: Vec::new(),
    };
    for name in plain.into_iter().chain(emitting) {
        let exporter = &config.exporters[name];
        let logs_outputs = if exporter.emits_logs() {
            logs_exporters(config, &started.queues)
        } else {
            Vec::new()
        };
        let context = ExporterContext {
            name,
            metrics,
            memory,
            registry,
            tags: config.tag_names_for(name).map_err(anyhow::Error::msg)?,
            logs_outputs,
            give_up,
            workers,
            hand_back: None,
        };
        let exporter = exporter.start(context)?;
        let queue = exporter.queue.governed_by(flows.get(name).cloned());
        started.queues.insert(name.clone(), queue);
        started.routes.extend(exporter.routes);
    }
    Ok(started)
}

/// The queues of the started exporters of the `logs` pipelines.
fn logs_exporters(config: &Config, queues: &BTreeMap<String, ConsumerQueue>) -> Vec<ConsumerQueue> {
    let names: BTreeSet<&String> = config
        .service
        .pipelines
        .iter()
        .filter(|(pipeline, _)| component_type(pipeline) == "logs")
        .flat_map(|(_, p)| &p.exporters)
        .filter(|e| queues.contains_key(*e))
        .collect();
    names.into_iter().map(|e| queues[e].clone()).collect()
}

/// Starts each pipeline's batch task and returns the pipelines' inputs by name.
fn start_pipelines(
    stages: &Stages<'_>,
    exporters: &BTreeMap<String, ConsumerQueue>,
    batchers: &mut JoinSet<()>,
) -> BTreeMap<String, PipelineInput> {
    let mut inputs = BTreeMap::new();
    for (name, pipeline) in &stages.config.service.pipelines {
        let (tx, rx) = mpsc::channel(pipeline.queue_size.max(1));
        let (processors, batch_config) = stages.build(&pipeline.processors);
        let fanout = Fanout::new(pipeline.exporters.iter().map(|e| exporters[e].clone()).collect());
        let disks = fanout.disk_queues();
        batchers.spawn(batch::run(rx, batch_config, fanout));
        inputs.insert(
            name.clone(),
            PipelineInput::new(name, processors, tx, disks, stages.memory),
        );
    }
    inputs
}

/// What processors are built from.
struct Stages<'a> {
    config: &'a Config,
    registry: Option<&'a Arc<RegistryHandle>>,
    metrics: &'a Arc<Metrics>,
    memory: &'a Arc<MemoryBudget>,
}

impl Stages<'_> {
    /// The inline processors of a pipeline, in order, and its batch step if it has one
    /// (validation keeps `batch` last).
    fn build(&self, names: &[String]) -> (Vec<Arc<dyn Processor>>, Option<BatchConfig>) {
        let context = ProcessorContext {
            registry: self.registry,
            metrics: self.metrics,
        };
        let mut processors: Vec<Arc<dyn Processor>> = Vec::new();
        let mut batch = None;
        for name in names {
            match self.config.processors[name].build(&context) {
                Some(Step::Inline(processor)) => processors.push(processor),
                Some(Step::Batch(config)) => batch = Some(config),
                // Validation refuses a processor without what it needs.
                None => {}
            }
        }
        (processors, batch)
    }
}

/// The pipelines a receiver feeds, grouped by the signal they carry.
fn pipelines_fed_by(
    config: &Config,
    receiver: &str,
    inputs: &BTreeMap<String, PipelineInput>,
) -> BTreeMap<Signal, Vec<PipelineInput>> {
    let mut feeds: BTreeMap<Signal, Vec<PipelineInput>> = BTreeMap::new();
    for (name, pipeline) in &config.service.pipelines {
        if !pipeline.receivers.iter().any(|r| r == receiver) {
            continue;
        }
        if let Some(signal) = Signal::from_name(component_type(name)) {
            feeds.entry(signal).or_default().push(inputs[name].clone());
        }
    }
    feeds
}

async fn wait_for_termination() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(error) => {
                tracing::warn!(%error, "Cannot listen for SIGTERM; only SIGINT stops fleetpipe.");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Logs, per exporter, what could not be delivered before the shutdown deadline.
fn report_unsent(config: &Config, metrics: &Metrics) {
    let mut unsent_total = 0;
    for name in config.exporters.keys() {
        for signal in Signal::ALL {
            let labels = metrics.exporter_loss(name, signal, "shutdown");
            let unsent = metrics.exporter_failed.get(&labels).map_or(0, |c| c.get());
            if unsent > 0 {
                tracing::error!(exporter = %name, %signal, items = unsent, "Shutdown deadline reached before these items were delivered.");
            }
            unsent_total += unsent;
        }
    }
    if unsent_total == 0 {
        tracing::info!("Shutdown complete: everything accepted was delivered or accounted for.");
    }
}
