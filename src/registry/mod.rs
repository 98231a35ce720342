//! The integration registry: loaded from the operating model's `CONFIG.yaml`, compiled into a
//! matcher, and swapped atomically when the file changes (polled, and at once on SIGHUP).
//!
//! Readers take one snapshot per request ([`RegistryHandle::current`]), so a reload never
//! tags half a request with the old version and half with the new.

pub mod catalog;
pub mod layer;
pub mod matcher;
pub mod model;
mod parse;
pub mod shadow;
pub mod suggest;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::config::ConfigIssue;
use crate::telemetry::metrics::Metrics;
use catalog::{Catalog, CatalogConfig};
use matcher::Matcher;
pub use model::{AgentLayers, Connection, Integration, Layer};

/// The `registry` section of fleetpipe's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// The operating model's `CONFIG.yaml`, or a checkout with `CONFIG.yaml` at its root.
    pub path: PathBuf,
    /// How often the file is checked for changes; SIGHUP reloads at once.
    #[serde(default = "default_reload_interval", with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Agent name globs → layer, tried after `CONFIG.yaml`'s own `agents.layers`,
    /// e.g. `"planner-*": strategy`.
    #[serde(default)]
    pub agents: AgentLayers,
    /// When the file is missing, run with no integration registered (every outbound call is
    /// shadow, layers come from `agents` only) until it appears, instead of refusing to start.
    #[serde(default)]
    pub optional: bool,
    /// Vendors added to the built-in known-vendor catalog, or replacing one of its vendors.
    #[serde(default)]
    pub catalog: CatalogConfig,
}

impl RegistryConfig {
    /// The registry at `path` with default settings.
    pub fn at(path: impl Into<PathBuf>) -> RegistryConfig {
        RegistryConfig {
            path: path.into(),
            reload_interval: default_reload_interval(),
            agents: AgentLayers::default(),
            optional: false,
            catalog: CatalogConfig::default(),
        }
    }
}

fn default_reload_interval() -> Duration {
    Duration::from_secs(5)
}

/// Why a registry could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file is missing or unreadable: the user's path.
    #[error("cannot read registry {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is readable but wrong: the registry author's to fix; every problem listed.
    #[error("registry {path} has {} problem(s):\n{}", issues.len(), issues.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: String, issues: Vec<ConfigIssue> },
}

/// One loaded version of the registry.
#[derive(Debug)]
pub struct Registry {
    pub integrations: Vec<Integration>,
    /// `CONFIG.yaml`'s `agents.layers` followed by fleetpipe's `registry.agents`.
    pub agent_layers: Vec<(String, Layer)>,
    /// First 12 hex digits of the SHA-256 of the file.
    pub version: String,
    pub path: PathBuf,
    pub loaded_at: SystemTime,
    pub matcher: Matcher,
}

impl Registry {
    /// Reads and compiles the registry at `path` (a file, or a folder holding `CONFIG.yaml`)
    /// with the built-in catalog.
    pub fn load(path: &Path, extra_agents: &AgentLayers) -> Result<Registry, RegistryError> {
        let path = resolve_path(path);
        let text = read(&path)?;
        Registry::compile(path, &text, extra_agents, &Catalog::builtin())
    }

    /// The registry `config` names; with `optional`, an empty one while the file is missing.
    pub fn load_config(config: &RegistryConfig) -> Result<Registry, RegistryError> {
        Registry::load_with(config, &config.catalog.catalog())
    }

    fn load_with(config: &RegistryConfig, catalog: &Catalog) -> Result<Registry, RegistryError> {
        let path = resolve_path(&config.path);
        if config.optional && !path.exists() {
            return Ok(Registry {
                matcher: Matcher::new(&[], catalog),
                integrations: Vec::new(),
                agent_layers: config.agents.0.clone(),
                version: MISSING.into(),
                path,
                loaded_at: SystemTime::now(),
            });
        }
        let text = read(&path)?;
        Registry::compile(path, &text, &config.agents, catalog)
    }

    /// Whether this is the empty registry of an optional file that is missing.
    pub fn is_missing(&self) -> bool {
        self.version == MISSING
    }

    /// Parses, validates and compiles the registry read from `path`.
    fn compile(
        path: PathBuf,
        text: &str,
        extra_agents: &AgentLayers,
        catalog: &Catalog,
    ) -> Result<Registry, RegistryError> {
        let file = parse::parse(text).map_err(|issues| RegistryError::Invalid {
            path: path.display().to_string(),
            issues,
        })?;
        let mut agent_layers = file.agent_layers;
        agent_layers.extend(extra_agents.0.iter().cloned());
        Ok(Registry {
            matcher: Matcher::new(&file.integrations, catalog),
            integrations: file.integrations,
            agent_layers,
            version: version_of(text),
            path,
            loaded_at: SystemTime::now(),
        })
    }
}

/// The version of the registry of a missing optional file.
const MISSING: &str = "none";

