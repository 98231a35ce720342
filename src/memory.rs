//! One memory budget for the process (`service.memory_limit_mib`). What fleetpipe holds on
//! behalf of its clients draws from it: request bodies as they are read and inflated, memory
//! queues, analytics' windows and the archive's buffers. Receivers take new data only while
//! what is held, and the process's resident size, are below the soft limit (80 % of the
//! limit); above it they refuse with UNAVAILABLE + RetryInfo / 503 + `Retry-After`, and accept
//! again as queues drain. The parts already bounded by push-back (queues) are charged without
//! being refused, so the receivers see them and stop taking more.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// Share of the limit up to which new data is taken: the rest is headroom for what is
/// already in flight (decoding, batching, exporting), as the Collector's memory limiter keeps
/// a spike allowance below its hard limit.
const SOFT_SHARE_PERCENT: usize = 80;

/// The limit when neither the configuration nor a cgroup sets one.
pub const DEFAULT_LIMIT_MIB: usize = 1024;

/// How long a reading of the resident size is trusted.
const RSS_SAMPLE_MICROS: u64 = 20_000;

/// What holds memory, as `/metrics` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Request bodies being read, inflated and decoded.
    Requests,
    /// Batches in exporters' memory queues.
    Queues,
    /// Analytics' windows and the batches waiting for them.
    Analytics,
    /// Batches waiting for the archive, and its open files' buffers.
    Archive,
}

impl Part {
    const ALL: [Part; 4] = [Part::Requests, Part::Queues, Part::Analytics, Part::Archive];

    fn as_str(self) -> &'static str {
        match self {
            Part::Requests => "requests",
            Part::Queues => "queues",
            Part::Analytics => "analytics",
            Part::Archive => "archive",
        }
    }
}

/// New data was refused because memory is short; the client should retry.
#[derive(Debug, thiserror::Error)]
#[error(
    "memory is short: fleetpipe holds {held_mib} MiB and its resident size is {rss_mib} MiB, against the {soft_mib} MiB it takes new data up to (80 % of service.memory_limit_mib)"
)]
pub struct OverBudget {
    held_mib: usize,
    rss_mib: usize,
    soft_mib: usize,
}

/// The process's memory budget. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    soft: usize,
    held: AtomicUsize,
    parts: Family<Vec<(String, String)>, Gauge>,
    /// Each part's gauge in `parts`, in [`Part::ALL`]'s order: looked up once, not per charge.
    part_gauges: [Gauge; 4],
    /// `None` where only charges count (tests of one component in a shared process).
    rss: Option<RssSampler>,
    /// How many requests may grow large at once (see [`MemoryBudget::bound_large_requests`]).
    large: OnceLock<LargeRequests>,
}

/// Turns for requests growing past `from` bytes.
#[derive(Debug)]
struct LargeRequests {
    from: usize,
    turns: Arc<Semaphore>,
}

