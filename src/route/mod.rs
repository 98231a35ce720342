//! The `loadbalancing` exporter: the routing tier in front of many fleetpipe replicas. Each
//! record goes to one backend by its routing key (`traceID`, `agent`, `service`, `resource`)
//! through a consistent-hash ring ([`ring`]), split on the wire ([`crate::otlp::split`]); the backends come
//! from a static list or DNS (a Kubernetes headless Service), re-resolved on an interval. Each
//! backend is an `otlp` exporter of its own, with the queue, retries and TLS of
//! `protocol.otlp`, configured as the Collector's `loadbalancing` exporter is.

pub mod ring;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Problem;
use crate::export::config::OtlpGrpcExporterConfig;
use crate::memory::{MemoryBudget, Part};
use crate::otlp::Request;
use crate::otlp::semconv::TagNames;
use crate::otlp::split::{self, RoutingKey};
use crate::pipeline::component::{ExporterContext, ExporterSettings, HandBack, Settings, StartError, StartedExporter};
use crate::pipeline::queue::{ConsumerQueue, Queued};
use crate::telemetry::metrics::Metrics;
use ring::Ring;

/// `exporters.loadbalancing`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancingConfig {
    #[serde(default)]
    pub routing_key: RoutingKey,
    #[serde(default)]
    pub protocol: Protocol,
    pub resolver: Resolver,
    /// Batches waiting to be routed; full, the pipelines wait.
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
    /// A backend unreachable this long hands its batches back to be routed to the next
    /// backend on the ring, and leaves the ring until it is tried again this long after.
    #[serde(default = "default_reroute_after", with = "humantime_serde")]
    pub reroute_after: Duration,
}

fn default_reroute_after() -> Duration {
    Duration::from_secs(10)
}

fn default_queue_size() -> usize {
    1000
}

/// How backends are reached.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    /// An `otlp` exporter's settings but `endpoint`, which the resolver gives.
    #[serde(default)]
    pub otlp: serde_yaml::Mapping,
}

/// Where the backends come from: one of the three.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolver {
    #[serde(rename = "static", default)]
    pub static_list: Option<StaticResolver>,
    #[serde(default)]
    pub dns: Option<DnsResolver>,
    #[serde(default)]
    pub file: Option<FileResolver>,
}