/// Largest registry file read: a hundred thousand integrations take about 15 MiB.
const MAX_REGISTRY_BYTES: u64 = 64 << 20;

fn read(path: &Path) -> Result<String, RegistryError> {
    crate::config::read_capped(path, MAX_REGISTRY_BYTES).map_err(|source| RegistryError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// First 12 hex digits of the SHA-256 of the file's text.
fn version_of(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn resolve_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("CONFIG.yaml")
    } else {
        path.to_owned()
    }
}

/// The registry in use, replaced whole on reload.
pub struct RegistryHandle {
    current: ArcSwap<Registry>,
    /// What the last check found: the file's version, loaded or refused, or why it could not
    /// be read. A check that finds the same again does nothing: polling an unchanged file
    /// costs a read and a hash, not a parse, and a refused version is reported once.
    last_found: Mutex<String>,
    config: RegistryConfig,
    /// The catalog of `config`, made once.
    catalog: Catalog,
    /// The shadow targets enrichment has seen since start.
    pub shadow: shadow::ShadowLedger,
    metrics: Arc<Metrics>,
}

impl RegistryHandle {
    pub fn load(config: &RegistryConfig, metrics: &Arc<Metrics>) -> Result<Arc<RegistryHandle>, RegistryError> {
        let catalog = config.catalog.catalog();
        let registry = Registry::load_with(config, &catalog)?;
        // A missing optional file is found again, quietly, until it appears.
        let found = match registry.is_missing() {
            true => read(&registry.path).err().map(|e| e.to_string()).unwrap_or_default(),
            false => registry.version.clone(),
        };
        let handle = RegistryHandle {
            last_found: Mutex::new(found),
            current: ArcSwap::from_pointee(registry),
            config: config.clone(),
            catalog,
            shadow: shadow::ShadowLedger::default(),
            metrics: Arc::clone(metrics),
        };
        handle.publish();
        Ok(Arc::new(handle))
    }

    /// The registry to use for one request.
    pub fn current(&self) -> Arc<Registry> {
        self.current.load_full()
    }

    /// Loads the file again when it changed since the last check, or when `always`; a broken
    /// version is refused and the current one stays. Says whether another version is in use.
    pub fn reload(&self, always: bool) -> Result<bool, RegistryError> {
        let path = resolve_path(&self.config.path);
        let text = read(&path);
        let found = match &text {
            Ok(text) => version_of(text),
            Err(error) => error.to_string(),
        };
        let last_found = std::mem::replace(
            &mut *self.last_found.lock().unwrap_or_else(PoisonError::into_inner),
            found.clone(),
        );
        if last_found == found && !always {
            return Ok(false);
        }
        let result = text.and_then(|text| Registry::compile(path, &text, &self.config.agents, &self.catalog));
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        self.metrics
            .registry_reloads
            .get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())])
            .inc();
        let registry = result?;
        if registry.version == self.current.load().version {
            return Ok(false);
        }
        tracing::info!(version = %registry.version, integrations = registry.integrations.len(), "Integration registry reloaded.");
        self.current.store(Arc::new(registry));
        self.publish();
        Ok(true)
    }

    fn publish(&self) {
        let registry = self.current.load();
        let loaded = registry
            .loaded_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.metrics.registry_info.clear();
        let labels = vec![
            ("version".to_owned(), registry.version.clone()),
            ("path".to_owned(), registry.path.display().to_string()),
        ];
        self.metrics.registry_info.get_or_create(&labels).set(1);
        self.metrics.registry_loaded_at.set(loaded as i64);
        self.metrics
            .registry_integrations
            .set(registry.integrations.len() as i64);
    }

    /// Checks for changes every `reload_interval`, and loads the file again on SIGHUP, until
    /// `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut hangup = hangup_signal();
        let mut ticker = tokio::time::interval(self.config.reload_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let always = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => false,
                _ = recv_hangup(&mut hangup) => {
                    tracing::info!("SIGHUP: reloading the integration registry.");
                    true
                }
            };
            // Reading and compiling a large registry takes a while: off the runtime, so that
            // ingestion does not stall meanwhile.
            let handle = Arc::clone(&self);
            match tokio::task::spawn_blocking(move || handle.reload(always)).await {
                Ok(Err(error)) => {
                    tracing::error!(%error, version = %self.current.load().version, "Registry change refused; the previous version stays in use.");
                }
                Ok(Ok(_)) => {}
                Err(failed) => std::panic::resume_unwind(failed.into_panic()),
            }
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

fn hangup_signal() -> Hangup {
    #[cfg(unix)]
    {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
    }
    #[cfg(not(unix))]
    None
}

async fn recv_hangup(hangup: &mut Hangup) {
    #[cfg(unix)]
    if let Some(signal) = hangup {
        signal.recv().await;
        return;
    }
    let _ = hangup;
    std::future::pending::<()>().await
}

#[cfg(test)]
mod tests;
