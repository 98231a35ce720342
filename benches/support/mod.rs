//! The enrich processor on the shared fixture registry, for the benches that need one.

use std::path::Path;
use std::sync::Arc;

use fleetpipe::enrich::{Enrich, EnrichConfig};
use fleetpipe::registry::{RegistryConfig, RegistryHandle};
use fleetpipe::telemetry::metrics::Metrics;

pub(crate) fn enricher() -> Enrich {
    let config =
        RegistryConfig::at(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/operating-model/CONFIG.yaml"));
    let metrics = Arc::new(Metrics::new());
    Enrich::new(
        RegistryHandle::load(&config, &metrics).expect("registry"),
        EnrichConfig::default(),
        metrics,
    )
}