impl Resolver {
    /// How often the backends are looked up again, for the resolvers that do.
    fn interval(&self) -> Option<Duration> {
        (self.dns.as_ref().map(|dns| dns.interval)).or(self.file.as_ref().map(|file| file.interval))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticResolver {
    /// `host:port` (or `host`, port 4317) of each backend.
    pub hostnames: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsResolver {
    /// A name whose A/AAAA records are the backends.
    pub hostname: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// How often the name is resolved again.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
}

/// Backends listed in a file that something else keeps (a service-discovery agent, a config
/// management run): `host:port` (or `host`, port 4317) a line; blank lines and `#` comments
/// are passed over.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileResolver {
    pub path: std::path::PathBuf,
    /// How often the file is read again.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
}

fn default_port() -> u16 {
    4317
}

fn default_interval() -> Duration {
    Duration::from_secs(5)
}

impl LoadBalancingConfig {
    /// The `otlp` exporter settings of the backend at `address` (`host:port`).
    fn backend(&self, address: &str) -> Result<OtlpGrpcExporterConfig, String> {
        let scheme = if self.protocol.otlp.contains_key("tls") {
            "https"
        } else {
            "http"
        };
        let mut settings = self.protocol.otlp.clone();
        settings.insert("endpoint".into(), format!("{scheme}://{address}").into());
        serde_yaml::from_value(serde_yaml::Value::Mapping(settings)).map_err(|e| e.to_string())
    }
}

/// The backends a resolver file lists.
fn listed(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .map(with_port)
        .collect()
}

/// `host:port`, the port 4317 when not given.
fn with_port(hostname: &str) -> String {
    let bracketed_or_plain = !hostname.contains(':') || hostname.ends_with(']');
    if bracketed_or_plain {
        format!("{hostname}:4317")
    } else {
        hostname.to_owned()
    }
}

impl Settings for LoadBalancingConfig {
    fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let resolvers = [
            self.resolver.static_list.is_some(),
            self.resolver.dns.is_some(),
            self.resolver.file.is_some(),
        ];
        if resolvers.iter().filter(|given| **given).count() != 1 {
            problems.push(Problem::new("resolver", "give one of `static`, `dns` and `file`"));
        }
        if self
            .resolver
            .static_list
            .as_ref()
            .is_some_and(|list| list.hostnames.is_empty())
        {
            problems.push(Problem::new("resolver.static.hostnames", "lists no backend"));
        }
        if self.protocol.otlp.contains_key("endpoint") {
            problems.push(Problem::new(
                "protocol.otlp.endpoint",
                "the resolver gives each backend's endpoint",
            ));
        }
        match self.backend("backend:4317") {
            Ok(backend) => problems.extend(
                backend
                    .problems()
                    .into_iter()
                    .map(|p| Problem::new(&format!("protocol.otlp.{}", p.key), p.message)),
            ),
            Err(message) => problems.push(Problem::new("protocol.otlp", message)),
        }
        if self.queue_size == 0 {
            problems.push(Problem::new("queue_size", "must be at least 1"));
        }
        problems
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl ExporterSettings for LoadBalancingConfig {
    fn start(&self, context: ExporterContext<'_>) -> Result<StartedExporter, StartError> {
        let (tx, rx) = mpsc::channel(self.queue_size);
        let queue = ConsumerQueue::new(
            context.name,
            tx,
            true,
            None,
            (context.memory, Part::Queues),
            context.metrics,
        );
        let (hand_back, handed_back) = mpsc::unbounded_channel();
        let mut router = Router {
            hand_back: HandBack {
                after: self.reroute_after,
                to: hand_back,
            },
            down: BTreeMap::new(),
            live: Vec::new(),
            name: context.name.to_owned(),
            config: self.clone(),
            metrics: Arc::clone(context.metrics),
            memory: Arc::clone(context.memory),
            give_up: context.give_up.clone(),
            names: Vec::new(),
            backends: BTreeMap::new(),
            ring: Ring::default(),
            workers: JoinSet::new(),
        };
        if let Some(list) = &self.resolver.static_list {
            let addresses = list.hostnames.iter().map(|h| with_port(h)).collect();
            router
                .set_backends(addresses)
                .map_err(|e| StartError::new(format!("exporters.{}.protocol.otlp", context.name), e))?;
        }
        context.workers.spawn(router.run(rx, handed_back));
        Ok(StartedExporter { queue, routes: None })
    }
}

/// The routing task: the ring of the current backends, and their queues.
struct Router {
    name: String,
    config: LoadBalancingConfig,
    metrics: Arc<Metrics>,
    memory: Arc<MemoryBudget>,
    give_up: CancellationToken,
    /// The backends' addresses, sorted.
    names: Vec<String>,
    backends: BTreeMap<String, ConsumerQueue>,
    /// Backends that handed a batch back, and since when.
    down: BTreeMap<String, tokio::time::Instant>,
    /// The backends on the ring, sorted: the ring's indexes. All of them when all are down.
    live: Vec<String>,
    ring: Ring,
    hand_back: HandBack,
    /// The backends' exporter workers; each ends once its queue is dropped and drained.
    workers: JoinSet<()>,
}

impl Router {
    async fn run(
        mut self,
        mut queue: mpsc::Receiver<Queued>,
        mut handed_back: mpsc::UnboundedReceiver<(Arc<str>, Arc<Request>)>,
    ) {
        let every = self.config.resolver.interval();
        let mut resolve = tokio::time::interval(every.unwrap_or(Duration::from_secs(86_400)));
        let mut revisit = tokio::time::interval(self.config.reroute_after);
        if every.is_some() {
            // Backends before the first batch; the interval's first tick looks again at once.
            self.resolve().await;
        }
        loop {
            tokio::select! {
                queued = queue.recv() => match queued {
                    Some(queued) => self.route(&queued.request).await,
                    None => break,
                },
                Some((exporter, request)) = handed_back.recv() => {
                    let prefix = format!("{}/", self.name);
                    let address = exporter.strip_prefix(prefix.as_str()).unwrap_or(&exporter).to_owned();
                    self.mark_down(address);
                    self.route(&request).await;
                }
                _ = resolve.tick(), if every.is_some() => self.resolve().await,
                _ = revisit.tick() => self.revisit(),
            }
        }
        // Batches handed back from now on stay with their backend's own retries.
        drop(handed_back);
        self.backends.clear();
        while self.workers.join_next().await.is_some() {}
    }

    /// Takes a backend that handed a batch back off the ring: its keys go to the next
    /// backends until it is tried again.
    fn mark_down(&mut self, address: String) {
        if self.down.insert(address.clone(), tokio::time::Instant::now()).is_none() {
            tracing::warn!(exporter = %self.name, backend = %address, "Load balancing: backend unreachable; its keys go to the next backends for now.");
            self.rebuild_ring();
        }
    }

    /// Puts backends down for `reroute_after` back on the ring, to be tried again.
    fn revisit(&mut self) {
        let before = self.down.len();
        let after = self.config.reroute_after;
        self.down.retain(|_, since| since.elapsed() < after);
        if self.down.len() != before {
            self.rebuild_ring();
        }
    }

    fn rebuild_ring(&mut self) {
        let live: Vec<String> = self
            .names
            .iter()
            .filter(|name| !self.down.contains_key(*name))
            .cloned()
            .collect();
        self.live = if live.is_empty() { self.names.clone() } else { live };
        self.ring = Ring::new(&self.live);
    }

    /// Looks the DNS name up again, or reads the file again; a failed look-up keeps the
    /// backends there are.
    async fn resolve(&mut self) {
        let (looked_up, source) = if let Some(dns) = &self.config.resolver.dns {
            let found = tokio::net::lookup_host((dns.hostname.as_str(), dns.port)).await;
            let addresses = found.map(|addresses| addresses.map(|a| a.to_string()).collect::<Vec<_>>());
            (addresses, dns.hostname.clone())
        } else if let Some(file) = &self.config.resolver.file {
            let read = tokio::fs::read_to_string(&file.path).await;
            (read.map(|text| listed(&text)), file.path.display().to_string())
        } else {
            return;
        };
        match looked_up {
            Ok(addresses) if addresses.is_empty() => {
                tracing::warn!(exporter = %self.name, %source, "Load balancing: no backend found; keeping the backends there are.");
            }
            Ok(addresses) => {
                if let Err(error) = self.set_backends(addresses) {
                    tracing::error!(exporter = %self.name, %error, "Load balancing: a backend cannot be set up.");
                }
            }
            Err(error) => {
                tracing::warn!(exporter = %self.name, %source, %error, "Load balancing: look-up failed; keeping the backends there are.");
            }
        }
    }

    /// Makes `addresses` the backends: starts those that are new, lets those that left drain
    /// what they hold, and rebuilds the ring.
    fn set_backends(&mut self, mut addresses: Vec<String>) -> Result<(), String> {
        addresses.sort();
        addresses.dedup();
        if addresses == self.names {
            return Ok(());
        }
        for address in &addresses {
            if self.backends.contains_key(address) {
                continue;
            }
            let settings = self.config.backend(address)?;
            let name = format!("{}/{address}", self.name);
            let context = ExporterContext {
                name: &name,
                metrics: &self.metrics,
                memory: &self.memory,
                registry: None,
                tags: TagNames::default(),
                logs_outputs: Vec::new(),
                give_up: &self.give_up,
                workers: &mut self.workers,
                hand_back: Some(self.hand_back.clone()),
            };
            let started = settings.start(context).map_err(|e| e.to_string())?;
            self.backends.insert(address.clone(), started.queue);
        }
        self.backends.retain(|address, _| addresses.contains(address));
        self.down.retain(|address, _| addresses.contains(address));
        tracing::info!(exporter = %self.name, backends = ?addresses, "Load balancing: backends set.");
        self.names = addresses;
        self.rebuild_ring();
        Ok(())
    }

    /// Sends each record of a batch to its key's backend.
    async fn route(&mut self, request: &Request) {
        let signal = request.signal();
        let mut shares: BTreeMap<usize, (Vec<(bytes::Bytes, u64)>, usize)> = BTreeMap::new();
        for (part, randomness) in request.parts_with_trace_randomness() {
            let ring = &self.ring;
            let owner = |key: &[u8]| ring.owner(key).unwrap_or(0);
            match split::split(signal, part, self.config.routing_key, owner) {
                Ok(split) => {
                    for (backend, share) in split {
                        let (parts, items) = shares.entry(backend).or_default();
                        parts.push((share.request.into(), randomness));
                        *items += share.items;
                    }
                }
                Err(error) => {
                    tracing::error!(exporter = %self.name, %signal, %error, "Load balancing: a batch part does not split; dropped.");
                    self.count_failed(signal, request.item_count(), "malformed");
                }
            }
        }
        if self.names.is_empty() {
            tracing::error!(exporter = %self.name, %signal, "Load balancing: no backend; batch dropped.");
            self.count_failed(signal, request.item_count(), "no_backend");
            return;
        }
        for (backend, (parts, items)) in shares {
            let queue = &self.backends[&self.live[backend]];
            queue.enqueue(Arc::new(Request::from_parts(signal, parts, items))).await;
        }
    }

    fn count_failed(&self, signal: crate::otlp::Signal, items: usize, reason: &'static str) {
        let labels = self.metrics.exporter_loss(&self.name, signal, reason);
        self.metrics.exporter_failed.get_or_create(&labels).inc_by(items as u64);
    }
}