impl MemoryBudget {
    /// A budget of `limit_bytes`.
    pub fn new(limit_bytes: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            rss: Some(RssSampler::default()),
            ..MemoryBudget::counting(limit_bytes)
        })
    }

    /// A budget of `limit_bytes` that counts charges only, not the process's resident size.
    pub fn counting(limit_bytes: usize) -> MemoryBudget {
        let parts = Family::<Vec<(String, String)>, Gauge>::default();
        let part_gauges = Part::ALL.map(|part| {
            parts
                .get_or_create(&vec![("part".to_owned(), part.as_str().to_owned())])
                .clone()
        });
        MemoryBudget {
            limit: limit_bytes,
            soft: limit_bytes / 100 * SOFT_SHARE_PERCENT,
            held: AtomicUsize::new(0),
            parts,
            part_gauges,
            rss: None,
            large: OnceLock::new(),
        }
    }

    /// Lets only as many requests grow past an eighth of `max_request_bytes` at once as fit
    /// twice over below the soft limit; others are refused (to retry) as they pass it. Without
    /// turns, many large requests inflating together each get part of the way and are all
    /// refused once memory runs short: none is taken. The first receiver's limit counts.
    pub fn bound_large_requests(&self, max_request_bytes: usize) {
        let largest = max_request_bytes.max(1);
        let _ = self.large.set(LargeRequests {
            from: (largest / 8).max(FRESH_RSS_FROM),
            turns: Arc::new(Semaphore::new((self.soft / largest / 2).max(1))),
        });
    }

    /// A budget that never refuses, for commands that only read (`report`, `query`) and tests
    /// of single components.
    pub fn unlimited() -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget::counting(usize::MAX))
    }

    /// The limit in bytes: the configured one, else 80 % of the cgroup's memory limit when
    /// there is one, else [`DEFAULT_LIMIT_MIB`].
    pub fn limit_for(configured_mib: Option<usize>) -> usize {
        let mib = configured_mib.unwrap_or_else(|| match cgroup_limit() {
            Some(bytes) => bytes / 100 * SOFT_SHARE_PERCENT / (1 << 20),
            None => DEFAULT_LIMIT_MIB,
        });
        mib.saturating_mul(1 << 20)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes `bytes` for new data of `part`, or refuses when memory is short.
    pub fn admit(self: &Arc<Self>, part: Part, bytes: usize) -> Result<Charge, OverBudget> {
        self.check(bytes)?;
        Ok(self.charge(part, bytes))
    }

    /// Takes `bytes` for `part` whatever is held: for data already acknowledged, whose growth
    /// is bounded by push-back elsewhere.
    pub fn charge(self: &Arc<Self>, part: Part, bytes: usize) -> Charge {
        self.add(part, bytes);
        Charge {
            budget: Arc::clone(self),
            part,
            bytes,
            turn: None,
        }
    }

    /// Whether `more` bytes of new data may be taken now.
    pub fn check(&self, more: usize) -> Result<(), OverBudget> {
        let held = self.held.load(Ordering::Relaxed);
        let rss = self
            .rss
            .as_ref()
            .map_or(0, |sampler| sampler.current(more >= FRESH_RSS_FROM));
        if held.saturating_add(more) <= self.soft && rss <= self.soft {
            return Ok(());
        }
        Err(self.over(held, rss))
    }

    /// The refusal, with what is held and resident now.
    fn over_now(&self) -> OverBudget {
        let rss = self.rss.as_ref().map_or(0, |sampler| sampler.current(false));
        self.over(self.held.load(Ordering::Relaxed), rss)
    }

    fn over(&self, held: usize, rss: usize) -> OverBudget {
        OverBudget {
            held_mib: held >> 20,
            rss_mib: rss >> 20,
            soft_mib: self.soft >> 20,
        }
    }

    /// Bytes held now, by every part.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Registers the budget's gauges: the limit, what each part holds, the resident size.
    pub fn register(self: &Arc<Self>, registry: &mut prometheus_client::registry::Registry) {
        let limit = Gauge::<i64>::default();
        limit.set(i64::try_from(self.limit).unwrap_or(i64::MAX));
        registry.register(
            "fleetpipe_memory_limit_bytes",
            "service.memory_limit_mib in bytes",
            limit,
        );
        registry.register(
            "fleetpipe_memory_held_bytes",
            "Bytes held for clients' data, by part (requests, queues, analytics, archive)",
            self.parts.clone(),
        );
        registry.register_collector(Box::new(RssCollector));
    }

    fn add(&self, part: Part, bytes: usize) {
        self.held.fetch_add(bytes, Ordering::Relaxed);
        self.part_gauge(part).inc_by(bytes as i64);
    }

    fn release(&self, part: Part, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::Relaxed);
        self.part_gauge(part).dec_by(bytes as i64);
    }

    fn part_gauge(&self, part: Part) -> &Gauge {
        &self.part_gauges[part as usize]
    }
}

/// Bytes taken from the budget; given back when dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<MemoryBudget>,
    part: Part,
    bytes: usize,
    /// The turn of a request grown large.
    turn: Option<OwnedSemaphorePermit>,
}

impl Charge {
    /// Takes `more` bytes for the same data as it grows (a body inflating), or refuses when
    /// memory is short.
    pub fn grow(&mut self, more: usize) -> Result<(), OverBudget> {
        if self.turn.is_none()
            && let Some(large) = self.budget.large.get()
            && self.bytes + more >= large.from
        {
            let turn = Arc::clone(&large.turns).try_acquire_owned();
            self.turn = Some(turn.map_err(|_| self.budget.over_now())?);
        }
        self.budget.check(more)?;
        self.budget.add(self.part, more);
        self.bytes += more;
        Ok(())
    }

