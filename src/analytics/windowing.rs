//! The windowing task: turns incoming batches into window rows, closes windows on time,
//! rolls each closed one into `history` and keeps the share of traces the load allows.
//!
//! Cancellation: it ends when its queue closes, after closing nothing early.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::config::AnalyticsConfig;
use super::history::{Rollup, integrations_batch};
use super::now_nanos;
use super::window::{ClosedWindow, WindowStore};
use crate::memory::Charge;
use crate::otlp::Signal;
use crate::otlp::semconv::TagNames;
use crate::pipeline::queue::Queued;
use crate::registry::RegistryHandle;
use crate::rows::sampling::TraceSampler;
use crate::rows::{KeptColumns, WindowBuilder};
use crate::telemetry::metrics::Metrics;

/// The smallest share of traces a window narrows to: the history's estimates scale by its
/// inverse.
const MIN_PERCENTAGE: f64 = 0.01;

/// Turns incoming batches into window rows and closes windows on time.
pub(super) struct Windowing {
    pub(super) config: AnalyticsConfig,
    pub(super) store: Arc<RwLock<WindowStore>>,
    pub(super) registry: Option<Arc<RegistryHandle>>,
    /// The names of the registry tags the records carry.
    pub(super) tags: Arc<TagNames>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) closed: watch::Sender<i64>,
    /// Planned when analytics starts; without it windows close without history.
    pub(super) rollup: Option<Rollup>,
    /// Spans offered to the window being built, kept or not: they set the next one's share.
    pub(super) offered_spans: usize,
    /// The share of traces the window being built keeps.
    pub(super) percentage: f64,
    /// Spans the window being built keeps at that share (those kept under a larger one count
    /// for the share of them it keeps).
    pub(super) kept_spans: f64,
    /// The closed windows' and history's charge to the memory budget.
    pub(super) held: Charge,
}

impl Windowing {
    pub(super) async fn run(mut self, mut queue: mpsc::Receiver<Queued>) {
        let window = self.config.window.as_nanos().max(1) as i64;
        let start_of = |t: i64| t - t.rem_euclid(window);
        let mut builder = WindowBuilder::keeping(start_of(now_nanos()), self.kept())
            .tagged(Arc::clone(&self.tags))
            .sampling(TraceSampler::percentage(self.percentage));
        self.metrics.analytics_sampling_percentage.set(self.percentage);
        let mut ticker = tokio::time::interval((self.config.window / 10).max(Duration::from_millis(10)));
        loop {
            tokio::select! {
                received = queue.recv() => match received {
                    Some(queued) => {
                        builder = self.roll(builder, start_of(now_nanos()), window).await;
                        if queued.request.signal() == Signal::Traces {
                            self.offered_spans += queued.request.item_count();
                        }
                        let before = builder.span_rows();
                        if let Err(error) = builder.add(&queued.request) {
                            tracing::warn!(%error, "Analytics left out records of a batch.");
                        }
                        let added = builder.span_rows() - before;
                        self.tighten(&mut builder, added);
                    }
                    None => break,
                },
                _ = ticker.tick() => builder = self.roll(builder, start_of(now_nanos()), window).await,
            }
        }
    }

    /// Halves the share of traces the window being built keeps each time the spans it would
    /// keep reach `max_spans_per_second` times its length (the spans kept under the larger
    /// share are filtered when it closes, about half of them at each halving): a burst is held
    /// within the cap in the window it arrives in, not the next.
    fn tighten(&mut self, builder: &mut WindowBuilder, added: usize) {
        let cap = self.config.max_spans_per_second as f64 * self.config.window.as_secs_f64();
        self.kept_spans += added as f64;
        if cap == 0.0 || self.kept_spans < cap {
            return;
        }
        while self.kept_spans >= cap && self.percentage > MIN_PERCENTAGE {
            self.percentage = (self.percentage / 2.0).max(MIN_PERCENTAGE);
            self.kept_spans /= 2.0;
        }
        builder.narrow(TraceSampler::percentage(self.percentage));
        self.metrics.analytics_sampling_percentage.set(self.percentage);
    }

