//! The enrich processor on the shared fixture registry, for the benches that need one.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fleetpipe::enrich::{Enrich, EnrichConfig};
use fleetpipe::registry::{AgentLayers, RegistryConfig, RegistryHandle};
use fleetpipe::telemetry::metrics::Metrics;

pub(crate) fn enricher() -> Enrich {
    let config = RegistryConfig {
        path: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/operating-model/CONFIG.yaml"),
        reload_interval: Duration::from_secs(60),
        agents: AgentLayers::default(),
        optional: false,
    };
    let metrics = Arc::new(Metrics::new());
    Enrich::new(
        RegistryHandle::load(&config, &metrics).expect("registry"),
        EnrichConfig::default(),
        metrics,
    )
}
