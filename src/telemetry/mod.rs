//! fleetpipe's view of itself: its log output, the Prometheus `/metrics` endpoint and the
//! `/healthz` and `/readyz` endpoints.

pub mod metrics;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogsConfig};
use metrics::Metrics;

/// Starts log output to stderr. `RUST_LOG`, when set, wins over the configured level.
pub fn init_logging(config: &LogsConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests running the app twice in one process) keeps the first.
    let _ = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Whether the process is up and whether it is ready to receive.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

/// `GET /healthz`: the process is up. `GET /readyz`: receivers are bound and exporters
/// configured; 503 before that and while shutting down.
pub fn health_router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "{\"status\":\"up\"}") }))
        .route(
            "/readyz",
            get(|State(health): State<Arc<Health>>| async move {
                if health.ready.load(Ordering::SeqCst) {
                    (StatusCode::OK, "{\"status\":\"ready\"}")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "{\"status\":\"not ready\"}")
                }
            }),
        )
        .with_state(health)
}

/// `GET /metrics` in the Prometheus text format, and the `routes` components serve beside it
/// (analytics' `POST /query`). Any other path is a JSON 404 saying so.
pub fn metrics_router(metrics: Arc<Metrics>, routes: Vec<Router>) -> Router {
    let router = Router::new()
        .route(
            "/metrics",
            get(|State(metrics): State<Arc<Metrics>>| async move {
                (
                    [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    metrics.render(),
                )
                    .into_response()
            }),
        )
        .with_state(metrics);
    routes
        .into_iter()
        .fold(router, Router::merge)
        .fallback(|uri: http::Uri| async move {
            let body = serde_json::json!({"error": format!("nothing is served at {}", uri.path())});
            (StatusCode::NOT_FOUND, axum::Json(body))
        })
}

/// This process's `service.instance.id`: the host's name (a pod's name in Kubernetes) and the
/// process id. Findings carry it, so that replicas tell where a finding comes from, while its
/// `fleetpipe.finding.id` (the detector and key) stays the same on every replica.
pub fn instance_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "fleetpipe".to_owned());
        format!("{host}-{}", std::process::id())
    })
}
