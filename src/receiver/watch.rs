//! Files read again when they change: a receiver's certificates and token file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

/// Checks `paths` every `interval` until `shutdown`, and runs `reload` on the blocking pool
/// (it reads files) whenever one of them changed since the last check.
pub(super) fn on_change(
    paths: Vec<PathBuf>,
    interval: Duration,
    shutdown: &CancellationToken,
    reload: impl Fn() + Send + Sync + 'static,
) {
    let shutdown = shutdown.clone();
    let reload = Arc::new(reload);
    tokio::spawn(async move {
        let stamps = || paths.iter().map(|path| modified(path)).collect::<Vec<_>>();
        let mut seen = stamps();
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let now = stamps();
            if now == seen {
                continue;
            }
            seen = now;
            let reload = Arc::clone(&reload);
            if let Err(failed) = tokio::task::spawn_blocking(move || reload()).await {
                std::panic::resume_unwind(failed.into_panic());
            }
        }
    });
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