    pub(super) fn kept(&self) -> KeptColumns {
        self.store.read().unwrap_or_else(|e| e.into_inner()).kept
    }

    /// Closes the current window when the clock has moved past it; the next one builds the
    /// columns the detectors now read and keeps the share of traces that the closed one's
    /// offered spans call for.
    pub(super) async fn roll(&mut self, mut builder: WindowBuilder, current: i64, window: i64) -> WindowBuilder {
        if builder.window_start() == current {
            return builder;
        }
        let start = builder.window_start();
        let sampling_percentage = self.percentage;
        self.kept_spans = 0.0;
        self.percentage = self.config.next_percentage(std::mem::take(&mut self.offered_spans));
        self.metrics.analytics_sampling_percentage.set(self.percentage);
        match builder.close(current, self.kept()) {
            Ok(batches) => {
                self.close(ClosedWindow {
                    start,
                    end: start + window,
                    batches,
                    sampling_percentage,
                })
                .await
            }
            Err(error) => tracing::error!(%error, "Could not build the analytics window; it is skipped."),
        }
        builder.sampling(TraceSampler::percentage(self.percentage))
    }

    pub(super) async fn close(&mut self, closed: ClosedWindow) {
        let end = closed.end;
        let rollup = match &self.rollup {
            Some(rollup) => rollup.of(&closed).await,
            None => None,
        };
        let integrations = self.registry.as_ref().map(|r| integrations_batch(&r.current()));
        {
            let mut store = self.store.write().unwrap_or_else(|e| e.into_inner());
            if let Some(rollup) = rollup {
                store.history.push_back((closed.start, rollup));
            }
            store.windows.push_back(closed);
            if let Some(Ok(integrations)) = integrations {
                store.integrations = Some(integrations);
            }
            store.evict(
                end - self.config.retention.as_nanos() as i64,
                end - self.config.history_retention.as_nanos() as i64,
                max_window_bytes(self.config.max_windows_mib, self.held.limit()),
            );
            self.metrics.analytics_memory_bytes.set(store.memory_bytes() as i64);
            self.held.set(store.memory_bytes());
        }
        let _ = self.closed.send(end);
    }
}

/// Percentage of the memory budget closed windows may hold at most, whatever `max_windows_mib`
/// says. Windows are kept for minutes: holding more, they would leave the receivers no room,
/// and every client would be refused until they aged out (`max_windows_mib` defaults to the
/// budget's default limit). The rest is for requests, queues, the archive and the window being
/// built.
const WINDOWS_SHARE_PERCENT: usize = 40;

/// Bytes the closed windows may hold: `max_windows_mib`, within their share of the budget.
fn max_window_bytes(max_windows_mib: usize, budget_limit: usize) -> usize {
    max_windows_mib
        .saturating_mul(1 << 20)
        .min(budget_limit / 100 * WINDOWS_SHARE_PERCENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::DEFAULT_LIMIT_MIB;

    /// Guarantees: with the defaults, closed windows leave most of the budget to the rest of
    /// the process (they would otherwise be allowed all of it); a `max_windows_mib` below their
    /// share still binds.
    #[test]
    fn closed_windows_hold_at_most_their_share_of_the_budget() {
        let limit = DEFAULT_LIMIT_MIB << 20;
        let defaults = AnalyticsConfig::default().max_windows_mib;
        assert!(defaults << 20 >= limit, "the case this bound is for");
        assert_eq!(max_window_bytes(defaults, limit), limit / 100 * 40);
        assert_eq!(max_window_bytes(64, limit), 64 << 20);
        assert_eq!(max_window_bytes(defaults, usize::MAX), defaults << 20);
    }
}