    /// Sets the charge to `bytes`, whatever is held: the data's size once known.
    pub fn set(&mut self, bytes: usize) {
        if bytes > self.bytes {
            self.budget.add(self.part, bytes - self.bytes);
        } else {
            self.budget.release(self.part, self.bytes - bytes);
        }
        self.bytes = bytes;
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The budget's limit in bytes.
    pub fn limit(&self) -> usize {
        self.budget.limit
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.release(self.part, self.bytes);
    }
}

/// The process's resident size, read from `/proc/self/statm` at most every
/// [`RSS_SAMPLE_MICROS`]: it catches what no charge accounts for (allocator overhead,
/// buffers of libraries).
#[derive(Debug)]
struct RssSampler {
    started: Instant,
    sampled_at: AtomicU64,
    bytes: AtomicUsize,
}

impl Default for RssSampler {
    fn default() -> Self {
        RssSampler {
            started: Instant::now(),
            sampled_at: AtomicU64::new(0),
            bytes: AtomicUsize::new(resident_bytes().unwrap_or(0)),
        }
    }
}

/// A growth of at least this many bytes reads the resident size afresh rather than a sample of
/// up to [`RSS_SAMPLE_MICROS`] ago: sixteen bodies inflating at once grow by tens of MiB in that
/// time (`inflating_requests_stay_within_the_memory_limit` saw 169 MiB under a 160 MiB limit),
/// and reading `/proc` costs little beside inflating a MiB.
const FRESH_RSS_FROM: usize = 1 << 20;

impl RssSampler {
    /// The resident size: a sample at most [`RSS_SAMPLE_MICROS`] old, or read now when `fresh`.
    fn current(&self, fresh: bool) -> usize {
        let now = self.started.elapsed().as_micros() as u64 + RSS_SAMPLE_MICROS;
        let sampled_at = self.sampled_at.load(Ordering::Relaxed);
        if (fresh || now.saturating_sub(sampled_at) >= RSS_SAMPLE_MICROS)
            && self
                .sampled_at
                .compare_exchange(sampled_at, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            && let Some(bytes) = resident_bytes()
        {
            self.bytes.store(bytes, Ordering::Relaxed);
        }
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Resident set size of this process, in bytes; `None` where `/proc` is not there.
pub fn resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The memory limit of the cgroup fleetpipe runs in (v2, then v1), when one is set.
fn cgroup_limit() -> Option<usize> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let v2 = read("/sys/fs/cgroup/memory.max");
    let v1 = || read("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    let text = v2.or_else(v1)?;
    let bytes: u64 = text.trim().parse().ok()?;
    // cgroup v1 writes "no limit" as a number near i64::MAX.
    (bytes < 1 << 50).then(|| usize::try_from(bytes).ok()).flatten()
}

/// Serves `fleetpipe_memory_resident_bytes`, read when `/metrics` is scraped.
#[derive(Debug)]
struct RssCollector;

impl prometheus_client::collector::Collector for RssCollector {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = prometheus_client::metrics::gauge::ConstGauge::new(resident_bytes().unwrap_or(0) as i64);
        let metric = encoder.encode_descriptor(
            "fleetpipe_memory_resident_bytes",
            "Resident set size of the process",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        prometheus_client::encoding::EncodeMetric::encode(&gauge, metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_above_the_soft_limit_and_takes_again_once_released() {
        let budget = Arc::new(MemoryBudget::counting(1 << 30));
        let soft = budget.soft;
        let first = budget.admit(Part::Requests, soft - 10).expect("below the soft limit");
        assert!(budget.admit(Part::Requests, 11).is_err());
        let queued = budget.charge(Part::Queues, 100);
        assert_eq!(budget.held(), soft + 90);
        drop(first);
        drop(queued);
        assert_eq!(budget.held(), 0);
        let mut growing = budget.admit(Part::Requests, 1).expect("memory is free again");
        assert!(
            growing.grow(soft).is_err(),
            "a body inflating past the limit is refused"
        );
        growing.set(5);
        assert_eq!(budget.held(), 5);
    }
}
