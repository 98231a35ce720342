//! `fleetpipe run`: builds the pipelines from a validated configuration, serves until a
//! termination signal, then drains within the configured deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::analytics::{self, query::QueryService};
use crate::config::{Config, ExporterConfig, ProcessorConfig, ReceiverConfig, component_type};
use crate::enrich::Enrich;
use crate::export::{self, ExporterHandle};
use crate::pipeline::batch::{self, BatchConfig};
use crate::pipeline::{Fanout, PipelineInput, Processor, Signal};
use crate::receiver;
use crate::registry::RegistryHandle;
use crate::server::{self, ServerLimits};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::{self, Health};

pub async fn run(config: Config) -> anyhow::Result<()> {
    telemetry::init_logging(&config.service.telemetry.logs);
    export::install_crypto_provider();
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let shutdown = CancellationToken::new();
    let give_up = CancellationToken::new();
    let endpoints_shutdown = CancellationToken::new();

    let registry = match &config.registry {
        Some(registry_config) => {
            let handle = RegistryHandle::load(registry_config, &metrics)?;
            let current = handle.current();
            tracing::info!(path = %current.path.display(), version = %current.version, integrations = current.integrations.len(), "Integration registry loaded.");
            tokio::spawn(Arc::clone(&handle).watch(endpoints_shutdown.clone()));
            Some(handle)
        }
        None => None,
    };

    let mut exporter_workers = JoinSet::new();
    let Exporters {
        handles: exporters,
        query,
    } = start_exporters(&config, registry.as_ref(), &metrics, &give_up, &mut exporter_workers)?;
    let mut batchers = JoinSet::new();
    let stages = Stages {
        config: &config,
        registry: registry.as_ref(),
        metrics: &metrics,
    };
    let inputs = start_pipelines(&stages, &exporters, &mut batchers);
    drop(exporters);

    let mut receivers = JoinSet::new();
    for (name, receiver_config) in &config.receivers {
        let ReceiverConfig::Otlp(otlp) = receiver_config;
        let feeds = pipelines_fed_by(&config, name, &inputs);
        if feeds.is_empty() {
            continue;
        }
        let bound = receiver::bind(name, otlp, feeds, &metrics).await?;
        bound.serve(&shutdown, &mut receivers);
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
        endpoints_shutdown.clone(),
    ));
    endpoints.spawn(server::serve(
        metrics_listener,
        telemetry::metrics_router(Arc::clone(&metrics), query),
        limits,
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

/// Every exporter a pipeline uses, and the analytics query service if analytics is one.
struct Exporters {
    handles: BTreeMap<String, ExporterHandle>,
    query: Option<QueryService>,
}

/// Starts every exporter that a pipeline uses. Analytics starts last: its findings go out
/// through the exporters of the `logs` pipelines.
fn start_exporters(
    config: &Config,
    registry: Option<&Arc<RegistryHandle>>,
    metrics: &Arc<Metrics>,
    give_up: &CancellationToken,
    workers: &mut JoinSet<()>,
) -> anyhow::Result<Exporters> {
    let used: BTreeSet<&String> = config.service.pipelines.values().flat_map(|p| &p.exporters).collect();
    let mut handles = BTreeMap::new();
    let mut analytics = Vec::new();
    for name in used {
        match &config.exporters[name] {
            ExporterConfig::Analytics(analytics_config) => analytics.push((name, analytics_config)),
            exporter_config => {
                let handle = export::start(name, exporter_config, metrics, give_up, workers)
                    .with_context(|| format!("exporters.{name}"))?;
                handles.insert(name.clone(), handle);
            }
        }
    }
    let mut query = None;
    for (name, analytics_config) in analytics {
        let outputs: BTreeSet<&String> = config
            .service
            .pipelines
            .iter()
            .filter(|(pipeline, _)| component_type(pipeline) == "logs")
            .flat_map(|(_, p)| &p.exporters)
            .filter(|e| handles.contains_key(*e))
            .collect();
        if outputs.is_empty() {
            tracing::warn!(exporter = %name, "No logs pipeline with an exporter: anomaly findings go only to signal files.");
        }
        let outputs = outputs.into_iter().map(|e| handles[e].clone()).collect();
        let (handle, service) = analytics::start(name, analytics_config, registry.cloned(), outputs, metrics, workers);
        handles.insert(name.clone(), handle);
        query.get_or_insert(service);
    }
    Ok(Exporters { handles, query })
}

/// Starts each pipeline's batch task and returns the pipelines' inputs by name.
fn start_pipelines(
    stages: &Stages<'_>,
    exporters: &BTreeMap<String, ExporterHandle>,
    batchers: &mut JoinSet<()>,
) -> BTreeMap<String, PipelineInput> {
    let mut inputs = BTreeMap::new();
    for (name, pipeline) in &stages.config.service.pipelines {
        let (tx, rx) = mpsc::channel(pipeline.queue_size.max(1));
        let (processors, batch_config) = stages.build(&pipeline.processors);
        let fanout = Fanout::new(pipeline.exporters.iter().map(|e| exporters[e].clone()).collect());
        batchers.spawn(batch::run(rx, batch_config, fanout));
        inputs.insert(name.clone(), PipelineInput::new(name, processors, tx));
    }
    inputs
}

/// What processors are built from.
struct Stages<'a> {
    config: &'a Config,
    registry: Option<&'a Arc<RegistryHandle>>,
    metrics: &'a Arc<Metrics>,
}

impl Stages<'_> {
    /// The inline processors of a pipeline, in order, and its batch step if it has one.
    fn build(&self, names: &[String]) -> (Vec<Arc<dyn Processor>>, Option<BatchConfig>) {
        let mut processors: Vec<Arc<dyn Processor>> = Vec::new();
        let mut batch = None;
        for name in names {
            match (&self.config.processors[name], self.registry) {
                (ProcessorConfig::Batch(config), _) => batch = Some(config.clone()),
                (ProcessorConfig::Enrich(config), Some(registry)) => processors.push(Arc::new(Enrich::new(
                    Arc::clone(registry),
                    config.clone(),
                    Arc::clone(self.metrics),
                ))),
                // Validation refuses `enrich` without a registry.
                (ProcessorConfig::Enrich(_), None) => {}
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
