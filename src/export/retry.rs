//! Exponential backoff with jitter, honouring the destination's own retry hint.

use std::time::Duration;

use crate::export::config::RetryConfig;

/// The waits between attempts of one batch.
pub(super) struct Backoff<'a> {
    config: &'a RetryConfig,
    next: Duration,
    waited: Duration,
}

impl<'a> Backoff<'a> {
    pub(super) fn new(config: &'a RetryConfig) -> Backoff<'a> {
        Backoff {
            config,
            next: config.initial_interval,
            waited: Duration::ZERO,
        }
    }

    /// The wait before the next attempt, or `None` when retrying must stop. A hint from the
    /// destination replaces the computed wait, as the OTLP specification asks.
    pub(super) fn next_wait(&mut self, hint: Option<Duration>) -> Option<Duration> {
        if !self.config.enabled {
            return None;
        }
        let wait = hint.unwrap_or_else(|| jitter(self.next, self.config.randomization_factor));
        let budget = self.config.max_elapsed_time;
        if !budget.is_zero() && self.waited + wait > budget {
            return None;
        }
        self.waited += wait;
        self.next = self.next.mul_f64(self.config.multiplier).min(self.config.max_interval);
        Some(wait)
    }
}

fn jitter(base: Duration, factor: f64) -> Duration {
    let spread = (fastrand::f64() * 2.0 - 1.0) * factor;
    base.mul_f64((1.0 + spread).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RetryConfig {
        RetryConfig {
            enabled: true,
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_millis(400),
            max_elapsed_time: Duration::from_secs(1),
            multiplier: 2.0,
            randomization_factor: 0.0,
        }
    }

    /// Guarantees: waits grow by the multiplier up to the cap and stop at the time budget.
    #[test]
    fn grows_caps_and_stops() {
        let config = config();
        let mut backoff = Backoff::new(&config);
        let waits: Vec<_> = std::iter::from_fn(|| backoff.next_wait(None)).collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400]);
    }

    /// Guarantees: the destination's hint replaces the computed wait.
    #[test]
    fn honours_hint() {
        let config = config();
        let mut backoff = Backoff::new(&config);
        assert_eq!(
            backoff.next_wait(Some(Duration::from_millis(700))),
            Some(Duration::from_millis(700))
        );
        assert_eq!(backoff.next_wait(Some(Duration::from_millis(700))), None);
    }

    /// Guarantees: jitter stays within the randomisation factor.
    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..1000 {
            let wait = jitter(Duration::from_millis(1000), 0.5).as_millis();
            assert!((500..=1500).contains(&wait), "{wait}");
        }
    }
}
