//! Which traces analytics keeps when it samples: a CPU cap for large fleets that trades the
//! detectors' precision for cost (see the README's "Sampling" section), either a fixed
//! percentage or one each window picks so that about `max_spans_per_second` are kept.
//!
//! The decision follows OpenTelemetry's consistent probability sampling: a trace's randomness
//! is the last 7 bytes (56 bits) of its id, and it is kept when that value is at least the
//! rejection threshold `(1 - p) · 2^56`. Every span of a trace gets the same answer, so a kept
//! trace is whole, and a trace kept at some percentage is kept at every higher one.

use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::error::ArrowError;

use crate::otlp::wire::trace_randomness;

/// Values of a trace id's 56 random bits.
const RANDOMNESS_VALUES: f64 = (1u64 << 56) as f64;

/// The spans a window keeps, by trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceSampler {
    /// Kept traces have randomness at or above this; 0 keeps every trace.
    threshold: u64,
}

impl TraceSampler {
    /// Keeps every span.
    pub const ALL: TraceSampler = TraceSampler { threshold: 0 };

    /// Keeps about `percentage` percent of traces; `percentage` is within `(0, 100]`
    /// (checked by the config), and anything at or above 100 keeps all.
    pub fn percentage(percentage: f64) -> TraceSampler {
        let rejected = (1.0 - percentage / 100.0).clamp(0.0, 1.0);
        TraceSampler {
            threshold: (rejected * RANDOMNESS_VALUES).round() as u64,
        }
    }

    /// Whether the spans of `trace_id` are kept. An id that is not 16 bytes carries no
    /// randomness to decide by, so its span is kept rather than silently lost.
    pub fn keeps(self, trace_id: &[u8]) -> bool {
        self.keeps_randomness(trace_randomness(trace_id))
    }

    /// Whether a trace of this [`trace_randomness`] is kept; for the highest randomness of a
    /// request's traces, whether any of them is.
    pub fn keeps_randomness(self, randomness: u64) -> bool {
        randomness >= self.threshold
    }
}

/// The percentage of traces a window keeps: at most `ceiling` (the configured
/// `sampling_percentage`), and low enough that the spans the last window was offered
/// (`offered_spans` over `window`) would have been kept at about `max_spans_per_second`.
/// Without a cap (0) or without spans to go by, `ceiling`.
/// The rows of `batches` (of the `spans` table) whose traces `sampler` keeps, by their
/// `trace_id` in hex; a row whose id carries no randomness is kept.
pub fn retain_kept(batches: Vec<RecordBatch>, sampler: TraceSampler) -> Result<Vec<RecordBatch>, ArrowError> {
    batches
        .into_iter()
        .map(|batch| {
            let Some(ids) = batch.column_by_name("trace_id").and_then(|c| c.as_string_opt::<i32>()) else {
                return Ok(batch);
            };
            let kept: BooleanArray = (0..ids.len())
                .map(|row| Some(ids.is_null(row) || sampler.keeps_randomness(hex_randomness(ids.value(row)))))
                .collect();
            filter_record_batch(&batch, &kept)
        })
        .collect()
}

/// The randomness of a trace id in hex: its last 14 digits; `u64::MAX` (kept) when it has none.
fn hex_randomness(trace_id: &str) -> u64 {
    match trace_id.get(18..) {
        Some(digits) if trace_id.len() == 32 => u64::from_str_radix(digits, 16).unwrap_or(u64::MAX),
        _ => u64::MAX,
    }
}

pub fn percentage_within(ceiling: f64, max_spans_per_second: u64, offered_spans: usize, window: Duration) -> f64 {
    if max_spans_per_second == 0 || offered_spans == 0 {
        return ceiling;
    }
    let fitting = 100.0 * max_spans_per_second as f64 * window.as_secs_f64() / offered_spans as f64;
    ceiling.min(fitting)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace_id(randomness: u64) -> [u8; 16] {
        let mut id = [0xAB; 16];
        id[9..].copy_from_slice(&randomness.to_be_bytes()[1..]);
        id
    }

    /// Guarantees: the threshold is the specification's `(1 - p) · 2^56` and the comparison
    /// includes it, so 50% keeps exactly the upper half of the randomness range.
    #[test]
    fn half_keeps_the_upper_half_of_the_randomness_range() {
        let half = TraceSampler::percentage(50.0);
        assert!(half.keeps(&trace_id(1 << 55)));
        assert!(!half.keeps(&trace_id((1 << 55) - 1)));
        assert!(half.keeps(&trace_id((1 << 56) - 1)));
        assert!(!half.keeps(&trace_id(0)));
    }

    /// Guarantees: 100% keeps every trace, a tiny percentage keeps only the top of the
    /// range, and ids that are not 16 bytes are kept.
    #[test]
    fn bounds_and_odd_ids() {
        assert!(TraceSampler::percentage(100.0).keeps(&trace_id(0)));
        assert_eq!(TraceSampler::percentage(100.0), TraceSampler::ALL);
        let tiny = TraceSampler::percentage(0.001);
        assert!(!tiny.keeps(&trace_id(1 << 55)));
        assert!(tiny.keeps(&trace_id((1 << 56) - 1)));
        assert!(tiny.keeps(&[]));
        assert!(tiny.keeps(&[0; 8]));
    }

    /// Guarantees: a trace kept at a percentage is kept at every higher one (consistency).
    #[test]
    fn kept_at_a_percentage_is_kept_at_higher_ones() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = trace_id(state >> 8);
            let kept = [1.0, 10.0, 25.0, 50.0, 99.0].map(|p| TraceSampler::percentage(p).keeps(&id));
            assert!(kept.windows(2).all(|pair| pair[0] <= pair[1]), "{kept:?}");
        }
    }

    /// Guarantees: under the cap a window keeps the configured share; over it, the share that
    /// keeps `max_spans_per_second` of the last window's rate, never above the configured one;
    /// 0 means no cap.
    #[test]
    fn percentage_keeps_about_the_cap() {
        let ten_seconds = Duration::from_secs(10);
        assert_eq!(percentage_within(100.0, 10_000, 50_000, ten_seconds), 100.0);
        assert_eq!(percentage_within(100.0, 10_000, 1_000_000, ten_seconds), 10.0);
        assert_eq!(percentage_within(100.0, 10_000, 4_000_000, ten_seconds), 2.5);
        assert_eq!(percentage_within(5.0, 10_000, 1_000_000, ten_seconds), 5.0);
        assert_eq!(percentage_within(100.0, 0, 1_000_000, ten_seconds), 100.0);
        assert_eq!(percentage_within(50.0, 10_000, 0, ten_seconds), 50.0);
        assert_eq!(percentage_within(100.0, 100, 400, Duration::from_secs(1)), 25.0);
    }
}
